import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import type { Credential } from '../protocol/credential.js';
import { asWicketError, wicketError, type ErrorCode } from '../protocol/errors.js';
import { identifierOf, type Identifier } from '../protocol/identity.js';
import { checkTransition, type Transitions } from '../protocol/lifecycle.js';
import { CREDENTIAL_REFRESH_FRACTION, CREDENTIAL_REFRESH_RETRY_MS, RELAY_CHALLENGE_LEN, RELAY_MAX_FRAMES_DURING_AUTH } from '../protocol/limits.js';
import { base64url, DATA_HEADER_LEN, decodeFrameFromAgent, encodeControl, FRAME_DATA, RELAY_PROTOCOL_VERSION } from '../protocol/relay-frames.js';
import { parseAvoidList, type AgentToRelay, type RelayToAgent } from '../protocol/relay-messages.js';
import type { Admission } from './authority/authority.js';
import type { MemberRecord } from './authority/store.js';
import { proveAuth, proveEnroll, type ProvenEnroll } from './connection-auth.js';
import type { ConnectionServices } from './connection-services.js';
import type { FailOptions, PeerIdentity, RelayPeer } from './peer.js';
import type { HandshakeKind, HandshakeOutcome } from './relay-counters.js';

// One agent's WebSocket, as an explicit state machine (protocol/README.md, "Relay behaviour"):
//
//   awaiting-auth ──auth/enroll──▶ authenticating ──store says yes──▶ authenticated ──▶ closed
//         │                              │                                               ▲
//         └── timeout, bad frame, refusal ┴──────────────────────────────────────────────┘
//
// awaiting-auth accepts exactly one `auth` or `enroll` (the challenge is single-use);
// authenticating queues a few pipelined frames while the store answers; authenticated dispatches
// register/unregister/open/close/request and DATA. Any protocol violation sends `error {code}`
// and closes this one connection (ws code 1008, the code as close reason); the relay keeps running
// and the router forgets the connection's circuits and names at once.
//
// The connection owns its socket, its auth state (a union carrying what each state knows) and its
// credential; the router, flow control, keepalive and revocation see it only as a RelayPeer and
// keep their own per-peer state.

type AuthState =
  | { readonly state: 'awaiting-auth' }
  | { readonly state: 'authenticating'; readonly identifier: Identifier; pending: Buffer[] }
  | { readonly state: 'authenticated'; readonly member: MemberRecord; readonly credential: Credential; readonly identity: PeerIdentity }
  | { readonly state: 'closed' };

export type ConnectionState = AuthState['state'];

/** A refreshed credential moves authenticated to authenticated (a new state object). */
export const CONNECTION_TRANSITIONS: Transitions<ConnectionState> = {
  'awaiting-auth': ['authenticating', 'closed'],
  authenticating: ['authenticated', 'closed'],
  authenticated: ['authenticated', 'closed'],
  closed: [],
};

/** WebSocket close codes (RFC 6455 §7.4.1). */
const CLOSE_POLICY = 1008;
const CLOSE_GOING_AWAY = 1001;
const BINARY = { binary: true } as const;

let nextConnectionId = 1;

export class RelayConnection implements RelayPeer {
  readonly id = nextConnectionId++;
  readonly #ws: WebSocket;
  readonly #remote: string;
  readonly #services: ConnectionServices;
  readonly #challenge = randomBytes(RELAY_CHALLENGE_LEN);
  readonly #openedAt = performance.now();
  #auth: AuthState = { state: 'awaiting-auth' };
  #logger: Logger;
  #authTimer: NodeJS.Timeout | undefined;
  #refreshTimer: NodeJS.Timeout | undefined;
  #bytesIn = 0;
  #bytesOut = 0;
  /** What the peer's first message asked for, and whether its outcome was counted (once). */
  #handshakeKind: HandshakeKind = 'auth';
  #handshakeCounted = false;

