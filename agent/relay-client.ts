import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { verifyCredential } from '../protocol/credential.js';
import { asWicketError, isWicketError, wicketError, type ErrorCode, type WicketError } from '../protocol/errors.js';
import { parseIdentifier, type Identifier, type Identity } from '../protocol/identity.js';
import {
  MAX_CIRCUITS_PER_CONNECTION,
  MAX_CREDENTIAL_LEN,
  RELAY_AUTH_TIMEOUT_MS,
  RELAY_HIGH_WATER_BYTES,
  RELAY_LOW_WATER_BYTES,
  RELAY_MAX_FRAME,
} from '../protocol/limits.js';
import {
  DATA_HEADER_LEN,
  fromBase64url,
  writeDataHeader,
  type AdminOp,
  type ControlMessage,
  type RelayFrame,
} from '../protocol/relay-frames.js';
import { Backoff } from './backoff.js';
import { dialRelay } from './relay-dial.js';
import { relayHandshake } from './relay-handshake.js';
import { relayError, toErrorCode, type RelayLink } from './relay-link.js';
import { PendingRequests, type OutgoingRequest, type Reply, type ReplyType } from './relay-requests.js';
import type { Enrollment, Vault } from './vault.js';
import { isRelayName, RELAY_NAME_RULE } from '../protocol/relay-names.js';

// The agent's connection to the relay: dial, authenticate, stay connected (jittered exponential
// backoff between attempts, reset after a successful authentication), re-register relay names
// after every reconnect, and carry circuits, admin requests and relay notices
// (relay-semantics.md is the contract this file implements).
//
// Events:
//   'connecting'      (attempt: number)               a dial is starting (1 = first since the last success)
//   'connected'       ()                              authenticated; names are being re-registered
//   'disconnected'    (err: WicketError)              an authenticated connection dropped
//   'incoming'        ({circuit, name, peer})         a new circuit for a name we serve
//   'data'            (circuit: number, payload: Buffer)
//   'circuit-closed'  (circuit: number, code: ErrorCode)  the relay or the other end closed it,
//                                                     or the connection dropped (WICKET_ERR_CIRCUIT_CLOSED)
//   'revoked'         (identifier: Identifier)        close every channel with that peer now
//   'credential'      (encoded: Buffer)               a fresh credential (already saved to the vault)
//   'registration-failed' (name: string, err: WicketError)  a re-registration after reconnect was refused
//   'drain'           ()                              sendData may be called again after it returned false
//   'fatal'           (err: WicketError)              this identity was revoked or refused: no more reconnects

export interface RelayClientOptions {
  vault: Vault;
  logger: Logger;
  insecure?: boolean;
  now?: () => number;
  /** Uniform [0,1) source for the backoff jitter; inject a seeded one in tests. */
  random?: () => number;
}

export interface IncomingCircuit {
  circuit: number;
  name: string;
  peer: Identifier;
}

/** Refusals that no retry can fix: reconnecting would only hammer the relay. */
const FATAL_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'WICKET_ERR_REVOKED',
  'WICKET_ERR_RELAY_AUTH',
  'WICKET_ERR_MEMBER_UNKNOWN',
  'WICKET_ERR_NOT_ENROLLED',
  'WICKET_ERR_CREDENTIAL_ISSUER',
  'WICKET_ERR_CREDENTIAL_SIGNATURE',
  'WICKET_ERR_CREDENTIAL_SUBJECT',
  'WICKET_ERR_CREDENTIAL_MALFORMED',
  'WICKET_ERR_INSECURE_RELAY',
  'WICKET_ERR_CONFIG',
  'WICKET_ERR_VERSION',
  'WICKET_ERR_KEY_FILE_PERMISSIONS',
  'WICKET_ERR_KEY_INVALID',
]);

function checkName(name: string): void {
  if (!isRelayName(name)) throw wicketError('WICKET_ERR_ARGUMENT', `a relay name must be ${RELAY_NAME_RULE}`);
}

export class RelayClient extends EventEmitter {
  readonly identifier: Identifier;
  readonly #vault: Vault;
  readonly #log: Logger;
  readonly #insecure: boolean;
  readonly #now: () => number;
  readonly #identity: Identity;
  readonly #enrollment: Enrollment;
  readonly #backoff: Backoff;
  #credential: Buffer;
  #link: RelayLink | undefined;
  #running = false;
  #reconnect = true;
  #fatal: WicketError | undefined;
  #lastError: WicketError | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  #dialAbort: AbortController | undefined;
  #handshaking: RelayLink | undefined;
  #connecting = false;
  #attempts = 0;
  readonly #names = new Set<string>();
  readonly #circuits = new Set<number>();
  readonly #requests = new PendingRequests();
  #needDrain = false;

