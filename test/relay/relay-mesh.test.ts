import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { askQuestion } from '../../examples/demo-client.js';
import { OCKHAMS_RAZOR_ANSWER, startStandin, type RunningStandin } from '../../examples/azure-openai-standin/index.js';
import { makeTestCa } from '../../examples/test-ca.js';
import { Secret } from '../../protocol/secret.js';
import { decodeTicket, encodeTicket, type Ticket, type TicketRelay } from '../../protocol/ticket.js';
import {
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
import { connectTcp, echoOnce, firstEchoWithin, startEchoServer, type EchoServer } from '../helpers/echo-server.js';
import { postgresBinaries, startPostgresCluster, type PostgresCluster } from '../../scripts/lib/postgres-cluster.js';

// The relay mesh (issue 14): three relays (self-signed TLS, as deployed) on one real PostgreSQL,
// the first started signing, the other two forwarding without the key.
// The inlet sits on relay 1, the outlet on relay 3, so every byte crosses the relay-to-relay link
// 1 ⇄ 3: the official openai SDK call and a 1 GiB SHA-256-checked transfer go through; the taps of
// relays 1 and 3 (which record what arrives on the link too) hold no plaintext; a revocation made
// through relay 2 resets the stream within 1 s; relay 3 killed, the outlet moves to relay 2 and a
// new connection through the inlet (still on relay 1) works within 3 s, now over the link 1 ⇄ 2.
// An outlet with `outletRelays: 2` is registered on relays 3 and 2 at once, and answers through
// relay 2 right after the kill without waiting for a reconnect.

const binaries = postgresBinaries();
if ('skip' in binaries) console.log(`relay mesh skipped: ${binaries.skip}`);

const GIB = 1024 ** 3;
const REVOCATION_BOUND_MS = 1_000;
const FAILOVER_BOUND_MS = 3_000;
const MARKER = Buffer.from(`WICKET-MESH-MARKER-${randomBytes(12).toString('hex')}`);
const SERVERNAME = 'aoai-standin.internal';
const apiKey = new Secret('mesh-e2e-key-0123456789');

/** A target that hashes everything it receives and answers the hex SHA-256 when the sender finishes. */
async function startHashSink(): Promise<{ server: Server; address: string }> {
  const server = createServer((socket) => {
    const hash = createHash('sha256');
    socket.on('data', (chunk: Buffer) => hash.update(chunk));
    socket.on('end', () => socket.end(hash.digest('hex')));
    socket.on('error', () => socket.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return { server, address: `127.0.0.1:${port}` };
}

/** Sends `total` bytes (a random block, its first 8 bytes a counter) and returns [our hash, the sink's]. */
async function sendHashed(address: string, total: number, timeoutMs: number): Promise<{ sent: string; echoed: string; ms: number }> {
  const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
  const block = randomBytes(1024 * 1024);
  const hash = createHash('sha256');
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const socket = connect(port, host);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`transfer did not finish within ${timeoutMs} ms`));
    }, timeoutMs);
    let answer = '';
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString()));
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ sent: hash.digest('hex'), echoed: answer, ms: Date.now() - started });
    });
    let sent = 0;
    let counter = 0n;
    const pump = (): void => {
      while (sent < total) {
        const chunk = Buffer.from(block);
        chunk.writeBigUInt64BE(counter++, 0);
        const piece = chunk.subarray(0, Math.min(chunk.length, total - sent));
        hash.update(piece);
        sent += piece.length;
        if (!socket.write(piece)) return void socket.once('drain', pump);
      }
      socket.end();
    };
    socket.once('connect', pump);
  });
}

