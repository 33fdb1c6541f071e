import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RELAY_DIRECTORY_CHECK_INTERVAL_MS } from '../../protocol/limits.js';
import { decodeTicket, encodeTicket } from '../../protocol/ticket.js';
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
  tempDir,
} from '../../scripts/lib/local-processes.js';
import { firstEchoWithin, startEchoServer, type EchoServer } from '../helpers/echo-server.js';
import { postgresBinaries, startPostgresCluster, type PostgresCluster } from '../../scripts/lib/postgres-cluster.js';

// Issue 14, "an agent that loses its relay moves to another", for agents enrolled before the other
// relays existed: relay A alone on a real PostgreSQL mints one-relay tickets; an inlet and an
// outlet enrolled with them connect to A; relay B starts on the same store; A tells its agents
// (`relays`) within one directory check, they keep the list in enrollment.json and show it in
// `agent status`, and when A is SIGKILLed they move to B. Then enrollment with a ticket whose first
// relay is down (it goes on to the next), and with one whose first relay refuses (it does not).

const binaries = postgresBinaries();
if ('skip' in binaries) console.log(`agents-learn-relays skipped: ${binaries.skip}`);

/** A's directory re-reads the store every RELAY_DIRECTORY_CHECK_INTERVAL_MS; B is recorded before it prints its URL. */
const LEARN_BOUND_MS = RELAY_DIRECTORY_CHECK_INTERVAL_MS + 2_000;
const FAILOVER_BOUND_MS = 3_000;

interface Status {
  relay: { url: string; relays: string[]; connected: boolean };
}

interface EnrollmentFile {
  relayUrl: string;
  otherRelays?: { url: string; fingerprint?: string }[];
}

