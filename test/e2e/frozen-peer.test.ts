import { performance } from 'node:perf_hooks';
import { afterAll, describe, expect, it } from 'vitest';
import { KEEPALIVE_DEAD_AFTER_MS, KEEPALIVE_SWEEP_MS } from '../../protocol/limits.js';
import { createTicket, enrollAgent, startNodeProcess, startRelayProcess, stopAll } from '../../scripts/lib/local-processes.js';
import { enrollFresh } from '../helpers/raw-relay-client.js';

// A dead peer is noticed within 10 s (DESIGN.md: keepalive pings; Ockam takes ~30 s). "Dead" here
// is the hard kind: a process frozen with SIGSTOP keeps its sockets open and answers nothing, so
// only the keepalive can tell. Production timers (KEEPALIVE_DEAD_AFTER_MS + one sweep), real
// processes, and each side of the agent–relay connection in turn.

const DEADLINE_MS = 10_000;
afterAll(stopAll);

describe('a frozen peer is noticed within 10 s', () => {
  it('the relay drops a frozen agent node and closes its circuits within 10 s', async () => {
    expect(KEEPALIVE_DEAD_AFTER_MS + KEEPALIVE_SWEEP_MS).toBeLessThan(DEADLINE_MS);
    const relay = await startRelayProcess();
    const outlet = await enrollAgent(relay, { attributes: ['svc-outlet'], relayNames: ['svc'] });
    const node = await startNodeProcess(outlet, { outlets: [{ to: '127.0.0.1:9', relay: 'svc', allow: 'svc-inlet' }] });
    // A circuit from a live member to the outlet: its close is how the member hears of the drop.
    const member = await enrollFresh(relay.url, await createTicket(relay, { attributes: ['svc-inlet'] }));
    const opened = await member.open('svc');
    if (opened.t !== 'opened') throw new Error(`open failed: ${JSON.stringify(opened)}`);

    process.kill(node.proc.pid, 'SIGSTOP');
    const frozenAt = performance.now();
    try {
      const closed = await member.next('close', (m) => m.circuit === opened.circuit, DEADLINE_MS + 5_000);
      const noticedMs = performance.now() - frozenAt;
      console.log(`frozen agent: the relay closed its circuit ${noticedMs.toFixed(0)} ms after SIGSTOP`);
      expect(closed.code).toBe('WICKET_ERR_CIRCUIT_CLOSED');
      expect(noticedMs).toBeLessThan(DEADLINE_MS);
      await relay.proc.waitForLog({ msg: 'peer silent; dropping it', identifier: outlet.identifier });
    } finally {
      process.kill(node.proc.pid, 'SIGCONT');
    }
  });

  it('an agent node drops a frozen relay within 10 s and starts reconnecting', async () => {
    const relay = await startRelayProcess();
    const agent = await enrollAgent(relay, { attributes: ['svc-inlet'] });
    const node = await startNodeProcess(agent, { inlets: [{ from: '127.0.0.1:0', via: 'svc', allow: 'svc-outlet' }] });
    const mark = node.proc.stderrLines.length;

    process.kill(relay.proc.pid, 'SIGSTOP');
    const frozenAt = performance.now();
    try {
      const line = await node.proc.waitForLine((l) => l.includes('disconnected from the relay'), { stream: 'stderr', from: mark, timeoutMs: DEADLINE_MS + 5_000 });
      const noticedMs = performance.now() - frozenAt;
      console.log(`frozen relay: the agent dropped it ${noticedMs.toFixed(0)} ms after SIGSTOP`);
      expect(line).toMatch(/was silent for/);
      expect(noticedMs).toBeLessThan(DEADLINE_MS);
    } finally {
      process.kill(relay.proc.pid, 'SIGCONT');
    }
  });
});
