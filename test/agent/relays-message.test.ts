import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { RelayClient } from '../../agent/relay-client.js';
import { Vault } from '../../agent/vault.js';
import { issueCredential } from '../../protocol/credential.js';
import type { WicketError } from '../../protocol/errors.js';
import { Identity, identifierOf } from '../../protocol/identity.js';
import { MAX_TICKET_RELAYS } from '../../protocol/limits.js';
import { AGENT_FEATURES_HEADER } from '../../protocol/relay-directory.js';
import { base64url, decodeFrameFromAgent, encodeControl, FRAME_CONTROL, RELAY_PROTOCOL_VERSION } from '../../protocol/relay-frames.js';
import { seededRandom } from '../helpers/seeded.js';

// An agent takes the project's relays from the relay it is on (`relays`, issue 14) without leaving
// that relay, keeps them in enrollment.json for its next start, and refuses a hostile list the way
// it refuses any malformed relay message: the connection closes with WICKET_ERR_RELAY_PROTOCOL,
// the list it had is kept, and it reconnects. The relay here is a tiny in-test server, because a
// real relay never sends a bad list (test/relay/agents-learn-relays.test.ts runs real ones).

const logger = pino({ level: process.env.WICKET_TEST_LOG ?? 'silent' });
const dirs: string[] = [];
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function eventually<T>(what: string, emitter: NodeJS.EventEmitter, event: string, timeoutMs = 10_000): Promise<T[]> {
  try {
    return (await once(emitter, event, { signal: AbortSignal.timeout(timeoutMs) })) as T[];
  } catch {
    throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
  }
}

interface FakeRelay {
  url: string;
  /** The features header of each upgrade request, in connection order. */
  features: (string | undefined)[];
}