describe.skipIf('skip' in binaries)('agents learn the relays added after their enrollment (one PostgreSQL store)', () => {
  let cluster: PostgresCluster;
  let storeUrl: string;
  let keyFile: string;
  let relayA: RelayProcess;
  let relayB: RelayProcess;
  let echo: EchoServer;
  let outlet: NodeProcess;
  let inlet: NodeProcess;

  const storeArgs = () => ['--store', storeUrl, '--authority-key', keyFile];
  async function mint(relay: RelayProcess, attributes: string[], o: { relayNames?: string[]; usageCount?: number } = {}): Promise<string> {
    const args = ['ticket', 'create', '--data', relay.dataDir, '--json', ...storeArgs()];
    for (const a of attributes) args.push('--attribute', a);
    for (const r of o.relayNames ?? []) args.push('--relay', r);
    if (o.usageCount !== undefined) args.push('--usage-count', String(o.usageCount));
    const result = await runCommand('relay', args);
    if (result.code !== 0) throw new Error(`ticket create failed: ${result.stderr}`);
    return (JSON.parse(result.stdout) as { ticket: string }).ticket;
  }
  /** The same ticket (id, secret, authority) listing `urls` in that order, none pinned (all loopback ws://). */
  function relisted(ticket: string, urls: string[]): string {
    const decoded = decodeTicket(ticket);
    const { relayCertFingerprint: _pin, otherRelays: _others, ...rest } = decoded;
    return encodeTicket({ ...rest, relayUrl: urls[0]!, otherRelays: urls.slice(1).map((url) => ({ url })) });
  }
  async function enrollWith(ticket: string): Promise<{ home: string; code: number | null; stdout: string; stderr: string; ms: number }> {
    const home = tempDir('wicket-learn-');
    const file = join(home, 'enroll.ticket');
    writeFileSync(file, ticket, { mode: 0o600 });
    const started = Date.now();
    const result = await runAgent(home, ['enroll', '--ticket-file', file, '--json'], { timeoutMs: 60_000 });
    return { home, ...result, ms: Date.now() - started };
  }
  function enrollmentOf(home: string): EnrollmentFile {
    return JSON.parse(readFileSync(join(home, 'enrollment.json'), 'utf8')) as EnrollmentFile;
  }
  async function status(node: { home: string }): Promise<Status> {
    const result = await runAgent(node.home, ['status', '--json']);
    expect(result.code, result.stderr).toBe(0);
    return JSON.parse(result.stdout) as Status;
  }
  /** Polls status (bounded) until `done` holds; returns when it did. */
  async function waitStatus(node: NodeProcess, what: string, done: (s: Status) => boolean, timeoutMs: number): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (let i = 0; i < 1_000; i++) {
      const s = await status(node);
      if (done(s)) return Date.now();
      if (Date.now() > deadline) throw new Error(`${node.identifier}: not ${what} after ${timeoutMs} ms: ${JSON.stringify(s.relay)}\n${node.proc.tail()}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`${node.identifier}: not ${what} after 1,000 polls`);
  }
  const inletAddress = (): string => inlet.inlets[Object.keys(inlet.inlets)[0]!]!;

  beforeAll(async () => {
    cluster = await startPostgresCluster();
    storeUrl = cluster.url(await cluster.createDatabase('learn'));
    relayA = await startRelayProcess({ extraArgs: ['--store', storeUrl] });
    keyFile = join(relayA.dataDir, 'authority.key');
    echo = await startEchoServer();
  }, 120_000);

  afterAll(async () => {
    await stopAll();
    await echo?.close();
    await cluster?.stop();
  });

  it(`agents enrolled with one-relay tickets learn relay B after login (within ${LEARN_BOUND_MS} ms), keep it, show it, and move to it when A is SIGKILLed`, async () => {
    const outletTicket = await mint(relayA, ['svc-outlet'], { relayNames: ['svc'] });
    expect(decodeTicket(outletTicket).otherRelays).toBeUndefined();
    const outletAgent: AgentHome = await enrollAgent(relayA, { ticket: outletTicket });
    const inletAgent: AgentHome = await enrollAgent(relayA, { ticket: await mint(relayA, ['svc-inlet']) });
    outlet = await startNodeProcess(outletAgent, { outlets: [{ to: echo.address, relay: 'svc', allow: 'svc-inlet' }] });
    inlet = await startNodeProcess(inletAgent, { inlets: [{ from: '127.0.0.1:0', via: 'svc', allow: 'svc-outlet' }] });
    for (const node of [outlet, inlet]) {
      await waitStatus(node, `on ${relayA.url}`, (s) => s.relay.connected && s.relay.url === relayA.url, 10_000);
      expect((await status(node)).relay.relays).toEqual([relayA.url]);
    }

    relayB = await startRelayProcess({ extraArgs: storeArgs() });
    const startedB = Date.now();
    for (const node of [outlet, inlet]) {
      const learnedAt = await waitStatus(node, 'told of relay B', (s) => s.relay.relays.includes(relayB.url), LEARN_BOUND_MS + 5_000);
      console.log(`relay B started → ${node === outlet ? 'outlet' : 'inlet'} knows it after ${learnedAt - startedB} ms`);
      expect(learnedAt - startedB).toBeLessThan(LEARN_BOUND_MS);
      const s = await status(node);
      // Learned without leaving A.
      expect(s.relay).toMatchObject({ url: relayA.url, connected: true, relays: [relayA.url, relayB.url] });
      const file = join(node.home, 'enrollment.json');
      expect(enrollmentOf(node.home)).toMatchObject({ relayUrl: relayA.url, otherRelays: [{ url: relayB.url }] });
      expect(statSync(file).mode & 0o777).toBe(0o600);
      const human = await runAgent(node.home, ['status']);
      expect(human.stdout).toContain(`relays      ${relayA.url}  ${relayB.url}`);
    }
    expect(await firstEchoWithin(inletAddress(), 10_000)).toBeDefined();

    const killedAt = Date.now();
    await relayA.proc.kill('SIGKILL');
    const workedAt = await firstEchoWithin(inletAddress(), 10_000);
    expect(workedAt, `no connection through the inlet within 10 s of the kill\n${inlet.proc.tail()}\n${outlet.proc.tail()}`).toBeDefined();
    console.log(`relay A SIGKILLed → first new connection echoed via relay B after ${workedAt! - killedAt} ms`);
    expect(workedAt! - killedAt).toBeLessThan(FAILOVER_BOUND_MS);
    for (const node of [outlet, inlet]) {
      await waitStatus(node, `on ${relayB.url}`, (s) => s.relay.connected && s.relay.url === relayB.url, 5_000);
      // B lists itself first, and keeps A (silent, not retired) as the last resort.
      await waitStatus(node, 'told the list by B', (s) => s.relay.relays.join(' ') === `${relayB.url} ${relayA.url}`, LEARN_BOUND_MS);
      expect(enrollmentOf(node.home)).toMatchObject({ relayUrl: relayB.url, otherRelays: [{ url: relayA.url }] });
    }
  }, 120_000);

  it('a ticket whose first relay is down enrolls through the second, which is dialled first from then on', async () => {
    // A is dead since the test above; B is live.
    const ticket = relisted(await mint(relayB, ['late']), [relayA.url, relayB.url]);
    const result = await enrollWith(ticket);
    expect(result.code, result.stderr).toBe(0);
    expect((JSON.parse(result.stdout) as { relayUrl: string }).relayUrl).toBe(relayB.url);
    expect(enrollmentOf(result.home)).toMatchObject({ relayUrl: relayB.url, otherRelays: [{ url: relayA.url }] });
    expect(result.stderr).toMatch(/could not enroll through this relay/);
    console.log(`enrollment with the first relay down took ${result.ms} ms`);
  }, 60_000);

  describe('which relays enrollment tries', () => {
    let counter: Server;
    let counted = 0;
    let counterUrl = '';
    beforeAll(async () => {
      // Not a relay: it counts TCP connections and hangs up, so "was it tried?" has a plain answer.
      counter = createServer((socket) => {
        counted++;
        socket.destroy();
      });
      await new Promise<void>((resolve) => counter.listen(0, '127.0.0.1', resolve));
      counterUrl = `ws://127.0.0.1:${(counter.address() as AddressInfo).port}`;
    });
    afterAll(() => new Promise<void>((resolve) => counter.close(() => resolve())));

    it('a relay that answers with a refusal (a used ticket) is final: the next relay is never dialled', async () => {
      const once = await mint(relayB, ['once'], { usageCount: 1 });
      expect((await enrollWith(once)).code).toBe(0);
      counted = 0;
      const again = await enrollWith(relisted(once, [relayB.url, counterUrl]));
      expect(again.code).not.toBe(0);
      expect(again.stderr).toMatch(/WICKET_ERR_TICKET_USED/);
      expect(again.stderr).not.toMatch(/WICKET_ERR_RELAYS_UNREACHABLE/);
      expect(counted).toBe(0);
    }, 60_000);

    it('none reachable: WICKET_ERR_RELAYS_UNREACHABLE names every relay tried and why (and the next relay was dialled)', async () => {
      counted = 0;
      const result = await enrollWith(relisted(await mint(relayB, ['nobody']), [relayA.url, counterUrl]));
      expect(result.code).not.toBe(0);
      expect(result.stderr).toMatch(/WICKET_ERR_RELAYS_UNREACHABLE/);
      expect(result.stderr).toContain(`(1) ${relayA.url}: WICKET_ERR_RELAY_UNREACHABLE`);
      expect(result.stderr).toContain(`(2) ${counterUrl}: WICKET_ERR_RELAY_UNREACHABLE`);
      expect(counted).toBe(1);
    }, 60_000);
  });
});
