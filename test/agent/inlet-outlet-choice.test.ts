import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enrollAgent, type NodeProcess, type RelayProcess, startNodeProcess, startRelayProcess, stopAll } from '../../scripts/lib/local-processes.js';
import { type EchoServer, sendThenFinish, startEchoServer } from '../helpers/echo-server.js';

// Several outlets may serve one relay name (HA). When the one the relay picks fails the inlet's
// policy (a misconfigured member, or one that is not what it claims), the inlet asks the relay for
// another one of the name, skipping those it refused, instead of resetting the app's connection.
// Before, the relay's round robin handed every other connection to the bad outlet: 3 of 6 lost.

let relay: RelayProcess;
let good: EchoServer;
let bad: EchoServer;
let inletNode: NodeProcess;
const INLETS = ['ha-1', 'ha-2', 'ha-3'];

beforeAll(async () => {
  relay = await startRelayProcess();
  [good, bad] = await Promise.all([startEchoServer(), startEchoServer()]);
  const [goodAgent, badAgent, inletAgent] = await Promise.all([
    enrollAgent(relay, { attributes: ['svc-outlet'], relayNames: ['ha'] }),
    // Allowed to register the name, but not what the inlet's policy asks for.
    enrollAgent(relay, { attributes: ['staging'], relayNames: ['ha'] }),
    enrollAgent(relay, { attributes: ['svc-inlet'] }),
  ]);
  // The misconfigured outlet registers first, so the relay's round robin offers it first.
  await startNodeProcess(badAgent, { outlets: [{ to: bad.address, relay: 'ha', allow: 'svc-inlet' }] });
  await startNodeProcess(goodAgent, { outlets: [{ to: good.address, relay: 'ha', allow: 'svc-inlet' }] });
  // Three inlets of the name: each makes its own channel, so the relay is asked three times.
  inletNode = await startNodeProcess(inletAgent, {
    inlets: INLETS.map((name) => ({ name, from: '127.0.0.1:0', via: 'ha', allow: 'svc-outlet' })),
  });
}, 120_000);

afterAll(async () => {
  await stopAll();
  await good?.close();
  await bad?.close();
});

describe('an inlet among several outlets of one name', () => {
  it('an outlet that fails the inlet policy is skipped: every connection is served by the one that passes', async () => {
    for (let i = 0; i < 6; i++) {
      const outcome = await sendThenFinish(inletNode.inlets[INLETS[i % INLETS.length]!]!, Buffer.from(`request ${i}`));
      expect(outcome.ending, `connection ${i}`).toBe('end');
      expect(outcome.received.toString()).toBe(`request ${i}`);
    }
    // Each target saw one connection before these: its outlet's check when it was created.
    expect(bad.accepted()).toBe(1);
    expect(good.accepted()).toBe(1 + 6);
    await inletNode.proc.waitForLog({ code: 'WICKET_ERR_POLICY_DENIED', msg: 'outlet refused; asking the relay for another one' });
  });
});
