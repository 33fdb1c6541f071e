import 'reflect-metadata';
import { once } from 'node:events';
import { createHash, KeyObject, webcrypto } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, createServer as createTlsServer, type TLSSocket } from 'node:tls';
import * as x509 from '@peculiar/x509';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { seededRandom } from '../helpers/seeded.js';
import { enroll } from '../../agent/enroll.js';
import { connectOnce, RelayClient, type IncomingCircuit } from '../../agent/relay-client.js';
import { checkRelayUrl } from '../../agent/relay-dial.js';
import { Vault } from '../../agent/vault.js';
import { issueCredential } from '../../protocol/credential.js';
import { isWicketError, type WicketError } from '../../protocol/errors.js';
import { Identity, identifierOf } from '../../protocol/identity.js';
import { DATA_HEADER_LEN, base64url, decodeFrameFromAgent, encodeControl, RELAY_PROTOCOL_VERSION } from '../../protocol/relay-frames.js';
import { decodeTicket } from '../../protocol/ticket.js';
import { startRelay, type RunningRelay } from '../../relay/server.js';
import { startRelayProcess } from '../cli/agent-cli-helpers.js';

// The relay client against the REAL relay (started in-process from relay/server.ts), plus a few
// tiny in-test servers for what a real relay never does (a wrong certificate, a relay that goes
// silent, a hostile relay).

const logger = pino({ level: process.env.WICKET_TEST_LOG ?? 'silent' });
const dirs: string[] = [];
const cleanups: (() => Promise<void> | void)[] = [];

function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `wicket-${prefix}-`));
  dirs.push(dir);
  return dir;
}

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function relayOn(dataDir: string, port = 0, extra: Partial<Parameters<typeof startRelay>[0]> = {}): Promise<RunningRelay> {
  const relay = await startRelay({ dataDir, logger, listen: { host: '127.0.0.1', port }, ...extra });
  cleanups.push(() => relay.close());
  return relay;
}

/** Bounded wait for an event (the test fails with a clear message rather than hanging). */
async function eventually<T>(what: string, emitter: NodeJS.EventEmitter, event: string, timeoutMs = 15_000): Promise<T[]> {
  const signal = AbortSignal.timeout(timeoutMs);
  try {
    return (await once(emitter, event, { signal })) as T[];
  } catch {
    throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
  }
}

async function expectCode(p: Promise<unknown>, code: string): Promise<WicketError> {
  try {
    await p;
  } catch (err) {
    expect(isWicketError(err) ? err.code : String(err)).toBe(code);
    return err as WicketError;
  }
  throw new Error(`expected ${code}, the promise resolved`);
}

/** Enrolls a fresh home with a ticket created by the relay. */
async function enrolledHome(relay: RunningRelay, request: { attributes?: Record<string, string>; relayNames?: string[] }): Promise<Vault> {
  const created = await relay.createTicket({ attributes: request.attributes ?? {}, relayNames: request.relayNames ?? [] });
  const vault = Vault.open(tempDir('home'));
  await enroll({ ticket: decodeTicket(created.text.reveal()), vault, logger });
  return vault;
}

function startClient(vault: Vault, seed = 1): RelayClient {
  const client = new RelayClient({ vault, logger, random: seededRandom(seed) });
  cleanups.push(() => client.stop());
  client.start();
  return client;
}

/** Starts a client and waits for its first authenticated connection (listener attached first). */
async function connectedClient(vault: Vault, seed = 1): Promise<RelayClient> {
  const client = new RelayClient({ vault, logger, random: seededRandom(seed) });
  cleanups.push(() => client.stop());
  const connected = eventually('connected', client, 'connected');
  client.start();
  await connected;
  return client;
}

function dataFrame(payload: string): Buffer {
  const body = Buffer.from(payload);
  const frame = Buffer.alloc(DATA_HEADER_LEN + body.length);
  body.copy(frame, DATA_HEADER_LEN);
  return frame;
}

