import { createHash } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { WebSocket } from 'ws';
import { Identity } from '../../protocol/identity.js';
import { RELAY_MAX_FRAME } from '../../protocol/limits.js';
import { base64url, decodeFrameFromRelay, encodeControl, encodeData, RELAY_AUTH_DOMAIN, RELAY_ENROLL_DOMAIN } from '../../protocol/relay-frames.js';
import type { AgentToRelay, RelayMessageType, RelayToAgent } from '../../protocol/relay-messages.js';
import { decodeTicket } from '../../protocol/ticket.js';
import { ticketEvidence } from './ticket-proof.js';

// A deliberately small agent-side client for testing the relay itself: the raw WebSocket, the
// frame codec and identity signing, no reconnects or channels (the agent engineers write the
// real client). It can also misbehave on purpose (raw bytes, wrong signatures, silence).

export interface CloseInfo {
  readonly code: number;
  readonly reason: string;
}

type Waiter<T> = { match: (value: T) => boolean; resolve: (value: T) => void; reject: (err: Error) => void; timer: NodeJS.Timeout };

const DEFAULT_WAIT_MS = 5_000;

export class RawRelayClient {
  readonly controls: RelayToAgent[] = [];
  readonly data: Buffer[] = [];
  readonly closed: Promise<CloseInfo>;
  challenge = Buffer.alloc(0);
  authority = '';
  identity: Identity | undefined;
  credential: Buffer | undefined;
  /** SHA-256 of the relay's DER certificate, hex (wss:// only). */
  peerFingerprint: string | undefined;
  closeInfo: CloseInfo | undefined;
  #controlWaiters: Waiter<RelayToAgent>[] = [];
  #dataWaiters: Waiter<Buffer>[] = [];
  #nextId = 1;

