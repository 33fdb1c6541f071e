import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AgentHome,
  enrollAgent,
  type NodeProcess,
  type RelayProcess,
  runAgent,
  startNodeProcess,
  startRelayProcess,
  stopAll,
} from '../../scripts/lib/local-processes.js';
import { connectTcp, type EchoServer, startEchoServer, type TcpClient } from '../helpers/echo-server.js';

// One peer cannot exhaust the outlet's file descriptors. Before the limits, 1,024 streams per
// channel and several channels from one member held 4,075 target connections, the outlet hit
// EMFILE and every caller was reset. Now an outlet holds at most maxConnections target connections,
// and one peer identity at most maxConnectionsPerPeer of them across all its channels; a stream
// over either is reset with WICKET_ERR_TARGET_BUSY before a descriptor is used, and other peers
// are served. Real processes; small limits so the test stays small.

const MAX = 6;
const PER_PEER = 3;

let relay: RelayProcess;
let echo: EchoServer;
let outletNode: NodeProcess;
type Peer = 'greedy' | 'fair' | 'late';
let agents: Record<Peer, AgentHome>;
let inlets: Record<Peer, NodeProcess>;

beforeAll(async () => {
  relay = await startRelayProcess();
  echo = await startEchoServer();
  const outletAgent = await enrollAgent(relay, { attributes: ['svc-outlet'], relayNames: ['svc'] });
  outletNode = await startNodeProcess(outletAgent, {
    outlets: [{ to: echo.address, relay: 'svc', allow: 'svc-inlet', maxConnections: MAX, maxConnectionsPerPeer: PER_PEER }],
  });
  const inletNode = async (): Promise<{ agent: AgentHome; node: NodeProcess }> => {
    const agent = await enrollAgent(relay, { attributes: ['svc-inlet'] });
    return { agent, node: await startNodeProcess(agent, { inlets: [{ from: '127.0.0.1:0', via: 'svc', allow: 'svc-outlet' }] }) };
  };
  const [greedy, fair, late] = await Promise.all([inletNode(), inletNode(), inletNode()]);
  agents = { greedy: greedy.agent, fair: fair.agent, late: late.agent };
  inlets = { greedy: greedy.node, fair: fair.node, late: late.node };
}, 120_000);

afterAll(async () => {
  await stopAll();
  await echo?.close();
});

/** Opens one app connection through `inlet` and says whether the target answered or it was reset. */
async function tryConnection(inlet: NodeProcess, tag: string): Promise<{ client: TcpClient; served: boolean }> {
  const client = await connectTcp(inlet.inlets.svc!);
  await client.write(Buffer.from(tag)).catch(() => undefined);
  try {
    await client.waitForBytes(tag.length, 10_000);
    return { client, served: true };
  } catch {
    expect((await client.outcome()).ending).toBe('reset');
    return { client, served: false };
  }
}

describe('outlet target connection limits', () => {
  it("one peer cannot exhaust the outlet's file descriptors: it gets its share, the rest are refused (WICKET_ERR_TARGET_BUSY), and other peers are served", async () => {
    const greedy: boolean[] = [];
    const held: TcpClient[] = [];
    for (let i = 0; i < 10; i++) {
      const attempt = await tryConnection(inlets.greedy, `greedy ${i}`);
      greedy.push(attempt.served);
      if (attempt.served) held.push(attempt.client);
    }
    expect(greedy.filter(Boolean)).toHaveLength(PER_PEER);
    expect(echo.connections.size).toBe(PER_PEER);
    const warned = await outletNode.proc.waitForLog({ code: 'WICKET_ERR_TARGET_BUSY', peer: agents.greedy.identifier });
    expect(warned.msg).toMatch(/3 for this peer/);

    // A legitimate peer is still served, up to its own share.
    const fair: boolean[] = [];
    for (let i = 0; i < PER_PEER + 1; i++) {
      const attempt = await tryConnection(inlets.fair, `fair ${i}`);
      fair.push(attempt.served);
      if (attempt.served) held.push(attempt.client);
    }
    expect(fair).toEqual([true, true, true, false]);

    // The outlet is full: a third peer waits its turn, and is served once a slot frees.
    expect((await tryConnection(inlets.late, 'late 0')).served).toBe(false);
    const status = JSON.parse((await runAgent(outletNode.home, ['status', '--json'])).stdout) as { outlets: { targetConnections: number; maxConnections: number }[] };
    expect(status.outlets[0]).toMatchObject({ targetConnections: MAX, maxConnections: MAX });
    held[0]!.end();
    await held[0]!.outcome();
    let served = false;
    for (let i = 0; i < 20 && !served; i++) served = (await tryConnection(inlets.late, `late ${i + 1}`)).served;
    expect(served).toBe(true);
    // Plus one: the outlet's check of its target when it was created.
    expect(echo.accepted()).toBe(1 + 2 * PER_PEER + 1);
  });
});