async function freePort(): Promise<number> {
  const server = createNetServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function selfSignedCertificate(): Promise<{ cert: string; key: string; fingerprint: Buffer }> {
  x509.cryptoProvider.set(webcrypto as unknown as Crypto);
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as CryptoKeyPair;
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: 'CN=not the pinned relay',
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 86_400_000),
    keys,
    signingAlgorithm: alg,
  });
  return {
    cert: certificate.toString('pem'),
    key: KeyObject.from(keys.privateKey).export({ type: 'pkcs8', format: 'pem' }).toString(),
    fingerprint: createHash('sha256').update(Buffer.from(certificate.rawData)).digest(),
  };
}

/** A home whose enrollment points at `relayUrl` (for servers that are not a real relay). */
function fakeEnrollment(relayUrl: string, authority: Identity, fingerprint?: Buffer): Vault {
  const vault = Vault.open(tempDir('fake-home'));
  const identity = vault.identity();
  const credential = issueCredential(authority, { subject: identity.identifier, attributes: {}, issuedAt: Date.now(), ttlMs: 600_000 });
  vault.saveEnrollment({
    relayUrl,
    ...(fingerprint === undefined ? {} : { relayCertFingerprint: fingerprint }),
    authorityPublicKey: authority.publicKey,
    identifier: identity.identifier,
    credential: credential.encoded,
    enrolledAt: Date.now(),
  });
  return vault;
}

