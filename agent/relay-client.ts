import type { Logger } from 'pino';
import { asWicketError, isWicketError, wicketError, type ErrorCode, type WicketError } from '../protocol/errors.js';
import type { Identifier, Identity } from '../protocol/identity.js';
import { Lifecycle } from '../protocol/lifecycle.js';
import { RELAY_AUTH_TIMEOUT_MS } from '../protocol/limits.js';
import type { AdminOp } from '../protocol/relay-messages.js';
import { isRelayName, RELAY_NAME_RULE } from '../protocol/relay-names.js';
import type { TicketRelay } from '../protocol/ticket.js';
import { Backoff } from './backoff.js';
import { type LastError, lastErrorOf } from './last-error.js';
import { FATAL_CODES, RELAY_CLIENT_TRANSITIONS, type RelayClientState } from './relay-client-states.js';
import { relayHandshake } from './relay-handshake.js';
import type { RelayLink } from './relay-link.js';
import { RelayList } from './relay-list.js';
import { RelayOutage } from './relay-outage.js';
import { RelaySession, type IncomingCircuit } from './relay-session.js';
import { ServedNames } from './served-names.js';
import { RevokedPeers } from './revoked-peers.js';
import { SafeEmitter } from './safe-emitter.js';
import type { Enrollment, Vault } from './vault.js';

export type { IncomingCircuit } from './relay-session.js';
export type { RelayClientState } from './relay-client-states.js';

// The agent's connection to the relay, as a named lifecycle:
//
//   idle ──start──▶ dialing ──▶ authenticating ──welcome──▶ connected
//                     ▲  │            │                        │
//                     │  └────────────┴──── failure ───────────┴──▶ backing-off ──delay──┐
//                     └──────────────────────────────────────────────────────────────────┘
//   any ──stop()──▶ stopped          any ──refusal no retry can fix──▶ fatal
//
// Dial and authenticate, stay connected (jittered exponential backoff between attempts, reset
// after a successful authentication), re-register relay names after every reconnect. What happens
// on one authenticated connection (circuits, requests, the relay's notices) is a RelaySession's
// (relay-session.ts); this file only decides when to connect. The revoked set lives here, across
// connections, so a reconnect re-syncs from the last event seen.
//
// Events:
//   'state'           (to, from)                      every lifecycle transition
//   'connecting'      (attempt: number)               a dial is starting (1 = first since the last success)
//   'connected'       ()                              authenticated; names are being re-registered
//   'disconnected'    (err: WicketError)              an authenticated connection dropped
//   'incoming'        ({circuit, name, peer})         a new circuit for a name we serve
//   'data'            (circuit: number, payload: Buffer)
//   'circuit-closed'  (circuit: number, code: ErrorCode)  the relay or the other end closed it,
//                                                     or the connection dropped (WICKET_ERR_CIRCUIT_CLOSED)
//   'revoked'         (identifier: Identifier)        close every channel with that peer now
//   'credential'      (encoded: Buffer)               a fresh credential (already saved to the vault)
//   'relays'          (urls: string[])                a relay listed the project's relays and the list changed (saved too)
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
  /** A relay to keep off while another is listed (an outlet's standby connection: the main one's relay). */
  avoidRelay?: () => string | undefined;
}

function checkName(name: string): void {
  if (!isRelayName(name)) throw wicketError('WICKET_ERR_ARGUMENT', `a relay name must be ${RELAY_NAME_RULE}`);
}

export class RelayClient extends SafeEmitter {
  readonly identifier: Identifier;
  /** The project's revoked set as this agent knows it (handshakes consult it). */
  readonly revoked: RevokedPeers;
  readonly #vault: Vault;
  readonly #log: Logger;
  readonly #insecure: boolean;
  readonly #avoidRelay: (() => string | undefined) | undefined;
  readonly #now: () => number;
  readonly #identity: Identity;
  readonly #enrollment: Enrollment;
  readonly #backoff: Backoff;
  readonly #relays: RelayList;
  readonly #lifecycle: Lifecycle<RelayClientState>;
  /** Relay names served: registered again after every reconnect. */
  readonly #names = new ServedNames();
  #credential: Buffer;
  /** Set while connected. */
  #session: RelaySession | undefined;
  #link: RelayLink | undefined;
  /** Reconnect after a failure (false for one-shot CLI connections). */
  #reconnect = true;
  #lastError: LastError | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  #dialAbort: AbortController | undefined;
  #handshaking: RelayLink | undefined;
  #attempts = 0;
  /** Rate-limits what an outage logs (first failure, then once a minute, then the recovery). */
  readonly #outage: RelayOutage;