  private constructor(readonly ws: WebSocket) {
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() };
        for (const waiter of [...this.#controlWaiters, ...this.#dataWaiters]) {
          clearTimeout(waiter.timer);
          waiter.reject(new Error(`connection closed (${code} ${reason.toString()}) while waiting`));
        }
        this.#controlWaiters = [];
        this.#dataWaiters = [];
        resolve(this.closeInfo);
      });
    });
    ws.on('error', () => {});
    ws.on('message', (raw: Buffer) => {
      const frame = decodeFrameFromRelay(raw);
      if (frame.kind === 'data') {
        const waiter = this.#dataWaiters.shift();
        if (waiter !== undefined) {
          clearTimeout(waiter.timer);
          waiter.resolve(raw);
        } else this.data.push(raw);
        return;
      }
      const message = frame.message;
      const index = this.#controlWaiters.findIndex((w) => w.match(message));
      if (index >= 0) {
        const [waiter] = this.#controlWaiters.splice(index, 1);
        clearTimeout(waiter!.timer);
        waiter!.resolve(message);
      } else this.controls.push(message);
    });
  }

  /** Connects and waits for `hello`; `headers` go in the upgrade request (e.g. the agent features header). */
  static async connect(url: string, o: { headers?: Record<string, string> } = {}): Promise<RawRelayClient> {
    const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: RELAY_MAX_FRAME, rejectUnauthorized: false, ...(o.headers === undefined ? {} : { headers: o.headers }) });
    const client = new RawRelayClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const socket = (ws as unknown as { _socket: TLSSocket })._socket;
    if (typeof socket.getPeerCertificate === 'function') {
      client.peerFingerprint = createHash('sha256').update(socket.getPeerCertificate().raw).digest('hex');
    }
    const hello = await client.next('hello');
    if (hello.t === 'hello') {
      client.challenge = Buffer.from(hello.challenge, 'base64url');
      client.authority = hello.authority;
    }
    return client;
  }

  /** Any message, either direction's (tests send the relay what only the relay may send, too). */
  sendControl(message: AgentToRelay | RelayToAgent): void {
    this.ws.send(encodeControl(message), { binary: true });
  }

  sendRaw(bytes: Buffer | string, binary = true): void {
    this.ws.send(bytes, { binary });
  }

  sendData(circuit: number, payload: Uint8Array): boolean {
    this.ws.send(encodeData(circuit, payload), { binary: true });
    return this.ws.bufferedAmount < 4 * 1024 * 1024;
  }

  /** The next control message of type `t` (optionally matching), waiting up to `timeoutMs`. */
  next<T extends RelayMessageType>(t: T, match: (m: Extract<RelayToAgent, { t: T }>) => boolean = () => true, timeoutMs = DEFAULT_WAIT_MS): Promise<Extract<RelayToAgent, { t: T }>> {
    return this.nextMatching((m) => m.t === t && match(m as Extract<RelayToAgent, { t: T }>), `'${t}'`, timeoutMs) as Promise<Extract<RelayToAgent, { t: T }>>;
  }

  /** The next control message satisfying `match`, waiting up to `timeoutMs`. */
  nextMatching(match: (m: RelayToAgent) => boolean, what = 'a matching message', timeoutMs = DEFAULT_WAIT_MS): Promise<RelayToAgent> {
    const index = this.controls.findIndex(match);
    if (index >= 0) return Promise.resolve(this.controls.splice(index, 1)[0]!);
    if (this.closeInfo !== undefined) return Promise.reject(new Error(`connection closed (${this.closeInfo.code}) before ${what}`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#controlWaiters = this.#controlWaiters.filter((w) => w.timer !== timer);
        reject(new Error(`no ${what} within ${timeoutMs} ms; have ${JSON.stringify(this.controls.map((c) => c.t))}`));
      }, timeoutMs);
      this.#controlWaiters.push({ match, resolve, reject, timer });
    });
  }

  /** The next DATA frame (the whole frame, header included). */
  nextData(timeoutMs = DEFAULT_WAIT_MS): Promise<Buffer> {
    const queued = this.data.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#dataWaiters = this.#dataWaiters.filter((w) => w.timer !== timer);
        reject(new Error(`no DATA within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#dataWaiters.push({ match: () => true, resolve, reject, timer });
    });
  }

  /** Waits for `error` then the close; returns both. */
  async refusal(timeoutMs = DEFAULT_WAIT_MS): Promise<{ code: string; message: string; close: CloseInfo }> {
    const error = await this.next('error', () => true, timeoutMs);
    const close = await withTimeout(this.closed, timeoutMs, 'close after error');
    return { code: error.code, message: error.message, close };
  }

  authMessage(identity: Identity, credential: Buffer, challenge = this.challenge, revocationsAfter = 0): AgentToRelay {
    return {
      t: 'auth',
      publicKey: base64url(identity.publicKey),
      signature: base64url(identity.sign(Buffer.concat([RELAY_AUTH_DOMAIN, challenge]))),
      credential: base64url(credential),
      revocationsAfter,
    };
  }

  /** As an honest agent builds it: the ticket's public key and proof, never its secret. */
  enrollMessage(identity: Identity, ticketText: string, challenge = this.challenge): AgentToRelay {
    const ticket = decodeTicket(ticketText);
    const { ticketKey, ticketProof } = ticketEvidence(ticket, identity.publicKey);
    return {
      t: 'enroll',
      ticketId: base64url(ticket.ticketId),
      ticketKey: base64url(ticketKey),
      ticketProof: base64url(ticketProof),
      publicKey: base64url(identity.publicKey),
      signature: base64url(identity.sign(Buffer.concat([RELAY_ENROLL_DOMAIN, challenge, ticket.ticketId]))),
    };
  }

  async #welcomed(identity: Identity): Promise<Extract<RelayToAgent, { t: 'welcome' }>> {
    const answer = await this.nextMatching((m) => m.t === 'welcome' || m.t === 'error', "'welcome' or 'error'");
    if (answer.t === 'error') throw Object.assign(new Error(`${answer.code}: ${answer.message}`), { code: answer.code });
    if (answer.t !== 'welcome') throw new Error('unreachable');
    this.identity = identity;
    this.credential = Buffer.from(answer.credential, 'base64url');
    return answer;
  }

  /** Authenticates; the relay then re-sends the revocation events after `revocationsAfter`. */
  async auth(identity: Identity, credential: Buffer, revocationsAfter = 0): Promise<Extract<RelayToAgent, { t: 'welcome' }>> {
    this.sendControl(this.authMessage(identity, credential, this.challenge, revocationsAfter));
    return this.#welcomed(identity);
  }

  async enroll(identity: Identity, ticketText: string): Promise<Extract<RelayToAgent, { t: 'welcome' }>> {
    this.sendControl(this.enrollMessage(identity, ticketText));
    return this.#welcomed(identity);
  }

  async register(name: string): Promise<RelayToAgent> {
    const id = this.#nextId++;
    this.sendControl({ t: 'register', id, name });
    return this.nextMatching((m) => (m.t === 'registered' || m.t === 'error') && m.id === id, `answer to register ${id}`);
  }

  /** Opens a circuit (skipping outlets in `avoid`); resolves to `opened` or `error`. */
  async open(name: string, avoid: string[] = []): Promise<RelayToAgent> {
    const id = this.#nextId++;
    this.sendControl({ t: 'open', id, name, ...(avoid.length > 0 ? { avoid: avoid.join(',') } : {}) });
    return this.nextMatching((m) => (m.t === 'opened' || m.t === 'error') && m.id === id, `answer to open ${id}`);
  }

  async request(op: string, args: Record<string, unknown> = {}): Promise<Extract<RelayToAgent, { t: 'response' }>> {
    const id = this.#nextId++;
    this.sendControl({ t: 'request', id, op: op as never, args });
    return this.next('response', (m) => m.id === id);
  }

  close(): Promise<CloseInfo> {
    if (this.closeInfo === undefined) this.ws.close();
    return this.closed;
  }
}

export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
    }),
  ]);
}

/** Enrolls a fresh identity with a ticket; returns the authenticated client. */
export async function enrollFresh(url: string, ticketText: string, identity = Identity.generate()): Promise<RawRelayClient> {
  const client = await RawRelayClient.connect(url);
  await client.enroll(identity, ticketText);
  return client;
}