describe('RelayClient against the real relay', () => {
  let relay: RunningRelay;
  let relayDir: string;

  beforeAll(async () => {
    relayDir = tempDir('relay');
    relay = await startRelay({ dataDir: relayDir, logger, listen: { host: '127.0.0.1', port: 0 } });
  });
  afterAll(async () => {
    await relay.close();
  });

  it('enroll with the admin ticket → admin ticket.create → a second agent enrolls with that ticket', async () => {
    const adminVault = Vault.open(tempDir('admin'));
    const admin = await enroll({ ticket: decodeTicket(relay.adminTicket!.text.reveal()), vault: adminVault, logger });
    expect(admin.attributes.admin).toBe('true');
    expect(adminVault.requireEnrollment().identifier).toBe(admin.identifier);

    const client = await connectOnce({ vault: adminVault, logger });
    cleanups.push(() => client.stop());
    const result = (await client.request('ticket.create', { attributes: { 'openai-outlet': 'true' }, relayNames: ['openai'], usageCount: 1, expiresInMs: 60_000 })) as { ticket: string };
    expect(result.ticket).toMatch(/^wkt1_/);

    const second = Vault.open(tempDir('second'));
    const enrolled = await enroll({ ticket: decodeTicket(result.ticket), vault: second, logger });
    expect(enrolled.attributes['openai-outlet']).toBe('true');
    expect(enrolled.attributes['wicket:relays']).toBe('openai');
    expect(enrolled.identifier).not.toBe(admin.identifier);

    const members = (await client.request('member.list', {})) as { members: { identifier: string }[] };
    expect(members.members.map((m) => m.identifier)).toContain(enrolled.identifier);
  });

  it('a reused ticket is refused with WICKET_ERR_TICKET_USED and the second home stays unenrolled', async () => {
    const created = await relay.createTicket({ attributes: { x: 'true' }, relayNames: [] });
    const text = created.text.reveal();
    await enroll({ ticket: decodeTicket(text), vault: Vault.open(tempDir('first')), logger });
    const late = Vault.open(tempDir('late'));
    await expectCode(enroll({ ticket: decodeTicket(text), vault: late, logger }), 'WICKET_ERR_TICKET_USED');
    expect(late.enrollment()).toBeUndefined();
  });

  it('an expired ticket is refused locally, before its secret travels', async () => {
    const ticket = decodeTicket((await relay.createTicket({ attributes: {}, relayNames: [] })).text.reveal());
    const vault = Vault.open(tempDir('expired'));
    await expectCode(enroll({ ticket, vault, logger, now: () => ticket.expiresAt + 1 }), 'WICKET_ERR_TICKET_EXPIRED');
    // The ticket was not consumed: it still works with a correct clock.
    await enroll({ ticket, vault, logger });
  });

  it('a home enrolled with one authority refuses a ticket from another (WICKET_ERR_ALREADY_ENROLLED)', async () => {
    const vault = await enrolledHome(relay, {});
    const other = await relayOn(tempDir('other-relay'));
    const foreign = decodeTicket(other.adminTicket!.text.reveal());
    await expectCode(enroll({ ticket: foreign, vault, logger }), 'WICKET_ERR_ALREADY_ENROLLED');
  });

  it('a non-admin identity is refused admin requests with WICKET_ERR_NOT_ADMIN', async () => {
    const client = await connectOnce({ vault: await enrolledHome(relay, { attributes: { plain: 'true' } }), logger });
    cleanups.push(() => client.stop());
    await expectCode(client.request('member.list', {}), 'WICKET_ERR_NOT_ADMIN');
  });

  it('registering a name the credential does not allow is refused (WICKET_ERR_RELAY_NAME_FORBIDDEN) and forgotten', async () => {
    const client = await connectedClient(await enrolledHome(relay, { relayNames: ['allowed'] }));
    await client.register('allowed');
    await expectCode(client.register('not-mine'), 'WICKET_ERR_RELAY_NAME_FORBIDDEN');
    await expectCode(client.openCircuit('no-such-name'), 'WICKET_ERR_RELAY_NAME_UNKNOWN');
  });

  it('carries a circuit both ways; revoking the outlet is fatal for it and reported to the inlet', async () => {
    const outlet = await connectedClient(await enrolledHome(relay, { relayNames: ['echo'] }), 2);
    const inlet = await connectedClient(await enrolledHome(relay, {}), 3);
    await outlet.register('echo');

    const incoming = eventually<IncomingCircuit>('incoming', outlet, 'incoming');
    const { circuit, peer } = await inlet.openCircuit('echo');
    expect(peer).toBe(outlet.identifier);
    const [announced] = await incoming;
    expect(announced!.circuit).toBe(circuit);
    expect(announced!.peer).toBe(inlet.identifier);

    const atOutlet = eventually<unknown>('data at the outlet', outlet, 'data');
    expect(inlet.sendData(circuit, dataFrame('ping'))).toBe(true);
    const [c1, p1] = await atOutlet;
    expect(c1).toBe(circuit);
    expect((p1 as Buffer).toString()).toBe('ping');
    const atInlet = eventually<unknown>('data at the inlet', inlet, 'data');
    outlet.sendData(circuit, dataFrame('pong'));
    expect(((await atInlet)[1] as Buffer).toString()).toBe('pong');

    const fatal = eventually<WicketError>('fatal at the outlet', outlet, 'fatal');
    const revokedNotice = eventually<string>('revoked notice at the inlet', inlet, 'revoked');
    const closedAtInlet = eventually<unknown>('circuit-closed at the inlet', inlet, 'circuit-closed');
    await relay.revoke(outlet.identifier);
    expect((await fatal)[0]!.code).toBe('WICKET_ERR_REVOKED');
    expect((await revokedNotice)[0]).toBe(outlet.identifier);
    expect((await closedAtInlet)[0]).toBe(circuit);
    // Fatal means no reconnect: the outlet stays disconnected.
    expect(outlet.connected).toBe(false);
    expect(inlet.connected).toBe(true);
  });

  it('a relay-pushed credential refresh is verified, kept in memory and saved to the vault', async () => {
    const dir = tempDir('short-ttl');
    const shortTtl = await relayOn(dir, 0, { credentialTtlMs: 4_000 });
    const vault = await enrolledHome(shortTtl, {});
    const client = await connectedClient(vault, 4);
    const first = client.credential();
    const [pushed] = await eventually<Buffer>('a refreshed credential', client, 'credential');
    expect(pushed!.equals(first)).toBe(false);
    expect(client.credential().equals(pushed!)).toBe(true);
    expect(vault.requireEnrollment().credential.equals(pushed!)).toBe(true);
  });
});

