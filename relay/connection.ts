import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import type { Credential } from '../protocol/credential.js';
import { asWicketError, wicketError, type ErrorCode, type WicketError } from '../protocol/errors.js';
import { identifierOf, verifySignature, type Identifier } from '../protocol/identity.js';
import { ED25519_PUBLIC_KEY_LEN, ED25519_SIGNATURE_LEN, MAX_CREDENTIAL_LEN, CREDENTIAL_REFRESH_FRACTION, RELAY_CHALLENGE_LEN, RELAY_MAX_FRAMES_DURING_AUTH, TICKET_ID_LEN, TICKET_SECRET_LEN } from '../protocol/limits.js';
import {
  base64url,
  DATA_HEADER_LEN,
  decodeRelayFrame,
  encodeControl,
  FRAME_DATA,
  fromBase64url,
  RELAY_AUTH_DOMAIN,
  RELAY_ENROLL_DOMAIN,
  RELAY_PROTOCOL_VERSION,
  type ControlMessage,
} from '../protocol/relay-frames.js';
import { Secret } from '../protocol/secret.js';
import type { AdminOps } from './admin.js';
import type { Authority } from './authority/authority.js';
import type { MemberRecord } from './authority/store.js';
import type { FlowControl } from './flow-control.js';
import type { LiveConnections } from './live-connections.js';
import type { Router } from './router.js';
import type { RelaySettings } from './settings.js';
import type { FrameTap } from './tap.js';

// One agent's WebSocket, as an explicit state machine (relay-semantics.md):
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

export type ConnectionState = 'awaiting-auth' | 'authenticating' | 'authenticated' | 'closed';

export interface ConnectionServices {
  readonly authority: Authority;
  readonly router: Router;
  readonly flow: FlowControl;
  readonly admin: AdminOps;
  readonly connections: LiveConnections;
  readonly settings: RelaySettings;
  readonly logger: Logger;
  readonly tap?: FrameTap;
}

/** WebSocket close codes (RFC 6455 §7.4.1). */
const CLOSE_POLICY = 1008;
const CLOSE_GOING_AWAY = 1001;

let nextConnectionId = 1;

export class RelayConnection {
  readonly id = nextConnectionId++;
  state: ConnectionState = 'awaiting-auth';
  identifier: Identifier | undefined;
  member: MemberRecord | undefined;
  credential: Credential | undefined;
  /** Circuit ids this connection is an end of, and relay names it serves (owned by the router). */
  readonly circuits = new Set<number>();
  readonly names = new Set<string>();
  /** Backpressure (owned by FlowControl): sources this connection paused, destinations pausing it. */
  readonly pausedSources = new Set<RelayConnection>();
  readonly pausedBy = new Set<RelayConnection>();
  /** Keepalive bookkeeping (performance.now() ms). */
  lastHeardAt = performance.now();
  lastPingAt = performance.now();
  bytesIn = 0;
  bytesOut = 0;
  /** The send callback FlowControl attaches while this connection's queue is above low water. */
  readonly onFrameWritten: () => void;

  readonly #services: ConnectionServices;
  readonly #challenge = randomBytes(RELAY_CHALLENGE_LEN);
  readonly #openedAt = performance.now();
  #logger: Logger;
  #authTimer: NodeJS.Timeout | undefined;
  #refreshTimer: NodeJS.Timeout | undefined;
  #pending: Buffer[] = [];