  constructor(ws: WebSocket, socket: Socket, remote: string, services: ConnectionServices) {
    this.#ws = ws;
    this.#remote = remote;
    this.#services = services;
    this.#logger = services.logger.child({ conn: this.id });
    services.connections.add(this);
    services.keepalive.add(this);

    ws.on('message', (data, isBinary) => this.#onMessage(data as Buffer, isBinary));
    ws.on('ping', () => services.keepalive.heard(this));
    ws.on('pong', () => services.keepalive.heard(this));
    ws.on('close', (code) => this.#onSocketClosed(code));
    ws.on('error', (err) => this.#logger.debug({ err: err.message, code: (err as { code?: string }).code }, 'connection error'));
    // Backstop for the send callbacks: the socket drained its whole queue.
    socket.on('drain', this.#onFrameWritten);

    this.#authTimer = setTimeout(() => {
      this.fail(wicketError('WICKET_ERR_RELAY_AUTH', `no auth or enroll within ${services.settings.authTimeoutMs} ms`));
    }, services.settings.authTimeoutMs);
    this.#authTimer.unref();

    this.#logger.debug({ remote }, 'connection opened');
    this.#sendNow({ t: 'hello', version: RELAY_PROTOCOL_VERSION, challenge: base64url(this.#challenge), authority: services.authority.identifier });
  }

  // --- RelayPeer -------------------------------------------------------------------------------

  get state(): ConnectionState {
    return this.#auth.state;
  }

  get identity(): PeerIdentity | undefined {
    return this.#auth.state === 'authenticated' ? this.#auth.identity : undefined;
  }

  get isOpen(): boolean {
    return this.#auth.state === 'authenticated';
  }

  get bufferedAmount(): number {
    return this.#ws.bufferedAmount;
  }

  /** True while flow control has stopped reading this connection (status and tests). */
  get readingPaused(): boolean {
    return this.#ws.isPaused;
  }

  send(message: RelayToAgent): void {
    if (this.#auth.state === 'closed') return;
    this.#sendNow(message);
    this.#services.flow.afterControl(this);
  }

  forward(frame: Buffer, reportWhenWritten: boolean): void {
    this.#ws.send(frame, BINARY, reportWhenWritten ? this.#onFrameWritten : undefined);
    this.#bytesOut += frame.length;
  }

  pauseReading(): void {
    this.#ws.pause();
  }

  resumeReading(): void {
    if (this.#auth.state !== 'closed') this.#ws.resume();
  }

  ping(): void {
    try {
      this.#ws.ping();
    } catch {
      // Not open any more: the close event reports it.
    }
  }

  /**
   * Refuses and closes this one connection: `error {code, message}`, then ws close 1008 with the
   * code as reason. Its circuits close at once (the other ends get `circuitCode`), its names go.
   */
  fail(err: unknown, options: FailOptions = {}): void {
    if (this.#auth.state === 'closed') return;
    const error = asWicketError(err);
    const message = error.code === 'WICKET_ERR_INTERNAL' ? 'internal relay error' : error.message;
    if (error.code === 'WICKET_ERR_INTERNAL') this.#logger.error({ err }, 'internal error on a connection');
    else if (this.#auth.state === 'authenticated') this.#logger.info({ code: error.code, reason: error.message }, 'connection closed by the relay');
    else {
      this.#countHandshake(error.code);
      const identifier = this.#auth.state === 'authenticating' ? this.#auth.identifier : undefined;
      this.#services.refusals.refused({ code: error.code, reason: error.message, remote: this.#remote, conn: this.id, ...(identifier === undefined ? {} : { identifier }) });
    }
    this.#sendNow({ t: 'error', code: error.code, message });
    this.#shutdown(options.circuitCode ?? 'WICKET_ERR_CIRCUIT_CLOSED');
    if (options.terminate === true) this.#ws.terminate();
    else this.#closeSocket(CLOSE_POLICY, error.code);
  }

  /** The relay is stopping: close with 1001 (going away). */
  closeForShutdown(): void {
    if (this.#auth.state === 'closed') return;
    this.#shutdown('WICKET_ERR_CIRCUIT_CLOSED');
    this.#closeSocket(CLOSE_GOING_AWAY, 'relay shutting down');
  }

  // --- inbound -------------------------------------------------------------------------------

  #onMessage(data: Buffer, isBinary: boolean): void {
    if (this.#auth.state === 'closed') {
      if (data[0] === FRAME_DATA) this.#services.counters.dropped('connection_closed');
      return;
    }
    this.#services.keepalive.heard(this);
    this.#bytesIn += data.length;
    this.#services.tap?.record(data);
    try {
      if (!isBinary) throw wicketError('WICKET_ERR_FRAME_MALFORMED', 'relay frames are binary WebSocket messages, got text');
      this.#process(data);
    } catch (err) {
      this.fail(err);
    }
  }

  #process(data: Buffer): void {
    // The hot path: a DATA frame is routed on its header alone and forwarded as this same Buffer.
    if (this.#auth.state === 'authenticated' && data.length >= DATA_HEADER_LEN && data[0] === FRAME_DATA) {
      this.#services.router.forward(this, data.readUInt32BE(1), data);
      return;
    }
    const auth = this.#auth;
    if (auth.state === 'authenticating') {
      if (auth.pending.length >= RELAY_MAX_FRAMES_DURING_AUTH) {
        throw wicketError('WICKET_ERR_RELAY_PROTOCOL', `more than ${RELAY_MAX_FRAMES_DURING_AUTH} frames before welcome`);
      }
      decodeFrameFromAgent(data); // refuse garbage now rather than after the store answers
      auth.pending.push(data);
      return;
    }
    const frame = decodeFrameFromAgent(data);
    // Authenticated DATA took the hot path above.
    if (frame.kind === 'data') {
      this.#services.counters.dropped('before_auth');
      throw wicketError('WICKET_ERR_RELAY_PROTOCOL', 'DATA frame before authentication');
    }
    const message = frame.message;
    if (auth.state === 'awaiting-auth') return this.#beginAuth(message);
    this.#services.flow.beforeControl(this);
    this.#dispatch(message);
  }

  #dispatch(message: AgentToRelay): void {
    const router = this.#services.router;
    switch (message.t) {
      case 'register':
        return router.register(this, message.id, message.name);
      case 'unregister':
        return router.unregister(this, message.id, message.name);
      case 'open':
        return router.open(this, message.id, message.name, message.avoid === undefined ? [] : parseAvoidList(message.avoid));
      case 'close':
        return router.closeFromAgent(this, message.circuit, message.code);
      case 'request':
        void this.#services.admin.handle(this, message);
        return;
      default:
        throw wicketError('WICKET_ERR_RELAY_PROTOCOL', `'${message.t}' is only sent once, before authentication`);
    }
  }

  // --- authentication ------------------------------------------------------------------------

  #beginAuth(message: AgentToRelay): void {
    if (message.t === 'auth') {
      const proven = proveAuth(message, this.#challenge);
      this.#bindKey(proven.publicKey);
      this.#awaitMember(this.#services.authority.admit(proven.publicKey, proven.credential), proven.revocationsAfter);
      return;
    }
    if (message.t === 'enroll') {
      this.#handshakeKind = 'enroll';
      const proven = proveEnroll(message, this.#challenge, this.#services.authority.publicKey);
      this.#bindKey(proven.publicKey);
      this.#awaitMember(this.#redeem(proven), undefined);
      return;
    }
    throw wicketError('WICKET_ERR_RELAY_PROTOCOL', `'${message.t}' before auth or enroll`);
  }

  /**
   * Binds the proven key to this connection BEFORE the store is asked, so a revocation landing
   * meanwhile finds (and cuts) it (live-connections.ts).
   */
  #bindKey(publicKey: Buffer): void {
    const identifier = identifierOf(publicKey);
    this.#enter({ state: 'authenticating', identifier, pending: [] });
    this.#logger = this.#logger.child({ identifier });
    this.#services.connections.bindIdentity(this, identifier);
  }

  /** Spends the ticket use in the store, then gets the new member's credential from the authority. */
  #redeem(proven: ProvenEnroll): Promise<Admission> {
    return this.#services.authority.enroll(proven);
  }

  /** `revocationsAfter`: re-sync the revoked set after the welcome (auth only). */
  #awaitMember(admitted: Promise<Admission>, revocationsAfter: number | undefined): void {
    admitted.then(
      (record) => this.#welcome(record, revocationsAfter),
      (err: unknown) => this.fail(err),
    );
  }

  #welcome({ member, credential, fallback }: Admission, revocationsAfter: number | undefined): void {
    const auth = this.#auth;
    if (auth.state !== 'authenticating') return; // closed (timeout, revocation) while the store and authority answered
    clearTimeout(this.#authTimer);
    this.#enter({ state: 'authenticated', member, credential, identity: { identifier: member.identifier, publicKey: member.publicKey, attributes: credential.attributes } });
    this.#sendNow({ t: 'welcome', identifier: member.identifier, credential: base64url(credential.encoded) });
    this.#countHandshake('ok');
    // Synchronous with the welcome: no revocation push can fall between the re-sync and the pushes.
    // They count against the buffer cap like any reply.
    if (revocationsAfter !== undefined) {
      for (const notice of this.#services.revocation.resyncFor(revocationsAfter, member.identifier)) this.send(notice);
      this.#services.directory.welcomed(this); // the project's relays, to an agent that takes them
    }
    if (this.#auth.state !== 'authenticated') return;
    this.#scheduleRefresh(credential, fallback ? CREDENTIAL_REFRESH_RETRY_MS : undefined);
    this.#logger.info({ remote: this.#remote, attributes: Object.keys(member.attributes), ...(fallback ? { ownCredential: true } : {}) }, 'agent authenticated');
    void this.#services.authority.audit('connect', member.identifier, { connection: this.id, remote: this.#remote });
    for (const frame of auth.pending) {
      if (this.#auth.state !== 'authenticated') return;
      try {
        this.#process(frame);
      } catch (err) {
        this.fail(err);
      }
    }
  }

  // --- credential refresh --------------------------------------------------------------------

  /** `soonerMs`: a retry (the last refresh failed, or the welcome carried the agent's own credential). */
  #scheduleRefresh(credential: Credential, soonerMs?: number): void {
    const period = Math.max(1, (credential.expiresAt - credential.issuedAt) * (1 - CREDENTIAL_REFRESH_FRACTION));
    const delay = soonerMs === undefined ? period : Math.min(period, soonerMs);
    this.#refreshTimer = setTimeout(() => void this.#refresh(), delay);
    this.#refreshTimer.unref();
  }

  async #refresh(): Promise<void> {
    const auth = this.#auth;
    if (auth.state !== 'authenticated') return;
    try {
      const member = await this.#services.authority.getMember(auth.member.identifier);
      if (this.#auth.state !== 'authenticated') return;
      if (member === undefined || member.revokedAt !== undefined) {
        this.fail(wicketError('WICKET_ERR_REVOKED', `${auth.member.identifier} is no longer a member`), { circuitCode: 'WICKET_ERR_REVOKED' });
        return;
      }
      const credential = await this.#services.authority.credentialFor(member);
      if (this.#auth.state !== 'authenticated') return;
      this.#enter({ state: 'authenticated', member, credential, identity: { identifier: member.identifier, publicKey: member.publicKey, attributes: credential.attributes } });
      this.send({ t: 'credential', credential: base64url(credential.encoded) });
      if (this.#auth.state !== 'authenticated') return; // the push took it over its buffer cap
      this.#logger.debug({ expiresAt: credential.expiresAt }, 'credential refreshed');
      this.#scheduleRefresh(credential);
    } catch (err) {
      // A store or authority hiccup must not kill a live connection: try again soon (a signer that
      // refused because the member was just revoked: the revocation cuts the connection anyway).
      this.#logger.warn({ err: asWicketError(err).message }, 'credential refresh failed; retrying');
      const now = this.#auth;
      if (now.state === 'authenticated') this.#scheduleRefresh(now.credential, CREDENTIAL_REFRESH_RETRY_MS);
    }
  }

  // --- output --------------------------------------------------------------------------------

  /** Sends without the cap check (hello, welcome, and the error in fail()). */
  #sendNow(message: RelayToAgent): void {
    const frame = encodeControl(message);
    this.#ws.send(frame, BINARY);
    this.#bytesOut += frame.length;
  }

  /**
   * A frame sent while the queue was above low water reached the kernel, or the socket drained:
   * the peer is reading (progress, for the keepalive), and flow control may resume its sources.
   */
  readonly #onFrameWritten = (): void => {
    // Callbacks of frames queued before a close still fire as the socket is torn down.
    if (this.#auth.state === 'closed') return;
    this.#services.keepalive.wrote(this);
    this.#services.flow.drained(this);
  };

  // --- closing -------------------------------------------------------------------------------

  #countHandshake(outcome: HandshakeOutcome): void {
    if (this.#handshakeCounted) return;
    this.#handshakeCounted = true;
    this.#services.counters.handshake(this.#handshakeKind, outcome);
  }

  #enter(next: AuthState): void {
    checkTransition(`relay connection ${this.id}`, CONNECTION_TRANSITIONS, this.#auth.state, next.state);
    this.#auth = next;
  }

  #closeSocket(code: number, reason: string): void {
    this.#ws.close(code, reason);
    // A peer that does not answer the close handshake is cut (revocation must bite within 1 s).
    const grace = setTimeout(() => this.#ws.terminate(), this.#services.settings.closeGraceMs);
    grace.unref();
    this.#ws.once('close', () => clearTimeout(grace));
  }

  #onSocketClosed(code: number): void {
    if (this.#auth.state !== 'closed') this.#shutdown('WICKET_ERR_CIRCUIT_CLOSED', code);
  }

  #shutdown(circuitCode: ErrorCode, peerCloseCode?: number): void {
    const auth = this.#auth;
    this.#enter({ state: 'closed' });
    clearTimeout(this.#authTimer);
    clearTimeout(this.#refreshTimer);
    const services = this.#services;
    services.router.drop(this, circuitCode);
    services.flow.forget(this);
    services.keepalive.forget(this);
    services.connections.remove(this);
    // A refused login was counted and logged once, by fail() (rate-bounded); a peer that left is counted here.
    if (auth.state !== 'authenticated') return this.#countHandshake('abandoned');
    const durationMs = Math.round(performance.now() - this.#openedAt);
    this.#logger.info({ bytesIn: this.#bytesIn, bytesOut: this.#bytesOut, durationMs, peerCloseCode }, 'connection closed');
    void services.authority.audit('disconnect', auth.member.identifier, { connection: this.id, bytesIn: this.#bytesIn, bytesOut: this.#bytesOut, durationMs });
  }
}