  constructor(o: RelayClientOptions) {
    super();
    this.#vault = o.vault;
    this.#log = o.logger;
    this.#insecure = o.insecure ?? false;
    this.#now = o.now ?? Date.now;
    this.#enrollment = o.vault.requireEnrollment();
    this.#identity = o.vault.identity();
    if (this.#identity.identifier !== this.#enrollment.identifier) {
      throw wicketError('WICKET_ERR_CONFIG', `the enrollment in ${o.vault.home} is for ${this.#enrollment.identifier}, but the identity key is ${this.#identity.identifier}; re-enroll`);
    }
    this.identifier = this.#identity.identifier;
    this.#credential = this.#enrollment.credential;
    this.#backoff = new Backoff(o.random !== undefined ? { random: o.random } : {});
  }

  get connected(): boolean {
    return this.#link !== undefined && !this.#link.closed;
  }

  /** Why the last attempt or connection failed (undefined while connected). */
  get lastError(): WicketError | undefined {
    return this.#lastError;
  }

  /** The relay URL this client dials. */
  get relayUrl(): string {
    return this.#enrollment.relayUrl;
  }

  credential(): Buffer {
    return this.#credential;
  }

  /** Connects and stays connected until stop() or a fatal refusal. */
  start(): void {
    if (this.#running || this.#fatal !== undefined) return;
    this.#running = true;
    this.#reconnect = true;
    void this.#connectNow();
  }

  async stop(): Promise<void> {
    this.#running = false;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    this.#dialAbort?.abort();
    // A connection still authenticating is cut too, so stop() leaves no socket behind.
    this.#handshaking?.fail(wicketError('WICKET_ERR_RELAY_UNREACHABLE', 'stopped while connecting'));
    const link = this.#link;
    if (link !== undefined) await link.close();
  }

  /**
   * Serves `name`: remembered and registered again after every reconnect. Resolves once the relay
   * acknowledged it (or at once while disconnected: it is registered on connect). Rejects with the
   * relay's refusal (WICKET_ERR_RELAY_NAME_FORBIDDEN; the name is then forgotten) or a timeout.
   */
  async register(name: string): Promise<void> {
    checkName(name);
    this.#names.add(name);
    if (!this.connected) return;
    await this.#registerOnce(name);
  }

  async unregister(name: string): Promise<void> {
    checkName(name);
    const had = this.#names.delete(name);
    if (!had || !this.connected) return;
    try {
      await this.#call({ t: 'unregister', name }, 'unregistered');
    } catch (err) {
      // Dropped meanwhile: the relay forgets registrations of a dead connection anyway.
      if (!isWicketError(err, 'WICKET_ERR_RELAY_UNREACHABLE')) throw err;
    }
  }

  /**
   * Opens a circuit to whoever serves `name`. The circuit is live from the moment the relay's
   * 'opened' is read (so a 'close' right behind it is not missed); 'data' for it before this
   * promise resolves is possible only if the serving side speaks first, which Noise XX's
   * responder never does.
   */
  async openCircuit(name: string): Promise<{ circuit: number; peer: Identifier }> {
    checkName(name);
    const reply = await this.#call({ t: 'open', name }, 'opened');
    if (!this.#circuits.has(reply.circuit)) {
      throw wicketError('WICKET_ERR_CIRCUIT_CLOSED', `circuit ${reply.circuit} to '${name}' closed before it could be used`);
    }
    return { circuit: reply.circuit, peer: reply.peer as Identifier };
  }

  /**
   * Sends one DATA frame. `frame` has DATA_HEADER_LEN bytes of headroom at the front, filled here
   * with the circuit id; the same Buffer is then queued (do not reuse it). Returns false above
   * the high-water mark; 'drain' follows. Frames for a circuit that is not open (closed, or the
   * connection dropped and 'circuit-closed' was emitted) are dropped.
   */
  sendData(circuit: number, frame: Buffer): boolean {
    if (frame.length < DATA_HEADER_LEN || frame.length > RELAY_MAX_FRAME) {
      throw wicketError('WICKET_ERR_FRAME_TOO_LARGE', `a data frame must be ${DATA_HEADER_LEN}..${RELAY_MAX_FRAME} bytes, got ${frame.length}`);
    }
    const link = this.#link;
    if (link === undefined || !this.#circuits.has(circuit)) return true;
    writeDataHeader(frame, circuit);
    link.send(frame);
    if (link.bufferedAmount > RELAY_HIGH_WATER_BYTES) {
      this.#needDrain = true;
      return false;
    }
    return true;
  }

  closeCircuit(circuit: number, code: ErrorCode): void {
    if (!this.#circuits.delete(circuit)) return;
    this.#link?.sendControl({ t: 'close', circuit, code });
  }

  /** An admin operation; rejects with the relay's WicketError code. */
  async request(op: AdminOp, args: Record<string, unknown>): Promise<unknown> {
    const reply = await this.#call({ t: 'request', op, args }, 'response');
    if (reply.error !== undefined) {
      const e = reply.error as { code?: unknown; message?: unknown };
      throw relayError(typeof e.code === 'string' ? e.code : 'WICKET_ERR_INTERNAL', typeof e.message === 'string' ? e.message : '');
    }
    return reply.result;
  }

  /** One connection and authentication, no reconnect: for one-shot CLI commands. */
  static async connectOnce(o: RelayClientOptions): Promise<RelayClient> {
    const client = new RelayClient(o);
    client.#running = true;
    client.#reconnect = false;
    try {
      await client.#attempt();
    } catch (err) {
      client.#running = false;
      throw asWicketError(err);
    }
    return client;
  }

  // ------------------------------------------------------------------------------------------
  // connection lifecycle
  // ------------------------------------------------------------------------------------------

  async #connectNow(): Promise<void> {
    this.#retryTimer = undefined;
    if (!this.#running || this.#connecting || this.#link !== undefined) return;
    this.#connecting = true;
    try {
      await this.#attempt();
    } catch (err) {
      const e = asWicketError(err);
      this.#lastError = e;
      const level = this.#running ? 'warn' : 'debug';
      this.#log[level]({ code: e.code, relay: this.#enrollment.relayUrl, attempt: this.#attempts }, `relay connection failed: ${e.message}`);
      this.#afterFailure(e);
    } finally {
      this.#connecting = false;
    }
  }

  /** Dial + handshake; on success the link is installed. Throws on failure. */
  async #attempt(): Promise<void> {
    this.#attempts++;
    this.#emitSafely('connecting', this.#attempts);
    const abort = new AbortController();
    this.#dialAbort = abort;
    let link: RelayLink;
    try {
      link = await dialRelay({
        url: this.#enrollment.relayUrl,
        fingerprint: this.#enrollment.relayCertFingerprint,
        insecure: this.#insecure,
        timeoutMs: RELAY_AUTH_TIMEOUT_MS,
        signal: abort.signal,
      });
    } finally {
      this.#dialAbort = undefined;
    }
    let welcome;
    this.#handshaking = link;
    try {
      welcome = await relayHandshake(
        link,
        { kind: 'auth', identity: this.#identity, credential: this.#credential },
        { authorityPublicKey: this.#enrollment.authorityPublicKey, now: this.#now(), timeoutMs: RELAY_AUTH_TIMEOUT_MS },
      );
    } catch (err) {
      link.fail(asWicketError(err));
      throw err;
    } finally {
      this.#handshaking = undefined;
    }
    if (!this.#running) {
      await link.close();
      throw wicketError('WICKET_ERR_RELAY_UNREACHABLE', 'stopped while connecting');
    }
    if (link.closed) throw wicketError('WICKET_ERR_RELAY_UNREACHABLE', 'the relay closed the connection right after authentication');
    this.#link = link;
    this.#lastError = undefined;
    this.#attempts = 0;
    this.#backoff.reset();
    link.onClose((reason) => this.#onLinkClosed(link, reason));
    link.socket.on('drain', () => this.#onSocketDrain(link));
    this.#log.info({ relay: this.#enrollment.relayUrl, identifier: this.identifier }, 'connected to the relay');
    this.#storeCredential(welcome.encoded);
    this.#emitSafely('connected');
    // Frames that arrived right behind the welcome were queued by the link; they flow from here.
    link.deliverTo((frame) => this.#dispatch(link, frame));
    if (link.closed) return;
    for (const name of this.#names) {
      this.#registerOnce(name).catch((err: WicketError) => {
        this.#log.error({ name, code: err.code }, `registering relay name failed: ${err.message}`);
        this.emit('registration-failed', name, err);
      });
    }
  }

  async #registerOnce(name: string): Promise<void> {
    try {
      await this.#call({ t: 'register', name }, 'registered');
      this.#log.info({ name }, 'relay name registered');
    } catch (err) {
      const e = asWicketError(err);
      // The connection dropped meanwhile: the name stays remembered and is registered on reconnect.
      if (e.code === 'WICKET_ERR_RELAY_UNREACHABLE' && this.#reconnect && this.#running) return;
      if (e.code === 'WICKET_ERR_RELAY_NAME_FORBIDDEN') this.#names.delete(name);
      throw e;
    }
  }

  #onLinkClosed(link: RelayLink, reason: WicketError): void {
    if (this.#link !== link) return;
    this.#link = undefined;
    this.#lastError = reason;
    this.#requests.rejectAll(wicketError('WICKET_ERR_RELAY_UNREACHABLE', `the connection to the relay closed: ${reason.message}`));
    const circuits = [...this.#circuits];
    this.#circuits.clear();
    for (const circuit of circuits) this.#emitSafely('circuit-closed', circuit, 'WICKET_ERR_CIRCUIT_CLOSED');
    if (this.#needDrain) {
      this.#needDrain = false;
      this.#emitSafely('drain');
    }
    const level = this.#running ? 'warn' : 'info';
    this.#log[level]({ code: reason.code, relay: this.#enrollment.relayUrl }, `disconnected from the relay: ${reason.message}`);
    this.#emitSafely('disconnected', reason);
    this.#afterFailure(reason);
  }

  /** After a failed attempt or a dropped connection: stop for good, or retry after a backoff delay. */
  #afterFailure(err: WicketError): void {
    if (FATAL_CODES.has(err.code) && this.#running) {
      this.#fatal = err;
      this.#running = false;
      this.#log.error({ code: err.code }, `the relay refused this identity; not reconnecting: ${err.message}`);
      this.#emitSafely('fatal', err);
      return;
    }
    if (!this.#running || !this.#reconnect || this.#retryTimer !== undefined) return;
    const delay = this.#backoff.next();
    this.#log.debug({ delayMs: delay }, 'reconnecting to the relay after a delay');
    this.#retryTimer = setTimeout(() => void this.#connectNow(), delay);
  }

  #onSocketDrain(link: RelayLink): void {
    if (this.#link !== link || !this.#needDrain) return;
    if (link.bufferedAmount > RELAY_LOW_WATER_BYTES) return;
    this.#needDrain = false;
    this.#emitSafely('drain');
  }

  #storeCredential(encoded: Buffer): void {
    this.#credential = encoded;
    try {
      this.#vault.saveCredential(encoded);
    } catch (err) {
      this.#log.error({ code: asWicketError(err).code }, 'could not save the refreshed credential to the vault');
    }
    this.#emitSafely('credential', encoded);
  }

  // ------------------------------------------------------------------------------------------
  // requests and replies
  // ------------------------------------------------------------------------------------------

  #call<T extends ReplyType>(message: OutgoingRequest, expects: T): Promise<Reply<T>> {
    const link = this.#link;
    if (link === undefined || link.closed) {
      return Promise.reject(wicketError('WICKET_ERR_RELAY_UNREACHABLE', `not connected to the relay at ${this.#enrollment.relayUrl}`));
    }
    return this.#requests.call(message, expects, (m) => link.sendControl(m));
  }

  #settle(link: RelayLink, id: number, message: ControlMessage): boolean {
    const outcome = this.#requests.settle(id, message);
    if (outcome.kind === 'mismatch') link.fail(outcome.error);
    return outcome.kind === 'settled';
  }

  #onOpened(link: RelayLink, m: Extract<ControlMessage, { t: 'opened' }>): void {
    try {
      parseIdentifier(m.peer);
    } catch {
      return link.fail(wicketError('WICKET_ERR_RELAY_PROTOCOL', "the relay's 'opened' names no valid peer identifier"));
    }
    if (m.circuit === 0 || this.#circuits.has(m.circuit)) {
      return link.fail(wicketError('WICKET_ERR_RELAY_PROTOCOL', `the relay opened circuit ${m.circuit}, which is zero or already open`));
    }
    // Live before the opener's promise continues, so frames right behind 'opened' find it.
    this.#circuits.add(m.circuit);
    if (!this.#settle(link, m.id, m)) {
      // Its request timed out (or never existed): an orphaned circuit must not stay open.
      this.#circuits.delete(m.circuit);
      if (!link.closed) link.sendControl({ t: 'close', circuit: m.circuit, code: 'WICKET_ERR_RELAY_TIMEOUT' });
    }
  }

  // ------------------------------------------------------------------------------------------
  // frames from the relay
  // ------------------------------------------------------------------------------------------

  #dispatch(link: RelayLink, frame: RelayFrame): void {
    if (this.#link !== link) return;
    if (frame.kind === 'data') {
      if (this.#circuits.has(frame.circuit)) this.#emitData(frame.circuit, frame.payload);
      return; // unknown circuit: a race with close (relay-semantics), dropped
    }
    const m = frame.message;
    switch (m.t) {
      case 'registered':
      case 'unregistered':
      case 'response':
        this.#settle(link, m.id, m);
        return;
      case 'opened':
        return this.#onOpened(link, m);
      case 'error': {
        if (m.id !== undefined) {
          this.#settle(link, m.id, m);
          return;
        }
        // Connection-level refusal: the relay closes next; this is why.
        const err = relayError(m.code, m.message);
        link.noteReason(err);
        return;
      }
      case 'incoming': {
        let peer: Identifier;
        try {
          peer = parseIdentifier(m.peer);
        } catch {
          return link.fail(wicketError('WICKET_ERR_RELAY_PROTOCOL', "the relay's 'incoming' names no valid peer identifier"));
        }
        if (m.circuit === 0 || this.#circuits.has(m.circuit)) {
          return link.fail(wicketError('WICKET_ERR_RELAY_PROTOCOL', `the relay announced circuit ${m.circuit}, which is zero or already open`));
        }
        if (this.#circuits.size >= MAX_CIRCUITS_PER_CONNECTION) {
          link.sendControl({ t: 'close', circuit: m.circuit, code: 'WICKET_ERR_MUX_TOO_MANY_STREAMS' });
          return;
        }
        this.#circuits.add(m.circuit);
        this.#emitSafely('incoming', { circuit: m.circuit, name: m.name, peer } satisfies IncomingCircuit);
        return;
      }
      case 'close':
        if (this.#circuits.delete(m.circuit)) this.#emitSafely('circuit-closed', m.circuit, toErrorCode(m.code));
        return;
      case 'credential':
        return this.#onCredentialPush(m.credential);
      case 'revoked': {
        let identifier: Identifier;
        try {
          identifier = parseIdentifier(m.identifier);
        } catch {
          return link.fail(wicketError('WICKET_ERR_RELAY_PROTOCOL', "the relay's 'revoked' names no valid identifier"));
        }
        this.#log.info({ peer: identifier }, 'the relay reports a revoked identity');
        this.#emitSafely('revoked', identifier);
        return;
      }
      default:
        return link.fail(wicketError('WICKET_ERR_RELAY_PROTOCOL', `the relay sent '${m.t}', which an agent never receives after authentication`));
    }
  }

  #onCredentialPush(text: string): void {
    try {
      const encoded = fromBase64url(text, 'credential', { max: MAX_CREDENTIAL_LEN });
      verifyCredential(encoded, { authorityPublicKey: this.#enrollment.authorityPublicKey, subject: this.identifier, now: this.#now() });
      this.#storeCredential(encoded);
      this.#log.debug('credential refreshed');
    } catch (err) {
      // Keep the credential we have; a bad push is logged, not stored.
      const e = asWicketError(err);
      this.#log.warn({ code: e.code }, `ignored a credential from the relay that does not verify: ${e.message}`);
    }
  }

  /** #emitSafely for the data path, without the rest-argument array on every frame. */
  #emitData(circuit: number, payload: Buffer): void {
    try {
      this.emit('data', circuit, payload);
    } catch (err) {
      this.#log.error({ event: 'data', err: asWicketError(err).message }, 'a relay client listener threw');
    }
  }

  /** A throwing listener is a bug in the listener; it must not break the relay connection. */
  #emitSafely(event: string, ...args: unknown[]): void {
    try {
      this.emit(event, ...args);
    } catch (err) {
      this.#log.error({ event, err: asWicketError(err).message }, 'a relay client listener threw');
    }
  }
}

/** Connects and authenticates once (no reconnect), for one-shot CLI commands. */
export async function connectOnce(o: RelayClientOptions): Promise<RelayClient> {
  return RelayClient.connectOnce(o);
}