  constructor(
    readonly ws: WebSocket,
    readonly socket: Socket,
    readonly remote: string,
    services: ConnectionServices,
  ) {
    this.#services = services;
    this.#logger = services.logger.child({ conn: this.id });
    this.onFrameWritten = () => services.flow.checkDrained(this);
    services.connections.add(this);
    services.flow.attach(this);

    ws.on('message', (data, isBinary) => this.#onMessage(data as Buffer, isBinary));
    ws.on('ping', () => this.#heard());
    ws.on('pong', () => this.#heard());
    ws.on('close', (code) => this.#onSocketClosed(code));
    ws.on('error', (err) => this.#logger.info({ err: err.message, code: (err as { code?: string }).code }, 'connection error'));

    this.#authTimer = setTimeout(() => {
      this.fail(wicketError('WICKET_ERR_RELAY_AUTH', `no auth or enroll within ${services.settings.authTimeoutMs} ms`));
    }, services.settings.authTimeoutMs);
    this.#authTimer.unref();

    this.#logger.debug({ remote }, 'connection opened');
    this.send({ t: 'hello', version: RELAY_PROTOCOL_VERSION, challenge: base64url(this.#challenge), authority: services.authority.identifier });
  }

  #heard(): void {
    this.lastHeardAt = performance.now();
  }

  send(message: ControlMessage): void {
    if (this.state === 'closed') return;
    this.ws.send(encodeControl(message), { binary: true });
  }

  /** A refusal tied to a request id; the connection stays open. */
  sendError(id: number, err: WicketError): void {
    this.send({ t: 'error', id, code: err.code, message: err.message });
  }

  // --- inbound -------------------------------------------------------------------------------

  #onMessage(data: Buffer, isBinary: boolean): void {
    if (this.state === 'closed') return;
    this.lastHeardAt = performance.now();
    this.bytesIn += data.length;
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
    if (this.state === 'authenticated' && data.length >= DATA_HEADER_LEN && data[0] === FRAME_DATA) {
      this.#services.router.forward(this, data.readUInt32BE(1), data);
      return;
    }
    this.#onFrame(data);
  }

  #onFrame(data: Buffer): void {
    if (this.state === 'authenticating') {
      if (this.#pending.length >= RELAY_MAX_FRAMES_DURING_AUTH) {
        throw wicketError('WICKET_ERR_RELAY_PROTOCOL', `more than ${RELAY_MAX_FRAMES_DURING_AUTH} frames before welcome`);
      }
      decodeRelayFrame(data); // refuse garbage now rather than after the store answers
      this.#pending.push(data);
      return;
    }
    const frame = decodeRelayFrame(data);
    if (frame.kind === 'data') {
      // Only reachable before authentication (authenticated DATA takes the hot path above).
      throw wicketError('WICKET_ERR_RELAY_PROTOCOL', 'DATA frame before authentication');
    }
    const message = frame.message;
    if (this.state === 'awaiting-auth') {
      if (message.t === 'auth') return this.#begin(() => this.#authenticate(message));
      if (message.t === 'enroll') return this.#begin(() => this.#enroll(message));
      throw wicketError('WICKET_ERR_RELAY_PROTOCOL', `'${message.t}' before auth or enroll`);
    }
    this.#dispatch(message);
  }

  #dispatch(message: ControlMessage): void {
    const router = this.#services.router;
    switch (message.t) {
      case 'register':
        return router.register(this, message.id, message.name);
      case 'unregister':
        return router.unregister(this, message.id, message.name);
      case 'open':
        return router.open(this, message.id, message.name);
      case 'close':
        return router.closeFromAgent(this, message.circuit, message.code);
      case 'request':
        void this.#services.admin.handle(this, message);
        return;
      default:
        throw wicketError('WICKET_ERR_RELAY_PROTOCOL', `'${message.t}' is not a message an authenticated agent sends`);
    }
  }

  // --- authentication ------------------------------------------------------------------------

  #begin(step: () => Promise<MemberRecord>): void {
    this.state = 'authenticating';
    step().then(
      (member) => this.#welcome(member),
      (err: unknown) => this.fail(err),
    );
  }

  /** Binds the proven key to this connection, so a revocation from now on finds it (live-connections.ts). */
  #bindKey(publicKey: Buffer): void {
    this.identifier = identifierOf(publicKey);
    this.#logger = this.#logger.child({ identifier: this.identifier });
    this.#services.connections.bindIdentity(this, this.identifier);
  }