  constructor(o: RelayClientOptions) {
    super(o.logger, 'relay client');
    this.#vault = o.vault;
    this.#log = o.logger;
    this.#insecure = o.insecure ?? false;
    this.#avoidRelay = o.avoidRelay;
    this.#now = o.now ?? Date.now;
    this.#enrollment = o.vault.requireEnrollment();
    this.#identity = o.vault.identity();
    if (this.#identity.identifier !== this.#enrollment.identifier) {
      throw wicketError('WICKET_ERR_CONFIG', `the enrollment in ${o.vault.home} is for ${this.#enrollment.identifier}, but the identity key is ${this.#identity.identifier}; re-enroll`);
    }
    this.identifier = this.#identity.identifier;
    this.#credential = this.#enrollment.credential;
    this.#backoff = new Backoff(o.random !== undefined ? { random: o.random } : {});
    this.revoked = new RevokedPeers(this.#now);
    this.#relays = RelayList.of(this.#enrollment);
    this.#outage = new RelayOutage({ logger: this.#log, relayUrl: () => this.relayUrl, now: this.#now });
    this.#lifecycle = new Lifecycle('relay client', RELAY_CLIENT_TRANSITIONS, 'idle', (from, to) => {
      this.#log.debug({ from, to }, `relay connection ${to}`);
      this.emitSafely('state', to, from);
    });
  }

  get state(): RelayClientState {
    return this.#lifecycle.state;
  }

  get connected(): boolean {
    return this.#lifecycle.is('connected');
  }

  /** Why the last attempt or connection failed, and when (undefined while connected). */
  get lastError(): LastError | undefined {
    return this.#lastError;
  }

  /** The relay URL this client is on (or dials next). */
  get relayUrl(): string {
    return this.#relays.current.url;
  }

  /** Every relay URL it knows (its ticket's, or the last list a relay sent), in the order they are tried. */
  get relayUrls(): string[] {
    return this.#relays.urls;
  }

  /** Where each served relay name stands (registering until acknowledged, registered, refused). */
  get servedNames(): Pick<ServedNames, 'state' | 'refusal'> {
    return this.#names;
  }

  credential(): Buffer {
    return this.#credential;
  }

  /** Connects and stays connected until stop() or a fatal refusal. */
  start(): void {
    if (!this.#lifecycle.is('idle')) return;
    void this.#connectNow();
  }

  async stop(): Promise<void> {
    if (this.#lifecycle.is('stopped', 'fatal')) return;
    this.#lifecycle.to('stopped');
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
    this.#names.want(name);
    const session = this.#session;
    if (session === undefined) return;
    await this.#registerOnce(session, name);
  }

  async unregister(name: string): Promise<void> {
    checkName(name);
    const had = this.#names.forget(name);
    const session = this.#session;
    if (!had || session === undefined) return;
    try {
      await session.call({ t: 'unregister', name }, 'unregistered');
    } catch (err) {
      // Dropped meanwhile: the relay forgets registrations of a dead connection anyway.
      if (!isWicketError(err, 'WICKET_ERR_RELAY_UNREACHABLE')) throw err;
    }
  }

  /**
   * Opens a circuit to whoever serves `name`, skipping outlets in `avoid` (identifiers this agent
   * already refused). The circuit is live from the moment the relay's 'opened' is read.
   */
  openCircuit(name: string, avoid: readonly string[] = []): Promise<{ circuit: number; peer: Identifier }> {
    checkName(name);
    return this.#connectedSession().openCircuit(name, avoid);
  }

  /**
   * Sends one DATA frame. `frame` has DATA_HEADER_LEN bytes of headroom at the front, filled here
   * with the circuit id; the same Buffer is then queued (do not reuse it). Returns false above
   * the high-water mark; 'drain' follows. Frames for a circuit that is not open are dropped.
   */
  sendData(circuit: number, frame: Buffer): boolean {
    return this.#session?.sendData(circuit, frame) ?? true;
  }

  closeCircuit(circuit: number, code: ErrorCode): void {
    this.#session?.closeCircuit(circuit, code);
  }

  /** An admin operation; rejects with the relay's WicketError code. */
  request(op: AdminOp, args: Record<string, unknown>): Promise<unknown> {
    return this.#connectedSession().request(op, args);
  }

  /** One connection and authentication, no reconnect: for one-shot CLI commands. */
  static async connectOnce(o: RelayClientOptions): Promise<RelayClient> {
    const client = new RelayClient(o);
    client.#reconnect = false;
    client.#lifecycle.to('dialing');
    try {
      await client.#attempt();
    } catch (err) {
      if (!client.#lifecycle.is('stopped', 'fatal')) client.#lifecycle.to('stopped');
      throw asWicketError(err);
    }
    return client;
  }

  #connectedSession(): RelaySession {
    const session = this.#session;
    if (session === undefined) throw wicketError('WICKET_ERR_RELAY_UNREACHABLE', `not connected to the relay at ${this.relayUrl}`);
    return session;
  }

  // ------------------------------------------------------------------------------------------
  // lifecycle
  // ------------------------------------------------------------------------------------------

  async #connectNow(): Promise<void> {
    this.#retryTimer = undefined;
    this.#lifecycle.to('dialing');
    try {
      await this.#attempt();
    } catch (err) {
      const e = asWicketError(err);
      this.#lastError = lastErrorOf(e, this.#now());
      // A dial cut short by stop() is the stop, not a failure: nothing to report.
      if (!this.#lifecycle.is('stopped')) this.#outage.attemptFailed(e, this.#attempts);
      this.#afterFailure(e);
    }
  }

  /** Dial + handshake, from `dialing`; on success the session is installed. Throws on failure. */
  async #attempt(): Promise<void> {
    this.#attempts++;
    this.emitSafely('connecting', this.#attempts);
    const abort = new AbortController();
    this.#dialAbort = abort;
    let link: RelayLink;
    try {
      link = await this.#relays.dial({ insecure: this.#insecure, timeoutMs: RELAY_AUTH_TIMEOUT_MS, signal: abort.signal, avoid: this.#avoidRelay?.() });
    } finally {
      this.#dialAbort = undefined;
    }
    if (!this.#lifecycle.is('dialing')) {
      link.fail(wicketError('WICKET_ERR_RELAY_UNREACHABLE', 'stopped while connecting'));
      throw wicketError('WICKET_ERR_RELAY_UNREACHABLE', 'stopped while connecting');
    }
    this.#lifecycle.to('authenticating');
    this.#handshaking = link;
    let welcome;
    try {
      welcome = await relayHandshake(
        link,
        { kind: 'auth', identity: this.#identity, credential: this.#credential, revocationsAfter: this.revoked.lastSeq },
        { authorityPublicKey: this.#enrollment.authorityPublicKey, now: this.#now(), timeoutMs: RELAY_AUTH_TIMEOUT_MS },
      );
    } catch (err) {
      link.fail(asWicketError(err));
      throw err;
    } finally {
      this.#handshaking = undefined;
    }
    if (!this.#lifecycle.is('authenticating')) {
      await link.close();
      throw wicketError('WICKET_ERR_RELAY_UNREACHABLE', 'stopped while connecting');
    }
    if (link.closed) throw wicketError('WICKET_ERR_RELAY_UNREACHABLE', 'the relay closed the connection right after authentication');
    this.#install(link, welcome.encoded);
  }

  #install(link: RelayLink, credential: Buffer): void {
    const session = new RelaySession(link, {
      identifier: this.identifier,
      authorityPublicKey: this.#enrollment.authorityPublicKey,
      now: this.#now,
      revoked: this.revoked,
      logger: this.#log,
      events: {
        incoming: (circuit: IncomingCircuit) => this.emitSafely('incoming', circuit),
        data: (circuit, payload) => this.emitFrameSafely('data', circuit, payload),
        circuitClosed: (circuit, code) => this.emitSafely('circuit-closed', circuit, code),
        revoked: (identifier) => this.emitSafely('revoked', identifier),
        credential: (encoded) => this.#storeCredential(encoded),
        relays: (relays) => this.#learnRelays(relays),
        drain: () => this.emitSafely('drain'),
      },
    });
    this.#link = link;
    this.#session = session;
    this.#lastError = undefined;
    this.#attempts = 0;
    this.#backoff.reset();
    this.#relays.connected();
    this.#lifecycle.to('connected');
    link.onClose((reason) => this.#onLinkClosed(link, session, reason));
    this.#log.info({ relay: this.relayUrl, identifier: this.identifier }, 'connected to the relay');
    this.#outage.connected();
    this.#storeCredential(credential);
    this.emitSafely('connected');
    // Frames that arrived right behind the welcome (the revocation re-sync first) flow from here.
    session.start();
    if (link.closed) return;
    for (const name of this.#names.wanted()) {
      this.#registerOnce(session, name).catch((err: WicketError) => {
        this.#log.error({ name, code: err.code }, `registering relay name failed: ${err.message}`);
        this.emit('registration-failed', name, err);
      });
    }
  }

  async #registerOnce(session: RelaySession, name: string): Promise<void> {
    try {
      await session.call({ t: 'register', name }, 'registered');
      this.#log.info({ name }, 'relay name registered');
      this.#names.acknowledged(name);
    } catch (err) {
      const e = asWicketError(err);
      // The connection dropped meanwhile: the name stays remembered and is registered on reconnect.
      if (e.code === 'WICKET_ERR_RELAY_UNREACHABLE' && this.#reconnect && !this.#lifecycle.is('stopped', 'fatal')) return;
      if (e.code === 'WICKET_ERR_RELAY_NAME_FORBIDDEN') this.#names.refused(name, e, this.#now());
      throw e;
    }
  }

  #onLinkClosed(link: RelayLink, session: RelaySession, reason: WicketError): void {
    if (this.#link !== link) return;
    this.#link = undefined;
    this.#session = undefined;
    this.#lastError = lastErrorOf(reason, this.#now());
    this.#names.disconnected();
    session.closed(reason);
    // Closing the link is how stop() leaves the relay: a clean stop, not an outage.
    if (this.#lifecycle.is('stopped')) this.#log.info({ relay: this.relayUrl }, 'left the relay');
    else this.#outage.dropped(reason);
    this.emitSafely('disconnected', reason);
    this.#afterFailure(reason);
  }

  /** After a failed attempt or a dropped connection: stop for good, or retry after a backoff delay. */
  #afterFailure(err: WicketError): void {
    if (this.#lifecycle.is('stopped', 'fatal')) return;
    if (FATAL_CODES.has(err.code)) {
      this.#lifecycle.to('fatal');
      this.#log.error({ code: err.code }, `the relay refused this identity; not reconnecting: ${err.message}`);
      this.emitSafely('fatal', err);
      return;
    }
    if (!this.#reconnect) {
      this.#lifecycle.to('stopped');
      return;
    }
    this.#lifecycle.to('backing-off');
    // The next relay of the list at once; the backoff delay only after a whole round failed.
    const delay = this.#relays.failed() ? this.#backoff.next() : 0;
    this.#log.debug({ delayMs: delay, relay: this.relayUrl }, 'reconnecting to a relay after a delay');
    this.#retryTimer = setTimeout(() => void this.#connectNow(), delay);
  }

  /** The relay listed the project's relays: dial them from now on, and after a restart too. */
  #learnRelays(relays: TicketRelay[]): void {
    if (!this.#relays.learn(relays)) return;
    this.#log.info({ relays: this.#relays.urls }, 'the relay listed the project\'s relays; dialling them from now on');
    try {
      this.#vault.saveRelays(this.#relays.relays);
    } catch (err) {
      this.#log.error({ code: asWicketError(err).code }, 'could not save the relay list to the enrollment; it holds until a restart');
    }
    this.emitSafely('relays', this.#relays.urls);
  }

  #storeCredential(encoded: Buffer): void {
    this.#credential = encoded;
    try {
      this.#vault.saveCredential(encoded);
    } catch (err) {
      this.#log.error({ code: asWicketError(err).code }, 'could not save the refreshed credential to the vault');
    }
    this.emitSafely('credential', encoded);
  }
}

/** Connects and authenticates once (no reconnect), for one-shot CLI commands. */
export async function connectOnce(o: RelayClientOptions): Promise<RelayClient> {
  return RelayClient.connectOnce(o);
}
