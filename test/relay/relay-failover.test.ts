import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeTicket, encodeTicket, TICKET_PREFIX } from '../../protocol/ticket.js';
import {
  type AgentHome,
  enrollAgent,
  type NodeProcess,
  type RelayProcess,
  runAgent,
  runCommand,
  startNodeProcess,
  startRelayProcess,
  stopAll,
} from '../../scripts/lib/local-processes.js';
import { firstEchoWithin, startEchoServer, type EchoServer } from '../helpers/echo-server.js';
import { postgresBinaries, startPostgresCluster, type PostgresCluster } from '../../scripts/lib/postgres-cluster.js';

// Agents that lose their relay move to another relay of the project (issue 14, "Agents"): two
// `relay start --store postgres://…` processes on one real PostgreSQL; tickets list both; an inlet
// and an outlet, both on relay A, move to relay B when A is SIGKILLed, and a new app connection
// through the inlet works within FAILOVER_BOUND_MS of the kill.

const binaries = postgresBinaries();
if ('skip' in binaries) console.log(`relay failover skipped: ${binaries.skip}`);

const FAILOVER_BOUND_MS = 3_000;

interface Status {
  relay: { url: string; relays: string[]; connected: boolean };
}

describe.skipIf('skip' in binaries)('agents move between two relays on one PostgreSQL store', () => {
  let cluster: PostgresCluster;
  let storeUrl: string;
  let keyFile: string;
  let relayA: RelayProcess;
  let relayB: RelayProcess;
  let echo: EchoServer;
  let outlet: NodeProcess;
  let inlet: NodeProcess;

  const storeArgs = () => ['--store', storeUrl, '--authority-key', keyFile];
  async function mint(relay: RelayProcess, attributes: string[], relayNames: string[] = []): Promise<string> {
    const args = ['ticket', 'create', '--data', relay.dataDir, '--json', ...storeArgs()];
    for (const a of attributes) args.push('--attribute', a);
    for (const r of relayNames) args.push('--relay', r);
    const result = await runCommand('relay', args);
    if (result.code !== 0) throw new Error(`ticket create failed: ${result.stderr}`);
    return (JSON.parse(result.stdout) as { ticket: string }).ticket;
  }
  async function status(node: { home: string }): Promise<Status> {
    const result = await runAgent(node.home, ['status', '--json']);
    expect(result.code, result.stderr).toBe(0);
    return JSON.parse(result.stdout) as Status;
  }
  const inletAddress = (): string => inlet.inlets[Object.keys(inlet.inlets)[0]!]!;
  async function waitConnectedTo(node: NodeProcess, url: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = await status(node);
      if (s.relay.connected && s.relay.url === url) return;
      if (Date.now() > deadline) throw new Error(`${node.identifier} is not on ${url} after ${timeoutMs} ms: ${JSON.stringify(s.relay)}\n${node.proc.tail()}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  beforeAll(async () => {
    cluster = await startPostgresCluster();
    storeUrl = cluster.url(await cluster.createDatabase('failover'));
    relayA = await startRelayProcess({ extraArgs: ['--store', storeUrl] });
    keyFile = join(relayA.dataDir, 'authority.key');
    relayB = await startRelayProcess({ extraArgs: storeArgs() });
    echo = await startEchoServer();
  }, 120_000);

  afterAll(async () => {
    await stopAll();
    await echo?.close();
    await cluster?.stop();
  });

  it('a ticket lists every live relay of the project, the creating relay first', async () => {
    const fromA = decodeTicket(await mint(relayA, ['x']));
    expect([fromA.relayUrl, ...(fromA.otherRelays ?? []).map((r) => r.url)]).toEqual([relayA.url, relayB.url]);
    const fromB = decodeTicket(await mint(relayB, ['x']));
    expect([fromB.relayUrl, ...(fromB.otherRelays ?? []).map((r) => r.url)]).toEqual([relayB.url, relayA.url]);
  }, 30_000);

  it('an old single-URL (version 1) ticket still enrolls, and the home holds just that relay', async () => {
    const listed = decodeTicket(await mint(relayA, ['old']));
    const { otherRelays: _dropped, ...single } = listed;
    const old = encodeTicket(single);
    expect(Buffer.from(old.slice(TICKET_PREFIX.length), 'base64url')[0]).toBe(1);
    const agent: AgentHome = await enrollAgent(relayA, { ticket: old });
    const enrollment = JSON.parse(readFileSync(join(agent.home, 'enrollment.json'), 'utf8')) as Record<string, unknown>;
    expect(enrollment.relayUrl).toBe(relayA.url);
    expect(enrollment.otherRelays).toBeUndefined();
  }, 30_000);

  it('relay A killed: the inlet and the outlet move to relay B, and a new connection works within 3 s', async () => {
    const outletAgent = await enrollAgent(relayA, { ticket: await mint(relayA, ['svc-outlet'], ['svc']) });
    const inletAgent = await enrollAgent(relayA, { ticket: await mint(relayA, ['svc-inlet']) });
    outlet = await startNodeProcess(outletAgent, { outlets: [{ to: echo.address, relay: 'svc', allow: 'svc-inlet' }] });
    inlet = await startNodeProcess(inletAgent, { inlets: [{ from: '127.0.0.1:0', via: 'svc', allow: 'svc-outlet' }] });
    for (const node of [outlet, inlet]) {
      await waitConnectedTo(node, relayA.url, 10_000);
      expect((await status(node)).relay.relays).toEqual([relayA.url, relayB.url]);
    }
    expect(await firstEchoWithin(inletAddress(), 10_000)).toBeDefined();

    const killedAt = Date.now();
    await relayA.proc.kill('SIGKILL');
    const workedAt = await firstEchoWithin(inletAddress(), 10_000);
    expect(workedAt, `no connection through the inlet within 10 s of the kill\n${inlet.proc.tail()}\n${outlet.proc.tail()}`).toBeDefined();
    const failoverMs = workedAt! - killedAt;
    console.log(`relay A SIGKILLed → first new connection through the inlet echoed via relay B after ${failoverMs} ms`);
    expect(failoverMs).toBeLessThan(FAILOVER_BOUND_MS);
    for (const node of [outlet, inlet]) await waitConnectedTo(node, relayB.url, 5_000);
    // B tells its agents the project's relays, itself first, right after their login (a store read
    // away: test/relay/agents-learn-relays.test.ts); a bounded wait for it.
    for (let i = 0; i < 50 && (await status(inlet)).relay.relays[0] !== relayB.url; i++) await new Promise((resolve) => setTimeout(resolve, 100));
    const human = await runAgent(inlet.home, ['status']);
    expect(human.stdout).toContain(`relay       ${relayB.url} connected`);
    expect(human.stdout).toContain(`relays      ${relayB.url}  ${relayA.url}`);
  }, 90_000);

  it('every relay down: the agents keep retrying with one warning each, and come back when a relay returns', async () => {
    const from = { outlet: outlet.proc.stderrLines.length, inlet: inlet.proc.stderrLines.length };
    await relayB.proc.kill('SIGKILL');
    await new Promise((resolve) => setTimeout(resolve, 4_000));
    relayA = await startRelayProcess({ dataDir: relayA.dataDir, listen: relayA.listen, extraArgs: storeArgs() });
    for (const node of [outlet, inlet]) await waitConnectedTo(node, relayA.url, 10_000);
    expect(await firstEchoWithin(inletAddress(), 10_000)).toBeDefined();
    for (const [node, start] of [[outlet, from.outlet], [inlet, from.inlet]] as const) {
      const lines = node.proc.stderrLines.slice(start).flatMap((l) => {
        try {
          return [JSON.parse(l) as { level: string; msg: string }];
        } catch {
          return [];
        }
      });
      // Within 4 s of outage: the drop's warning (and at most the first failed attempt's), never one per attempt.
      const warnings = lines.filter((l) => ['warn', 'error', 'fatal'].includes(l.level) && /relay/.test(l.msg));
      expect(warnings.length, JSON.stringify(warnings)).toBeGreaterThanOrEqual(1);
      expect(warnings.length, JSON.stringify(warnings)).toBeLessThanOrEqual(2);
      expect(lines.some((l) => /^reconnected to the relay after/.test(l.msg))).toBe(true);
    }
  }, 60_000);
});