/** hello, a welcome to any auth, then `afterWelcome(ws, connectionNumber)`. */
async function fakeRelay(authority: Identity, afterWelcome: (ws: WebSocket, n: number) => void): Promise<FakeRelay> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(wss, 'listening');
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => resolve());
      }),
  );
  const relay: FakeRelay = { url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`, features: [] };
  wss.on('connection', (ws, req) => {
    const header = req.headers[AGENT_FEATURES_HEADER];
    relay.features.push(typeof header === 'string' ? header : undefined);
    const n = relay.features.length;
    ws.send(encodeControl({ t: 'hello', version: RELAY_PROTOCOL_VERSION, challenge: base64url(Buffer.alloc(32, 1)), authority: authority.identifier }));
    ws.on('message', (data: Buffer) => {
      const frame = decodeFrameFromAgent(data);
      if (frame.kind !== 'control' || frame.message.t !== 'auth') return;
      const identifier = identifierOf(Buffer.from(frame.message.publicKey, 'base64url'));
      const credential = issueCredential(authority, { subject: identifier, attributes: {}, issuedAt: Date.now(), ttlMs: 600_000 });
      ws.send(encodeControl({ t: 'welcome', identifier, credential: base64url(credential.encoded) }));
      afterWelcome(ws, n);
    });
  });
  return relay;
}

/** A control frame with any JSON at all (what a hostile relay can put on the wire). */
function rawControl(value: unknown): Buffer {
  return Buffer.concat([Buffer.from([FRAME_CONTROL]), Buffer.from(JSON.stringify(value))]);
}

function enrolledHome(relayUrl: string, authority: Identity, otherRelays?: { url: string }[]): Vault {
  const dir = mkdtempSync(join(tmpdir(), 'wicket-relays-msg-'));
  dirs.push(dir);
  const vault = Vault.open(dir);
  const identity = vault.identity();
  const credential = issueCredential(authority, { subject: identity.identifier, attributes: {}, issuedAt: Date.now(), ttlMs: 600_000 });
  vault.saveEnrollment({
    relayUrl,
    authorityPublicKey: authority.publicKey,
    identifier: identity.identifier,
    credential: credential.encoded,
    enrolledAt: Date.now(),
    ...(otherRelays === undefined ? {} : { otherRelays }),
  });
  return vault;
}

function enrollmentFile(vault: Vault): { relayUrl: string; relayCertFingerprint?: string; otherRelays?: { url: string; fingerprint?: string }[] } {
  return JSON.parse(readFileSync(join(vault.home, 'enrollment.json'), 'utf8')) as ReturnType<typeof enrollmentFile>;
}

async function connected(vault: Vault, seed: number): Promise<RelayClient> {
  const client = new RelayClient({ vault, logger, random: seededRandom(seed) });
  cleanups.push(() => client.stop());
  const up = eventually('connected', client, 'connected');
  client.start();
  await up;
  return client;
}

const PIN = Buffer.alloc(32, 0x5a);

describe('the relays message at the agent', () => {
  it('the agent names the feature in its upgrade; it takes the list without leaving the relay, saves it (0600) and dials it after a restart', async () => {
    const authority = Identity.generate();
    const b = 'ws://127.0.0.1:1';
    const c = 'wss://relay-c.example.com:8443';
    let url = '';
    const relay = await fakeRelay(authority, (ws) => {
      ws.send(encodeControl({ t: 'relays', relays: [{ url }, { url: b }, { url: c, fingerprint: base64url(PIN) }] }));
      // The same list again: nothing changes, nothing is written.
      setTimeout(() => ws.send(encodeControl({ t: 'relays', relays: [{ url }, { url: b }, { url: c, fingerprint: base64url(PIN) }] })), 50);
    });
    url = relay.url;
    const vault = enrolledHome(relay.url, authority);
    const client = new RelayClient({ vault, logger, random: seededRandom(1) });
    cleanups.push(() => client.stop());
    const learned = eventually<string[]>('relays', client, 'relays');
    let relaysEvents = 0;
    let drops = 0;
    client.on('relays', () => relaysEvents++);
    client.on('disconnected', () => drops++);
    client.start();
    const [urls] = await learned;
    expect(relay.features).toEqual(['relays']);
    expect(urls).toEqual([relay.url, b, c]);
    expect(client.relayUrls).toEqual([relay.url, b, c]);
    expect(client.relayUrl).toBe(relay.url);
    const written = statSync(join(vault.home, 'enrollment.json'));
    expect(written.mode & 0o777).toBe(0o600);
    expect(enrollmentFile(vault)).toMatchObject({ relayUrl: relay.url, otherRelays: [{ url: b }, { url: c, fingerprint: PIN.toString('base64') }] });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(client.connected).toBe(true);
    expect(drops).toBe(0);
    expect(relaysEvents).toBe(1);
    expect(statSync(join(vault.home, 'enrollment.json')).mtimeMs).toBe(written.mtimeMs);
    await client.stop();

    // A restart reads the saved list.
    const restarted = await connected(Vault.open(vault.home), 2);
    expect(restarted.relayUrls).toEqual([relay.url, b, c]);
  });

  it('a list that leaves out the relay in use (reached under another URL) keeps that relay in front, still current', async () => {
    const authority = Identity.generate();
    const relay = await fakeRelay(authority, (ws) => ws.send(encodeControl({ t: 'relays', relays: [{ url: 'wss://public-name.example.com' }, { url: 'ws://127.0.0.1:2' }] })));
    const client = new RelayClient({ vault: enrolledHome(relay.url, authority, [{ url: 'ws://127.0.0.1:3' }]), logger, random: seededRandom(3) });
    cleanups.push(() => client.stop());
    const learned = eventually<string[]>('relays', client, 'relays');
    client.start();
    expect((await learned)[0]).toEqual([relay.url, 'wss://public-name.example.com', 'ws://127.0.0.1:2']);
    expect(client.relayUrl).toBe(relay.url);
    expect(client.connected).toBe(true);
  });

  const many = Array.from({ length: MAX_TICKET_RELAYS + 1 }, (_, i) => ({ url: `ws://127.0.0.1:${7100 + i}` }));
  const hostile: [string, unknown][] = [
    [`too many (${MAX_TICKET_RELAYS + 1})`, { t: 'relays', relays: many }],
    ['none', { t: 'relays', relays: [] }],
    ['a URL that is not ws/wss', { t: 'relays', relays: [{ url: 'http://127.0.0.1:80' }] }],
    ['a URL with a password', { t: 'relays', relays: [{ url: 'wss://u:secret@relay.example.com' }] }],
    ['a fingerprint of 16 bytes', { t: 'relays', relays: [{ url: 'wss://relay.example.com', fingerprint: base64url(Buffer.alloc(16)) }] }],
    ['a fingerprint that is not base64url', { t: 'relays', relays: [{ url: 'wss://relay.example.com', fingerprint: '!'.repeat(43) }] }],
    ['a URL listed twice', { t: 'relays', relays: [{ url: 'ws://127.0.0.1:9' }, { url: 'ws://127.0.0.1:9' }] }],
    ['relays as a string', { t: 'relays', relays: 'ws://127.0.0.1:9' }],
    ['an entry as a number', { t: 'relays', relays: [42] }],
    ['a URL as a number', { t: 'relays', relays: [{ url: 42 }] }],
    ['an unknown entry field', { t: 'relays', relays: [{ url: 'ws://127.0.0.1:9', weight: 1 }] }],
    ['an unknown message field', { t: 'relays', relays: [{ url: 'ws://127.0.0.1:9' }], more: true }],
  ];

  it.each(hostile)('hostile list (%s): the connection closes with WICKET_ERR_RELAY_PROTOCOL, the list and the file are kept, the agent reconnects', async (_name, message) => {
    const authority = Identity.generate();
    const relay = await fakeRelay(authority, (ws, n) => {
      if (n === 1) ws.send(rawControl(message));
    });
    const vault = enrolledHome(relay.url, authority, [{ url: 'ws://127.0.0.1:4' }]);
    const before = readFileSync(join(vault.home, 'enrollment.json'), 'utf8');
    const client = new RelayClient({ vault, logger, random: seededRandom(4) });
    cleanups.push(() => client.stop());
    let learned = false;
    client.on('relays', () => (learned = true));
    const dropped = eventually<WicketError>('disconnected', client, 'disconnected');
    client.start();
    const [err] = await dropped;
    expect(err!.code).toBe('WICKET_ERR_RELAY_PROTOCOL');
    expect(err!.message).toMatch(/'relays'/);
    expect(err!.message).not.toContain('secret');
    expect(learned).toBe(false);
    expect(client.relayUrls).toEqual([relay.url, 'ws://127.0.0.1:4']);
    // With two relays the next attempt goes to the other (dead) one, then back to this one.
    await eventually('reconnected', client, 'connected', 15_000);
    expect(relay.features.length).toBe(2);
    expect(enrollmentFile(vault).otherRelays).toEqual((JSON.parse(before) as ReturnType<typeof enrollmentFile>).otherRelays);
    expect(enrollmentFile(vault).relayUrl).toBe(relay.url);
  });
});