describe.skipIf('skip' in binaries)('three relays on one PostgreSQL store, linked into a mesh', () => {
  let cluster: PostgresCluster;
  let storeUrl: string;
  let keyFile: string;
  const relays: RelayProcess[] = [];
  const taps: string[] = [];
  let roles: { r1: RelayProcess; r2: RelayProcess; r3: RelayProcess };
  const tapOf = (relay: RelayProcess): string => taps[relays.indexOf(relay)]!;
  let standin: RunningStandin;
  let sink: { server: Server; address: string };
  let echo: EchoServer;
  let outlet: NodeProcess;
  let inlet: NodeProcess;
  /** A second outlet on relay 3, revoked (through relay 2) while a stream runs through it. */
  let doomed: NodeProcess;
  /** An outlet registered on two relays at once (`outletRelays: 2`): relay 3, and a standby on another. */
  let twin: NodeProcess;
  let database: string;

  const storeArgs = () => ['--store', storeUrl, '--authority-key', keyFile];
  async function mint(relay: RelayProcess, attributes: string[], relayNames: string[] = []): Promise<Ticket> {
    const args = ['ticket', 'create', '--data', relay.dataDir, '--json', ...storeArgs()];
    for (const a of attributes) args.push('--attribute', a);
    for (const r of relayNames) args.push('--relay', r);
    const result = await runCommand('relay', args);
    if (result.code !== 0) throw new Error(`ticket create failed: ${result.stderr}`);
    const ticket = decodeTicket((JSON.parse(result.stdout) as { ticket: string }).ticket);
    for (const entry of relaysOf(ticket)) knownRelays.set(entry.url, entry);
    return ticket;
  }
  /** Every relay a minted ticket listed, with its pin: a ticket can be re-ordered to any of them. */
  const knownRelays = new Map<string, TicketRelay>();
  function relaysOf(ticket: Ticket): TicketRelay[] {
    return [{ url: ticket.relayUrl, ...(ticket.relayCertFingerprint === undefined ? {} : { fingerprint: ticket.relayCertFingerprint }) }, ...(ticket.otherRelays ?? [])];
  }
  /** The ticket with its relays in this order (which relay an agent dials first, then where it moves). */
  function ordered(ticket: Ticket, order: RelayProcess[]): string {
    const picked = order.map((relay) => relaysOf(ticket).find((r) => r.url === relay.url) ?? knownRelays.get(relay.url)!);
    const [first, ...rest] = picked;
    return encodeTicket({ ...ticket, relayUrl: first!.url, ...(first!.fingerprint === undefined ? {} : { relayCertFingerprint: first!.fingerprint }), otherRelays: rest });
  }
  async function relayOf(node: NodeProcess): Promise<string> {
    const result = await runAgent(node.home, ['status', '--json']);
    return (JSON.parse(result.stdout) as { relay: { url: string; connected: boolean } }).relay.url;
  }
  function meshLinksOpen(relay: RelayProcess): number {
    return relay.proc.stderrLines.filter((line) => line.includes('"msg":"mesh link open"')).length;
  }
  async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  /** One new app connection through an echo inlet (default `echo`), echoed within `timeoutMs`. */
  const echoVia = (text: string, timeoutMs: number, inletName = 'echo'): Promise<boolean> => echoOnce(inlet.inlets[inletName]!, text, timeoutMs);

  beforeAll(async () => {
    cluster = await startPostgresCluster();
    database = await cluster.createDatabase('mesh');
    storeUrl = cluster.url(database);
    for (let i = 0; i < 3; i++) taps.push(join(tempDir('wicket-mesh-tap-'), `relay${i + 1}.tap`));
    relays.push(await startRelayProcess({ extraArgs: ['--tls', '--store', storeUrl, '--tap', taps[0]!] }));
    keyFile = join(relays[0]!.dataDir, 'authority.key');
    // Relays 2 and 3 forward without the signing key: their own relay credentials (for the links)
    // and their agents' come from relay 1 through the store's credential queue.
    for (let i = 1; i < 3; i++) relays.push(await startRelayProcess({ extraArgs: ['--tls', '--store', storeUrl, '--tap', taps[i]!] }));
    // Every relay links to the two others (the one with the smaller id dials, within MESH_DIAL_INTERVAL_MS).
    for (const relay of relays) await waitFor('every relay links to both others', () => meshLinksOpen(relay) >= 2, 15_000);

    const ca = await makeTestCa(join(tempDir('wicket-mesh-ca-'), 'ca'), { serverNames: [SERVERNAME] });
    standin = await startStandin({ apiKey, host: '127.0.0.1', tls: { cert: readFileSync(ca.certPath), key: readFileSync(ca.keyPath) } });
    sink = await startHashSink();
    echo = await startEchoServer();
    // Which started relay plays which part: after login a relay lists itself first, then the other
    // relays by URL, so relay 2 (where the outlet moves when relay 3 dies) sorts before relay 1.
    const byUrl = [...relays].sort((a, b) => (a.url < b.url ? -1 : 1));
    roles = { r1: byUrl[1]!, r2: byUrl[0]!, r3: byUrl[2]! };
    const { r1, r2, r3 } = roles;
    const outletAgent = await enrollAgent(r3, { ticket: ordered(await mint(r3, ['mesh-outlet'], ['openai', 'sink', 'echo']), [r3, r2, r1]) });
    const inletAgent = await enrollAgent(r1, { ticket: ordered(await mint(r1, ['mesh-inlet']), [r1, r2, r3]) });
    outlet = await startNodeProcess(outletAgent, {
      outlets: [
        { to: `127.0.0.1:${standin.port}`, relay: 'openai', allow: 'mesh-inlet', tls: true, tlsCa: ca.caCertPath, tlsServername: SERVERNAME },
        { to: sink.address, relay: 'sink', allow: 'mesh-inlet' },
        { to: echo.address, relay: 'echo', allow: 'mesh-inlet' },
      ],
    });
    const doomedAgent = await enrollAgent(r3, { ticket: ordered(await mint(r3, ['mesh-outlet'], ['doomed']), [r3, r2, r1]) });
    doomed = await startNodeProcess(doomedAgent, { outlets: [{ to: echo.address, relay: 'doomed', allow: 'mesh-inlet' }] });
    inlet = await startNodeProcess(inletAgent, {
      inlets: [
        { name: 'openai', from: '127.0.0.1:0', via: 'openai', allow: 'mesh-outlet' },
        { name: 'sink', from: '127.0.0.1:0', via: 'sink', allow: 'mesh-outlet' },
        { name: 'echo', from: '127.0.0.1:0', via: 'echo', allow: 'mesh-outlet' },
        { name: 'doomed', from: '127.0.0.1:0', via: 'doomed', allow: 'mesh-outlet' },
        { name: 'twin', from: '127.0.0.1:0', via: 'twin', allow: 'mesh-outlet' },
      ],
    });
    const twinAgent = await enrollAgent(r3, { ticket: ordered(await mint(r3, ['mesh-outlet'], ['twin']), [r3, r2, r1]) });
    twin = await startNodeProcess(twinAgent, { outletRelays: 2, outlets: [{ to: echo.address, relay: 'twin', allow: 'mesh-inlet' }] } as never);
    expect(await relayOf(outlet)).toBe(r3.url);
    expect(await relayOf(doomed)).toBe(r3.url);
    expect(await relayOf(inlet)).toBe(r1.url);
  }, 180_000);

  afterAll(async () => {
    await stopAll();
    await standin?.close();
    sink?.server.close();
    await echo?.close();
    await cluster?.stop();
  });

  it('the official openai SDK answers through inlet (relay 1) → link → outlet (relay 3)', async () => {
    const answer = await askQuestion({ endpoint: `http://${inlet.inlets.openai}`, apiKey, deployment: 'gpt-4o-mini' });
    expect(answer.text).toBe(OCKHAMS_RAZOR_ANSWER);
    const streamed: string[] = [];
    const again = await askQuestion({ endpoint: `http://${inlet.inlets.openai}`, apiKey, deployment: 'gpt-4o-mini', stream: true, onText: (t) => streamed.push(t) });
    expect(again.streamed).toBe(true);
    expect(streamed.join('')).toBe(OCKHAMS_RAZOR_ANSWER);
  }, 60_000);

  it('the relays read nothing: the taps of relays 1 and 3, link frames included, hold no marker', async () => {
    // Over MESH_CREDIT_BATCH_BYTES each way, so both relays also receive the link's credits.
    const payload = Buffer.concat(Array.from({ length: 15_000 }, () => MARKER));
    const app = await connectTcp(inlet.inlets.echo!);
    await app.write(payload);
    app.end();
    const outcome = await app.outcome(30_000);
    expect(outcome.received.equals(payload)).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 500)); // the taps' write streams catch up
    for (const tap of [tapOf(roles.r1), tapOf(roles.r3)]) {
      const tapped = readFileSync(tap);
      // The link's own frames are in the tap: a mesh `open` names the circuit and the opening agent.
      // relay 1 asked relay 3 to open (`open` arrives at 3, `opened` at 1).
      const linkMessage = tap === tapOf(roles.r1) ? '"t":"opened","circuit"' : '"t":"open","circuit"';
      expect(tapped.includes(Buffer.from(linkMessage)), `${tap} holds the link's ${linkMessage}`).toBe(true);
      expect(tapped.includes(Buffer.from('"t":"credit"')), `${tap} holds the link's credits`).toBe(true);
      expect(tapped.length).toBeGreaterThan(2 * payload.length);
      expect(tapped.includes(MARKER.subarray(0, 16))).toBe(false);
      expect(tapped.includes(Buffer.from(MARKER.toString('hex').slice(0, 32)))).toBe(false);
      expect(tapped.includes(Buffer.from(MARKER.toString('base64').slice(0, 24)))).toBe(false);
    }
  }, 60_000);
  it('1 GiB crosses the two relays with its SHA-256 intact', async () => {
    const result = await sendHashed(inlet.inlets.sink!, GIB, 240_000);
    expect(result.echoed).toBe(result.sent);
    console.log(`1 GiB through relay 1 → relay 3 in ${result.ms} ms (${((GIB / 1e6) / (result.ms / 1000)).toFixed(0)} MB/s), SHA-256 ${result.sent.slice(0, 16)}…`);
  }, 300_000);


  it('an outlet with outletRelays: 2 holds registrations on two relays at once', async () => {
    const { r2, r3 } = roles;
    const deadline = Date.now() + 10_000;
    let status: { relay: { url: string; connected: boolean }; standbyRelay?: { url: string; connected: boolean } } | undefined;
    for (;;) {
      const result = await runAgent(twin.home, ['status', '--json']);
      status = JSON.parse(result.stdout) as typeof status;
      if (status!.standbyRelay?.connected === true || Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    // The main connection on relay 3 (its ticket's first), the standby kept off it: on relay 2.
    expect(status!.relay).toMatchObject({ url: r3.url, connected: true });
    expect(status!.standbyRelay).toMatchObject({ url: r2.url, connected: true });
    // Both relays recorded the name in the store: relay 1 may route the inlet's circuits to either.
    await waitFor('both relays serve twin', async () => (await cluster.sql(database, "SELECT count(*) FROM served_names WHERE name = 'twin'")).trim() === '2', 5_000);
    const app = await connectTcp(inlet.inlets.twin!);
    await app.write(Buffer.from('hello twin'));
    await app.waitForBytes(10, 5_000);
    expect(app.received().toString()).toBe('hello twin');
    app.socket.destroy();
  }, 30_000);

  it('a revocation made through relay 2 resets a stream running through relays 1 and 3 within 1 s', async () => {
    const { r1, r2, r3 } = roles;
    // An admin whose agent talks to relay 2 (the first relay's admin ticket, relay 2 listed first).
    const admin = await enrollAgent(r2, { ticket: ordered(decodeTicket(relays[0]!.adminTicket!), [r2, r1, r3]) });
    const app = await connectTcp(inlet.inlets.doomed!);
    await app.write(Buffer.from('before'));
    await app.waitForBytes(6, 10_000);
    // Keep the stream busy while the revocation lands.
    let sent = 6;
    const pump = setInterval(() => {
      if (!app.socket.destroyed) void app.write(Buffer.from('tick')).then(() => (sent += 4), () => undefined);
    }, 20);
    try {
      const closed = app.outcome(15_000).then(() => Date.now());
      const result = await runAgent(admin.home, ['member', 'revoke', doomed.identifier, '--json']);
      expect(result.code, result.stderr).toBe(0);
      const revokedAtField = (JSON.parse(result.stdout) as { revokedAt: string | number }).revokedAt;
      const revokedAt = typeof revokedAtField === 'number' ? revokedAtField : Date.parse(revokedAtField);
      const cutMs = (await closed) - revokedAt;
      console.log(`revocation through relay 2 → stream through relays 1 and 3 reset ${cutMs} ms after revokedAt (${sent} bytes sent)`);
      expect(cutMs).toBeLessThan(REVOCATION_BOUND_MS);
    } finally {
      clearInterval(pump);
      app.socket.destroy();
    }
    // The revoked outlet exits with EXIT_REVOKED, and its name is no longer served anywhere.
    await waitFor('the revoked outlet exits', () => doomed.proc.exitCode !== undefined, 10_000);
    expect(doomed.proc.exitCode).toBe(3);
  }, 60_000);

  it('relay 3 killed: the outlet moves to relay 2, and a new connection through the inlet (relay 1) works within 3 s', async () => {
    const { r1, r2, r3 } = roles;
    expect(await echoVia('before the kill', 5_000)).toBe(true);
    expect(await echoVia('before the kill', 5_000, 'twin')).toBe(true);
    const killedAt = Date.now();
    await r3.proc.kill('SIGKILL');
    const [workedAt, twinWorkedAt] = await Promise.all([firstEchoWithin(inlet.inlets.echo!, 10_000), firstEchoWithin(inlet.inlets.twin!, 10_000)]);
    expect(workedAt, `no connection through the inlet within 10 s of the kill\n${inlet.proc.tail()}\n${outlet.proc.tail()}`).toBeDefined();
    expect(twinWorkedAt, `no connection to the twin outlet within 10 s of the kill\n${twin.proc.tail()}`).toBeDefined();
    const failoverMs = workedAt! - killedAt;
    const twinMs = twinWorkedAt! - killedAt;
    console.log(`relay 3 SIGKILLed → first new connection through the inlet (relay 1) echoed via relay 2 after ${failoverMs} ms; to the outlet also registered on relay 2 (outletRelays: 2) after ${twinMs} ms`);
    expect(failoverMs).toBeLessThan(FAILOVER_BOUND_MS);
    expect(twinMs).toBeLessThan(FAILOVER_BOUND_MS);
    expect(await relayOf(outlet)).toBe(r2.url);
    expect(await relayOf(inlet)).toBe(r1.url);
  }, 60_000);

  it('PostgreSQL stopped under a stream crossing relays 1 and 2: it flows, new circuits still route from the cache, and all recovers', async () => {
    const app = await connectTcp(inlet.inlets.echo!);
    let expected = '';
    const echoed = async (text: string): Promise<void> => {
      expected += text;
      await app.write(Buffer.from(text));
      await app.waitForBytes(expected.length, 5_000);
      expect(app.received().toString()).toBe(expected);
    };
    await echoed('before ');
    await cluster.stopServer();
    try {
      for (let i = 0; i < 5; i++) await echoed(`during-${i} `);
      // Opening a circuit reads no store: the name directory routes on what it last read.
      expect(await echoVia('a new circuit while the store is down', 5_000)).toBe(true);
    } finally {
      await cluster.startServer();
    }
    await echoed('after');
    app.socket.destroy();
    expect(await echoVia('a new circuit after the store is back', 5_000)).toBe(true);
  }, 60_000);
});