  async #authenticate(message: Extract<ControlMessage, { t: 'auth' }>): Promise<MemberRecord> {
    const publicKey = fromBase64url(message.publicKey, 'publicKey', { exact: ED25519_PUBLIC_KEY_LEN });
    const signature = fromBase64url(message.signature, 'signature', { exact: ED25519_SIGNATURE_LEN });
    const credential = fromBase64url(message.credential, 'credential', { max: MAX_CREDENTIAL_LEN });
    if (!verifySignature(publicKey, Buffer.concat([RELAY_AUTH_DOMAIN, this.#challenge]), signature)) {
      throw wicketError('WICKET_ERR_SIGNATURE_INVALID', 'auth signature does not verify over this connection\'s challenge');
    }
    this.#bindKey(publicKey);
    return this.#services.authority.authenticate(publicKey, credential);
  }

  async #enroll(message: Extract<ControlMessage, { t: 'enroll' }>): Promise<MemberRecord> {
    const ticketId = fromBase64url(message.ticketId, 'ticketId', { exact: TICKET_ID_LEN });
    const secret = new Secret(fromBase64url(message.secret, 'secret', { exact: TICKET_SECRET_LEN }));
    const publicKey = fromBase64url(message.publicKey, 'publicKey', { exact: ED25519_PUBLIC_KEY_LEN });
    const signature = fromBase64url(message.signature, 'signature', { exact: ED25519_SIGNATURE_LEN });
    // Checked before redeeming, so a bad signature never spends a ticket use.
    if (!verifySignature(publicKey, Buffer.concat([RELAY_ENROLL_DOMAIN, this.#challenge, ticketId]), signature)) {
      throw wicketError('WICKET_ERR_SIGNATURE_INVALID', 'enroll signature does not verify over this connection\'s challenge and ticket id');
    }
    this.#bindKey(publicKey);
    try {
      return (await this.#services.authority.redeem({ ticketId, secret, publicKey })).member;
    } finally {
      secret.reveal().fill(0);
    }
  }

  #welcome(member: MemberRecord): void {
    if (this.state !== 'authenticating') return; // closed (timeout, revocation) while the store answered
    clearTimeout(this.#authTimer);
    this.member = member;
    this.credential = this.#services.authority.issueCredential(member);
    this.state = 'authenticated';
    this.send({ t: 'welcome', identifier: member.identifier, credential: base64url(this.credential.encoded) });
    this.#scheduleRefresh();
    this.#logger.info({ remote: this.remote, names: Object.keys(member.attributes) }, 'agent authenticated');
    void this.#services.authority.audit('connect', member.identifier, { connection: this.id, remote: this.remote });
    const pending = this.#pending;
    this.#pending = [];
    for (const frame of pending) {
      if (this.state !== 'authenticated') return;
      try {
        this.#process(frame);
      } catch (err) {
        this.fail(err);
      }
    }
  }

  // --- credential refresh --------------------------------------------------------------------

  #scheduleRefresh(): void {
    const credential = this.credential!;
    const delay = Math.max(1, (credential.expiresAt - credential.issuedAt) * (1 - CREDENTIAL_REFRESH_FRACTION));
    this.#refreshTimer = setTimeout(() => void this.#refresh(), delay);
    this.#refreshTimer.unref();
  }

  async #refresh(): Promise<void> {
    try {
      const member = await this.#services.authority.getMember(this.identifier!);
      if (this.state !== 'authenticated') return;
      if (member === undefined || member.revokedAt !== undefined) {
        this.fail(wicketError('WICKET_ERR_REVOKED', `${this.identifier} is no longer a member`), { circuitCode: 'WICKET_ERR_REVOKED' });
        return;
      }
      this.member = member;
      this.credential = this.#services.authority.issueCredential(member);
      this.send({ t: 'credential', credential: base64url(this.credential.encoded) });
      this.#logger.debug({ expiresAt: this.credential.expiresAt }, 'credential refreshed');
      this.#scheduleRefresh();
    } catch (err) {
      // A store hiccup must not kill a live connection: try again on the next period.
      this.#logger.warn({ err: asWicketError(err).message }, 'credential refresh failed; retrying');
      if (this.state === 'authenticated') this.#scheduleRefresh();
    }
  }

  // --- closing -------------------------------------------------------------------------------

  /**
   * Refuses and closes this one connection: `error {code, message}`, then ws close 1008 with the
   * code as reason. Its circuits close at once (the other ends get `circuitCode`), its names go.
   * `terminate` cuts the socket without a close handshake (a dead peer would never answer).
   */
  fail(err: unknown, options: { circuitCode?: ErrorCode; terminate?: boolean } = {}): void {
    if (this.state === 'closed') return;
    const error = asWicketError(err);
    const message = error.code === 'WICKET_ERR_INTERNAL' ? 'internal relay error' : error.message;
    if (error.code === 'WICKET_ERR_INTERNAL') this.#logger.error({ err }, 'internal error on a connection');
    else this.#logger.info({ code: error.code, reason: error.message, state: this.state }, 'connection refused or closed');
    this.send({ t: 'error', code: error.code, message });
    this.#shutdown(options.circuitCode ?? 'WICKET_ERR_CIRCUIT_CLOSED');
    if (options.terminate) this.ws.terminate();
    else this.#closeSocket(CLOSE_POLICY, error.code);
  }

  /** The relay is stopping: close with 1001 (going away). */
  closeForShutdown(): void {
    if (this.state === 'closed') return;
    this.#shutdown('WICKET_ERR_CIRCUIT_CLOSED');
    this.#closeSocket(CLOSE_GOING_AWAY, 'relay shutting down');
  }

  #closeSocket(code: number, reason: string): void {
    this.ws.close(code, reason);
    // A peer that does not answer the close handshake is cut (revocation must bite within 1 s).
    const grace = setTimeout(() => this.ws.terminate(), this.#services.settings.closeGraceMs);
    grace.unref();
    this.ws.once('close', () => clearTimeout(grace));
  }

  #onSocketClosed(code: number): void {
    if (this.state !== 'closed') this.#shutdown('WICKET_ERR_CIRCUIT_CLOSED', code);
  }

  #shutdown(circuitCode: ErrorCode, peerCloseCode?: number): void {
    const wasAuthenticated = this.state === 'authenticated';
    this.state = 'closed';
    clearTimeout(this.#authTimer);
    clearTimeout(this.#refreshTimer);
    this.#pending = [];
    this.#services.router.dropConnection(this, circuitCode);
    this.#services.connections.remove(this);
    const durationMs = Math.round(performance.now() - this.#openedAt);
    this.#logger.info({ bytesIn: this.bytesIn, bytesOut: this.bytesOut, durationMs, peerCloseCode }, 'connection closed');
    if (wasAuthenticated) {
      void this.#services.authority.audit('disconnect', this.identifier, {
        connection: this.id,
        bytesIn: this.bytesIn,
        bytesOut: this.bytesOut,
        durationMs,
      });
    }
  }
}