describe('RelayClient reconnects', () => {
  it('reconnects after the relay process is killed and restarted, and re-registers its names; open circuits are closed on the drop', async () => {
    const dataDir = tempDir('restart');
    let relay = await startRelayProcess(dataDir);
    cleanups.push(() => relay.stop());
    // An admin creates the outlet's ticket (relay name 'svc') over the admin API.
    const adminVault = Vault.open(tempDir('restart-admin'));
    await enroll({ ticket: decodeTicket(relay.adminTicket!), vault: adminVault, logger });
    const admin = await connectOnce({ vault: adminVault, logger });
    const ticketFor = async (relayNames: string[]): Promise<Vault> => {
      const { ticket } = (await admin.request('ticket.create', { attributes: {}, relayNames, usageCount: 1, expiresInMs: 60_000 })) as { ticket: string };
      const vault = Vault.open(tempDir('restart-home'));
      await enroll({ ticket: decodeTicket(ticket), vault, logger });
      return vault;
    };
    const outletVault = await ticketFor(['svc']);
    const inletVault = await ticketFor([]);
    await admin.stop();

    const outlet = await connectedClient(outletVault, 5);
    const inlet = await connectedClient(inletVault, 6);
    await outlet.register('svc');
    const { circuit } = await inlet.openCircuit('svc');

    const outletDown = eventually<WicketError>('outlet disconnected', outlet, 'disconnected');
    const inletCircuitClosed = eventually<unknown>('circuit-closed at the inlet', inlet, 'circuit-closed');
    await relay.kill();
    await outletDown;
    const [closedCircuit, code] = await inletCircuitClosed;
    expect(closedCircuit).toBe(circuit);
    expect(code).toBe('WICKET_ERR_CIRCUIT_CLOSED');

    const outletBack = eventually('outlet reconnected', outlet, 'connected', 30_000);
    const inletBack = eventually('inlet reconnected', inlet, 'connected', 30_000);
    relay = await startRelayProcess(dataDir, relay.port);
    await Promise.all([outletBack, inletBack]);
    // The outlet re-registered 'svc' by itself: a new circuit reaches it. Registration is async
    // after 'connected', so retry the open a bounded number of times.
    let opened: { circuit: number } | undefined;
    for (let i = 0; i < 50 && opened === undefined; i++) {
      try {
        opened = await inlet.openCircuit('svc');
      } catch (err) {
        if (!isWicketError(err, 'WICKET_ERR_RELAY_NAME_UNKNOWN')) throw err;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    expect(opened?.circuit).toBeGreaterThan(0);
  });

  it('no hot loop: against a closed port, attempts back off exponentially', async () => {
    const port = await freePort();
    const vault = fakeEnrollment(`ws://127.0.0.1:${port}`, Identity.generate());
    const client = new RelayClient({ vault, logger, random: seededRandom(9) });
    cleanups.push(() => client.stop());
    const attempts: number[] = [];
    const started = performance.now();
    client.on('connecting', () => attempts.push(performance.now() - started));
    client.start();
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    await client.stop();
    const count = attempts.length;
    // Delays are at least 100, 100, 200, 400, 800 ms (half the doubling ceiling, never under the
    // minimum): at most 6 attempts fit in 2 s however fast the machine. A hot loop makes thousands.
    expect(count).toBeGreaterThanOrEqual(2);
    expect(count).toBeLessThanOrEqual(6);
    expect(client.connected).toBe(false);
    expect(client.lastError?.code).toBe('WICKET_ERR_RELAY_UNREACHABLE');
  });
});

describe('RelayClient transport security', () => {
  it('TLS pin mismatch: refused with WICKET_ERR_RELAY_TLS_PIN before any byte of auth (or HTTP) is sent', async () => {
    const { cert, key, fingerprint } = await selfSignedCertificate();
    const received: Buffer[] = [];
    let tcpConnections = 0;
    const server = createTlsServer({ cert, key }, (socket: TLSSocket) => {
      socket.on('data', (chunk: Buffer) => {
        received.push(chunk);
        // Answer an upgrade request with a plain refusal so the control dial below ends at once.
        if (Buffer.concat(received).includes('\r\n\r\n')) socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      });
      socket.on('error', () => {});
    });
    server.on('connection', () => tcpConnections++);
    server.on('tlsClientError', () => {});
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const url = `wss://127.0.0.1:${(server.address() as AddressInfo).port}`;

    const wrongPin = Buffer.from(fingerprint);
    wrongPin[0]! ^= 0xff;
    const err = await expectCode(connectOnce({ vault: fakeEnrollment(url, Identity.generate(), wrongPin), logger }), 'WICKET_ERR_RELAY_TLS_PIN');
    expect(err.message).toMatch(/nothing was sent/);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(tcpConnections).toBe(1);
    expect(Buffer.concat(received).length).toBe(0);

    // Control: with the right pin the same client does write (the HTTP upgrade), so the zero
    // above is the pin check at work, not a server that never receives anything.
    await expectCode(connectOnce({ vault: fakeEnrollment(url, Identity.generate(), fingerprint), logger }), 'WICKET_ERR_RELAY_UNREACHABLE');
    expect(Buffer.concat(received).toString('latin1')).toMatch(/^GET \/ HTTP\/1\.1/);
  });

  it('the real relay with a self-signed certificate: the ticket pins it and enrollment over wss works', async () => {
    const relay = await relayOn(tempDir('tls-relay'), 0, { tls: 'self-signed' });
    expect(relay.url).toMatch(/^wss:/);
    const ticket = decodeTicket(relay.adminTicket!.text.reveal());
    expect(ticket.relayCertFingerprint?.toString('hex')).toBe(relay.fingerprint);
    const vault = Vault.open(tempDir('tls-home'));
    await enroll({ ticket, vault, logger });
    const client = await connectOnce({ vault, logger });
    cleanups.push(() => client.stop());
    expect(client.connected).toBe(true);
  });

  it('the relay hop speaks TLS 1.3 with AES-128-GCM, and a TLS 1.2 client is refused', async () => {
    const relay = await relayOn(tempDir('tls-suite'), 0, { tls: 'self-signed' });
    const { port } = new URL(relay.url);
    const dial = (options: { maxVersion?: 'TLSv1.2' }) =>
      new Promise<{ protocol: string | null; cipher: string }>((resolve, reject) => {
        const socket = tlsConnect({ host: '127.0.0.1', port: Number(port), rejectUnauthorized: false, ...options });
        socket.once('secureConnect', () => {
          resolve({ protocol: socket.getProtocol(), cipher: socket.getCipher().standardName });
          socket.destroy();
        });
        socket.once('error', reject);
      });
    // What an agent offers (agent/relay-dial.ts): all three TLS 1.3 suites; the relay's order wins.
    expect(await dial({})).toEqual({ protocol: 'TLSv1.3', cipher: 'TLS_AES_128_GCM_SHA256' });
    await expect(dial({ maxVersion: 'TLSv1.2' })).rejects.toThrow(/version|alert/i);
  });

  it('ws:// to a non-loopback host is refused without --insecure (WICKET_ERR_INSECURE_RELAY), before dialling', async () => {
    // 192.0.2.1 is TEST-NET-1: never dialled here, the refusal comes first.
    const vault = fakeEnrollment('ws://192.0.2.1:7400', Identity.generate());
    await expectCode(connectOnce({ vault, logger }), 'WICKET_ERR_INSECURE_RELAY');
    expect(() => checkRelayUrl('ws://relay.example.com:80', false)).toThrow(/WICKET_ERR_INSECURE_RELAY/);
    expect(checkRelayUrl('ws://192.0.2.1:7400', true).hostname).toBe('192.0.2.1');
    for (const loopback of ['ws://127.0.0.1:1', 'ws://127.8.9.10:1', 'ws://localhost:1', 'ws://[::1]:1']) {
      expect(checkRelayUrl(loopback, false).protocol).toBe('ws:');
    }
  });
});

describe('RelayClient against a misbehaving relay', () => {
  /** A minimal protocol-speaking server: hello, then accept any auth with a welcome. */
  async function fakeRelay(authority: Identity, opts: { helloAuthority?: string; afterWelcome?: (ws: WebSocket) => void; autoPong?: boolean }): Promise<string> {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, autoPong: opts.autoPong ?? true });
    await once(wss, 'listening');
    cleanups.push(() => new Promise<void>((resolve) => {
      for (const c of wss.clients) c.terminate();
      wss.close(() => resolve());
    }));
    wss.on('connection', (ws) => {
      ws.send(encodeControl({ t: 'hello', version: RELAY_PROTOCOL_VERSION, challenge: base64url(Buffer.alloc(32, 1)), authority: opts.helloAuthority ?? authority.identifier }));
      ws.on('message', (data: Buffer) => {
        const frame = decodeFrameFromAgent(data);
        if (frame.kind !== 'control' || frame.message.t !== 'auth') return;
        const identifier = identifierOf(Buffer.from(frame.message.publicKey, 'base64url'));
        const credential = issueCredential(authority, { subject: identifier, attributes: {}, issuedAt: Date.now(), ttlMs: 600_000 });
        ws.send(encodeControl({ t: 'welcome', identifier, credential: base64url(credential.encoded) }));
        opts.afterWelcome?.(ws);
      });
    });
    return `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`;
  }

  it('a relay that goes silent (no pongs) is dropped within the keepalive deadline', async () => {
    const authority = Identity.generate();
    const url = await fakeRelay(authority, { autoPong: false });
    const client = await connectedClient(fakeEnrollment(url, authority), 10);
    const [err] = await eventually<WicketError>('disconnected by keepalive', client, 'disconnected', 15_000);
    expect(err!.code).toBe('WICKET_ERR_RELAY_UNREACHABLE');
    expect(err!.message).toMatch(/silent/);
  });

  it('a relay serving another authority is refused before auth is sent (fatal: no reconnects)', async () => {
    const authority = Identity.generate();
    const url = await fakeRelay(authority, { helloAuthority: Identity.generate().identifier });
    const client = startClient(fakeEnrollment(url, authority), 11);
    const [err] = await eventually<WicketError>('fatal', client, 'fatal');
    expect(err!.code).toBe('WICKET_ERR_CREDENTIAL_ISSUER');
  });

  it('a welcome credential signed by another authority is rejected (impostor relay)', async () => {
    const pinned = Identity.generate();
    const impostor = Identity.generate();
    const url = await fakeRelay(impostor, { helloAuthority: pinned.identifier });
    await expectCode(connectOnce({ vault: fakeEnrollment(url, pinned), logger }), 'WICKET_ERR_CREDENTIAL_ISSUER');
  });

  it('garbage from the relay after auth closes that connection with a clear code, and the client reconnects', async () => {
    const authority = Identity.generate();
    let connections = 0;
    const url = await fakeRelay(authority, {
      afterWelcome: (ws) => {
        connections++;
        if (connections === 1) ws.send(Buffer.from([0x07, 1, 2, 3]));
      },
    });
    const client = startClient(fakeEnrollment(url, authority), 12);
    const [err] = await eventually<WicketError>('disconnected on garbage', client, 'disconnected');
    expect(err!.code).toBe('WICKET_ERR_FRAME_UNKNOWN_TYPE');
    await eventually('reconnected', client, 'connected');
    expect(connections).toBe(2);
  });
});
