import { afterAll, describe, expect, it } from 'vitest';
import { connectTcp, sendThenFinish, startEchoServer } from '../helpers/echo-server.js';
import { enrollAgent, startNodeProcess, startRelayProcess, stopAll } from '../../scripts/lib/local-processes.js';

// The relay goes away and comes back (same port, same data folder): a live portal connection is
// reset (the path broke mid-stream: never a clean end), the inlet keeps listening throughout, and
// a connection accepted while the relay is away is served once the path is back. SIGTERM then
// stops the node cleanly.

afterAll(stopAll);

describe('relay restart', () => {
  it('resets live connections, keeps the inlet listening, and serves connections made during the outage', async () => {
    const echo = await startEchoServer();
    try {
      let relay = await startRelayProcess();
      const [outletAgent, inletAgent] = await Promise.all([
        enrollAgent(relay, { attributes: ['svc-outlet'], relayNames: ['svc'] }),
        enrollAgent(relay, { attributes: ['svc-inlet'] }),
      ]);
      const outlet = await startNodeProcess(outletAgent, { outlets: [{ to: echo.address, relay: 'svc', allow: 'svc-inlet' }] });
      const inlet = await startNodeProcess(inletAgent, { inlets: [{ from: '127.0.0.1:0', via: 'svc', allow: 'svc-outlet' }] });
      const address = inlet.inlets.svc!;

      const live = await connectTcp(address);
      await live.write(Buffer.from('before'));
      await live.waitForBytes(6);

      const inletLogMark = inlet.proc.stderrLines.length;
      await relay.proc.kill('SIGKILL');
      expect((await live.outcome()).ending).toBe('reset');
      await inlet.proc.waitForLine((l) => l.includes('disconnected from the relay'), { stream: 'stderr', from: inletLogMark });

      // The relay is away: the inlet still accepts, and the app connection waits for a channel.
      const during = await connectTcp(address);
      await during.write(Buffer.from('sent while the relay was down'));
      relay = await startRelayProcess({ dataDir: relay.dataDir, listen: relay.listen });
      const backAt = Date.now(); // the relay printed its listening line: it is back
      await during.waitForBytes('sent while the relay was down'.length, 30_000);
      const servedAfterMs = Date.now() - backAt;
      console.log(`relay restart: the waiting connection was served ${servedAfterMs} ms after the relay was back`);
      // Issue 3's requirement, end to end: served within 3 s of the relay being back. The
      // reconnect backoff is capped at 2 s (RECONNECT_MAX_DELAY_MS) so this holds however long
      // the outage was.
      expect(servedAfterMs).toBeLessThan(3_000);
      during.end();
      expect((await during.outcome()).ending).toBe('end');

      const outcome = await sendThenFinish(address, Buffer.from('after'));
      expect(outcome.received.toString()).toBe('after');
      expect(outcome.ending).toBe('end');
      expect(outlet.proc.alive).toBe(true);

      // SIGTERM is a clean shutdown: exit 0, the listener closed.
      expect(await inlet.proc.kill('SIGTERM')).toEqual({ code: 0, signal: null });
      await expect(connectTcp(address)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    } finally {
      await echo.close();
    }
  }, 120_000);
});
