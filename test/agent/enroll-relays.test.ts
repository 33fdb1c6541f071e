import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { enroll } from '../../agent/enroll.js';
import { Vault } from '../../agent/vault.js';
import { isWicketError, type WicketError } from '../../protocol/errors.js';
import { base64url, decodeFrameFromAgent, encodeControl, RELAY_PROTOCOL_VERSION } from '../../protocol/relay-frames.js';
import { decodeTicket, encodeTicket, type Ticket } from '../../protocol/ticket.js';
import { startRelay } from '../../relay/server.js';

// `agent enroll` with a ticket listing several relays (issue 14): in order, within a deadline; a
// relay that goes away after the secret was sent (no answer) hands over to the next; a one-relay
// ticket fails as it always did. Real sockets; the black holes and the dying relay are in-test
// servers (the PostgreSQL runs with real relays: test/relay/agents-learn-relays.test.ts).

const logger = pino({ level: process.env.WICKET_TEST_LOG ?? 'silent' });
const dirs: string[] = [];
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `wicket-${prefix}-`));
  dirs.push(dir);
  return dir;
}

/** Accepts TCP connections and never says a word (a host that swallows packets, as seen by a dial). */
async function blackHole(): Promise<string> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  );
  return `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Says hello for `authority`, takes the `enroll` (the secret) and dies without answering. */
async function dyingRelay(authority: string): Promise<{ url: string; enrolls: () => number }> {
  let enrolls = 0;
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(wss, 'listening');
  cleanups.push(() => new Promise<void>((resolve) => wss.close(() => resolve())));
  wss.on('connection', (ws) => {
    ws.send(encodeControl({ t: 'hello', version: RELAY_PROTOCOL_VERSION, challenge: base64url(Buffer.alloc(32, 7)), authority }));
    ws.on('message', (data: Buffer) => {
      const frame = decodeFrameFromAgent(data);
      if (frame.kind === 'control' && frame.message.t === 'enroll') {
        enrolls++;
        ws.terminate();
      }
    });
  });
  return { url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`, enrolls: () => enrolls };
}

/** Says hello for `authority`, takes the `enroll` and refuses it with `code` (a relay's own trouble, or the ticket's). */
async function refusingRelay(authority: string, code: string): Promise<{ url: string; enrolls: () => number }> {
  let enrolls = 0;
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(wss, 'listening');
  cleanups.push(() => new Promise<void>((resolve) => wss.close(() => resolve())));
  wss.on('connection', (ws) => {
    ws.send(encodeControl({ t: 'hello', version: RELAY_PROTOCOL_VERSION, challenge: base64url(Buffer.alloc(32, 7)), authority }));
    ws.on('message', (data: Buffer) => {
      const frame = decodeFrameFromAgent(data);
      if (frame.kind === 'control' && frame.message.t === 'enroll') {
        enrolls++;
        ws.send(encodeControl({ t: 'error', code, message: `refused with ${code}` }));
        ws.close(1008, code);
      }
    });
  });
  return { url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`, enrolls: () => enrolls };
}

function relisted(ticket: Ticket, urls: string[]): Ticket {
  const { relayCertFingerprint: _pin, otherRelays: _others, ...rest } = ticket;
  return { ...rest, relayUrl: urls[0]!, ...(urls.length > 1 ? { otherRelays: urls.slice(1).map((url) => ({ url })) } : {}) };
}

async function failure(p: Promise<unknown>): Promise<WicketError> {
  try {
    await p;
  } catch (err) {
    if (isWicketError(err)) return err;
    throw err;
  }
  throw new Error('enrollment succeeded');
}

/** A ticket of a real (SQLite, in-process) relay, decoded. */
async function realTicket(usageCount = 1): Promise<{ ticket: Ticket; relayUrl: string; authority: string }> {
  const relay = await startRelay({ dataDir: tempDir('relay'), logger, listen: { host: '127.0.0.1', port: 0 } });
  cleanups.push(() => relay.close());
  const created = await relay.createTicket({ attributes: { x: '1' }, relayNames: [], usageCount });
  // Round-trip through the text, as a person hands it over.
  return { ticket: decodeTicket(encodeTicket(decodeTicket(created.text.reveal()))), relayUrl: relay.url, authority: relay.authorityIdentifier };
}

describe('enrollment over a ticket\'s relays', () => {
  it('the whole enrollment ends at its deadline, naming each relay: the one cut short and the ones never tried', async () => {
    const { ticket } = await realTicket();
    const holes = [await blackHole(), await blackHole()];
    const started = performance.now();
    const err = await failure(enroll({ ticket: relisted(ticket, holes), vault: Vault.open(tempDir('home')), logger, deadlineMs: 1_500 }));
    const tookMs = performance.now() - started;
    expect(err.code).toBe('WICKET_ERR_RELAYS_UNREACHABLE');
    expect(err.message).toContain(`(1) ${holes[0]}: WICKET_ERR_RELAY_UNREACHABLE: no answer from the relay`);
    expect(err.message).toContain(`(2) ${holes[1]}: not tried, the 1500 ms enrollment deadline had passed`);
    expect(tookMs).toBeGreaterThanOrEqual(1_400);
    expect(tookMs).toBeLessThan(2_500);
  });

  it('a relay that took the secret and died without answering hands over to the next relay, which enrolls the agent', async () => {
    const { ticket, relayUrl, authority } = await realTicket();
    const dying = await dyingRelay(authority);
    const vault = Vault.open(tempDir('home'));
    const result = await enroll({ ticket: relisted(ticket, [dying.url, relayUrl]), vault, logger });
    expect(dying.enrolls()).toBe(1);
    expect(result.relayUrl).toBe(relayUrl);
    expect(vault.requireEnrollment()).toMatchObject({ relayUrl, otherRelays: [{ url: dying.url }] });
  });

  it('a relay refusing for its own state (no signer, its store down) hands over to the next relay; a refusal of the ticket is final', async () => {
    const { ticket, relayUrl, authority } = await realTicket(3);
    for (const code of ['WICKET_ERR_AUTHORITY_UNAVAILABLE', 'WICKET_ERR_STORE_UNAVAILABLE']) {
      const troubled = await refusingRelay(authority, code);
      const result = await enroll({ ticket: relisted(ticket, [troubled.url, relayUrl]), vault: Vault.open(tempDir('home')), logger });
      expect(troubled.enrolls(), code).toBe(1);
      expect(result.relayUrl, code).toBe(relayUrl);
    }
    const deciding = await refusingRelay(authority, 'WICKET_ERR_TICKET_USED');
    const err = await failure(enroll({ ticket: relisted(ticket, [deciding.url, relayUrl]), vault: Vault.open(tempDir('home')), logger }));
    expect(err.code).toBe('WICKET_ERR_TICKET_USED');
  });

  it('a one-relay ticket fails with that relay\'s own error, as before several relays', async () => {
    const { ticket } = await realTicket();
    const err = await failure(enroll({ ticket: relisted(ticket, ['ws://127.0.0.1:1']), vault: Vault.open(tempDir('home')), logger }));
    expect(err.code).toBe('WICKET_ERR_RELAY_UNREACHABLE');
  });
});
