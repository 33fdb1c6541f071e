import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import { verifyCredential, type Credential } from '../../protocol/credential.js';
import { asWicketError, errorCodeFromWire, wicketError, type WicketError } from '../../protocol/errors.js';
import { identifierOf, verifySignature, type Identifier, type Identity } from '../../protocol/identity.js';
import { ED25519_PUBLIC_KEY_LEN, ED25519_SIGNATURE_LEN, MAX_CREDENTIAL_LEN, RELAY_CHALLENGE_LEN } from '../../protocol/limits.js';
import { decodeMeshFrame, encodeMeshControl, meshProof, type MeshMessage, type MeshRole } from '../../protocol/mesh-messages.js';
import { RELAY_ID_ATTRIBUTE } from '../../protocol/relay-names.js';
import { base64url, DATA_HEADER_LEN, FRAME_DATA, fromBase64url } from '../../protocol/relay-frames.js';
import { checkTransition, type Transitions } from '../../protocol/lifecycle.js';
import type { FrameTap } from '../tap.js';
import type { MeshLinkPort, RemoteEnd } from './remote-end.js';

// One relay-to-relay WebSocket (protocol/README.md, "Relay mesh"), as a state machine:
//
//   handshake ──both sides proved themselves──▶ open ──▶ closed
//       └──────── timeout, bad frame, refusal ─────────────▲
//
// The handshake is symmetric: each side sends `hello` (its relay id, public key, relay credential
// and a fresh challenge) and, once it has checked the other's hello, `auth` (its signature over its
// role on the link, the other's challenge and both relay ids). Only the relay with the smaller id
// dials, so an acceptor refuses a larger one. A credential counts only when the project authority
// signed it for that key with the relay attribute naming that relay id, so a member's credential
// (or one relay posing as another) is refused. Once open, DATA frames go to the circuit's end by
// this relay's circuit id; control messages open, answer, credit and close circuits.

/** What a link needs from its relay (mesh.ts builds one per relay). */
export interface MeshLinkContext {
  readonly relayId: string;
  readonly identity: Identity;
  /** This relay's credential from the authority (cached by the mesh). */
  credential(): Promise<Credential>;
  readonly authorityPublicKey: Buffer;
  readonly now: () => number;
  readonly logger: Logger;
  readonly tap: FrameTap | undefined;
  readonly handshakeTimeoutMs: number;
  readonly keepaliveIntervalMs: number;
  readonly keepaliveDeadAfterMs: number;
  /** Both sides proved themselves. */
  opened(link: MeshLink): void;
  /** The other relay asks this one to open a circuit to a local server. */
  openRequested(link: MeshLink, request: Extract<MeshMessage, { t: 'open' }>): void;
  closed(link: MeshLink): void;
}

type LinkState = 'handshake' | 'open' | 'closed';
const LINK_TRANSITIONS: Transitions<LinkState> = { handshake: ['open', 'closed'], open: ['closed'], closed: [] };
const BINARY = { binary: true } as const;
const CLOSE_POLICY = 1008;

export class MeshLink implements MeshLinkPort {
  #state: LinkState = 'handshake';
  readonly #ws: WebSocket;
  readonly #context: MeshLinkContext;
  /** Set when this relay dialled: the relay id it expects to find there. */
  readonly #expectedPeer: string | undefined;
  /** Dialled by this relay (it knows whom it expects) or accepted; bound into both proofs. */
  readonly #role: MeshRole;
  readonly #challenge = randomBytes(RELAY_CHALLENGE_LEN);
  readonly #ends = new Map<number, RemoteEnd>();
  #logger: Logger;
  #peer: { readonly relayId: string; readonly publicKey: Buffer } | undefined;
  #peerChallenge: Buffer | undefined;
  #helloSent = false;
  #authSent = false;
  #lastHeard = Date.now();
  readonly #timers: NodeJS.Timeout[] = [];

  constructor(ws: WebSocket, context: MeshLinkContext, expectedPeer?: string) {
    this.#ws = ws;
    this.#context = context;
    this.#expectedPeer = expectedPeer;
    this.#role = expectedPeer === undefined ? 'acceptor' : 'dialer';
    this.#logger = context.logger.child({ link: expectedPeer ?? 'accepted' });
    ws.on('message', (data, isBinary) => this.#onMessage(data as Buffer, isBinary));
    ws.on('pong', () => (this.#lastHeard = Date.now()));
    ws.on('close', () => this.#shutdown());
    ws.on('error', (err) => this.#logger.debug({ err: err.message }, 'mesh link error'));
    const deadline = setTimeout(() => {
      if (this.#state === 'handshake') this.fail(wicketError('WICKET_ERR_MESH_AUTH', `the relay-to-relay handshake did not finish within ${context.handshakeTimeoutMs} ms`));
    }, context.handshakeTimeoutMs);
    const keepalive = setInterval(() => this.#keepalive(), context.keepaliveIntervalMs);
    deadline.unref();
    keepalive.unref();
    this.#timers.push(deadline, keepalive);
    void this.#sendHello();
  }

  get isOpen(): boolean {
    return this.#state === 'open';
  }

  /** The relay this relay dialled (undefined for an accepted link). */
  get dialledTo(): string | undefined {
    return this.#expectedPeer;
  }

  get peerRelayId(): string {
    return this.#peer?.relayId ?? this.#expectedPeer ?? '(unknown)';
  }

  /** Circuits crossing this link (status, tests). */
  get circuitCount(): number {
    return this.#ends.size;
  }

  sendControl(message: MeshMessage): void {
    if (this.#state === 'closed') return;
    this.#ws.send(encodeMeshControl(message), BINARY);
  }

  sendData(frame: Buffer): void {
    if (this.#state === 'open') this.#ws.send(frame, BINARY);
  }

  bind(localCircuit: number, end: RemoteEnd): void {
    this.#ends.set(localCircuit, end);
  }

  unbind(localCircuit: number): void {
    this.#ends.delete(localCircuit);
  }

  /** Refuses or ends the link: `error {code}`, then close; its circuits close on both relays. */
  fail(err: unknown): void {
    if (this.#state === 'closed') return;
    const error: WicketError = asWicketError(err);
    if (error.code === 'WICKET_ERR_INTERNAL') this.#logger.error({ err }, 'internal error on a mesh link');
    else this.#logger.warn({ code: error.code, reason: error.message }, 'mesh link closed');
    this.sendControl({ t: 'error', code: error.code, message: error.code === 'WICKET_ERR_INTERNAL' ? 'internal relay error' : error.message });
    this.#ws.close(CLOSE_POLICY, error.code);
    const grace = setTimeout(() => this.#ws.terminate(), 1_000);
    grace.unref();
    this.#shutdown();
  }

  /** The relay is stopping (or a newer link to the same relay replaced this one). */
  close(reason: string): void {
    if (this.#state === 'closed') return;
    this.#ws.close(1001, reason);
    // A peer that does not answer the close handshake is cut, as in fail().
    const grace = setTimeout(() => this.#ws.terminate(), 1_000);
    grace.unref();
    this.#shutdown();
  }

  // --- handshake -----------------------------------------------------------------------------

  async #sendHello(): Promise<void> {
    let credential: Credential;
    try {
      credential = await this.#context.credential();
    } catch (err) {
      this.fail(err);
      return;
    }
    if (this.#state === 'closed') return;
    const identity = this.#context.identity;
    this.sendControl({ t: 'hello', relay: this.#context.relayId, publicKey: base64url(identity.publicKey), credential: base64url(credential.encoded), challenge: base64url(this.#challenge) });
    this.#helloSent = true;
    this.#sendAuthWhenReady();
  }

  #onHello(message: Extract<MeshMessage, { t: 'hello' }>): void {
    if (this.#peer !== undefined) throw wicketError('WICKET_ERR_RELAY_PROTOCOL', "a second mesh 'hello'");
    if (this.#expectedPeer !== undefined && message.relay !== this.#expectedPeer) {
      throw wicketError('WICKET_ERR_MESH_AUTH', `dialled relay ${this.#expectedPeer}, but relay ${message.relay} answered`);
    }
    if (message.relay === this.#context.relayId) throw wicketError('WICKET_ERR_MESH_AUTH', 'a relay cannot link to itself');
    // Of two relays the one with the smaller id dials (mesh.ts); a link accepted the other way
    // round is someone else's doing (a go-between pairing two relays with each other).
    if (this.#role === 'acceptor' && message.relay > this.#context.relayId) {
      throw wicketError('WICKET_ERR_MESH_AUTH', `relay ${message.relay} has the larger id: this relay dials it, not the other way round`);
    }
    const publicKey = fromBase64url(message.publicKey, 'publicKey', { exact: ED25519_PUBLIC_KEY_LEN });
    const encoded = fromBase64url(message.credential, 'credential', { max: MAX_CREDENTIAL_LEN });
    let credential: Credential;
    try {
      credential = verifyCredential(encoded, { authorityPublicKey: this.#context.authorityPublicKey, subject: identifierOf(publicKey), now: this.#context.now() });
    } catch (err) {
      throw wicketError('WICKET_ERR_MESH_AUTH', `relay ${message.relay} presented no valid credential of this project (${asWicketError(err).code})`);
    }
    if (credential.attributes[RELAY_ID_ATTRIBUTE] !== message.relay) {
      throw wicketError('WICKET_ERR_MESH_AUTH', `the credential presented for relay ${message.relay} is not a relay credential for that relay`);
    }
    this.#peer = { relayId: message.relay, publicKey };
    this.#peerChallenge = fromBase64url(message.challenge, 'challenge', { exact: RELAY_CHALLENGE_LEN });
    this.#logger = this.#context.logger.child({ link: message.relay });
    this.#sendAuthWhenReady();
  }

  /** `auth` goes after our own hello (the other side needs it first) and once we know the other's challenge. */
  #sendAuthWhenReady(): void {
    const peer = this.#peer;
    if (this.#authSent || !this.#helloSent || peer === undefined || this.#peerChallenge === undefined || this.#state === 'closed') return;
    const signed = meshProof(this.#role, this.#peerChallenge, this.#context.relayId, peer.relayId);
    this.sendControl({ t: 'auth', signature: base64url(this.#context.identity.sign(signed)) });
    this.#authSent = true;
  }

  #onAuth(message: Extract<MeshMessage, { t: 'auth' }>): void {
    const peer = this.#peer;
    if (peer === undefined) throw wicketError('WICKET_ERR_RELAY_PROTOCOL', "mesh 'auth' before 'hello'");
    const signature = fromBase64url(message.signature, 'signature', { exact: ED25519_SIGNATURE_LEN });
    const signed = meshProof(this.#role === 'dialer' ? 'acceptor' : 'dialer', this.#challenge, peer.relayId, this.#context.relayId);
    if (!verifySignature(peer.publicKey, signed, signature)) {
      throw wicketError('WICKET_ERR_MESH_AUTH', `relay ${peer.relayId}'s signature does not verify over this link's challenge`);
    }
    if (!this.#authSent) throw wicketError('WICKET_ERR_RELAY_PROTOCOL', "mesh 'auth' before this relay's own hello was answered");
    this.#enter('open');
    clearTimeout(this.#timers[0]);
    this.#logger.info({ peer: peer.relayId }, 'mesh link open');
    this.#context.opened(this);
  }

  // --- inbound -------------------------------------------------------------------------------

  #onMessage(data: Buffer, isBinary: boolean): void {
    if (this.#state === 'closed') return;
    this.#lastHeard = Date.now();
    this.#context.tap?.record(data);
    try {
      if (!isBinary) throw wicketError('WICKET_ERR_FRAME_MALFORMED', 'mesh frames are binary WebSocket messages, got text');
      // The hot path: DATA goes to its circuit's end by this relay's id, the Buffer untouched.
      if (this.#state === 'open' && data.length >= DATA_HEADER_LEN && data[0] === FRAME_DATA) {
        this.#ends.get(data.readUInt32BE(1))?.received(data);
        return;
      }
      const frame = decodeMeshFrame(data);
      if (frame.kind === 'data') throw wicketError('WICKET_ERR_RELAY_PROTOCOL', 'mesh DATA before the link is open');
      this.#dispatch(frame.message);
    } catch (err) {
      this.fail(err);
    }
  }

  #dispatch(message: MeshMessage): void {
    if (message.t === 'error') {
      this.#logger.warn({ code: errorCodeFromWire(message.code, 'WICKET_ERR_RELAY_PROTOCOL'), reason: message.message.slice(0, 200) }, 'the other relay refused or closed the mesh link');
      this.close('refused');
      return;
    }
    if (this.#state === 'handshake') {
      if (message.t === 'hello') return this.#onHello(message);
      if (message.t === 'auth') return this.#onAuth(message);
      throw wicketError('WICKET_ERR_RELAY_PROTOCOL', `mesh '${message.t}' before the link is open`);
    }
    switch (message.t) {
      case 'open':
        return this.#context.openRequested(this, message);
      case 'opened':
        return this.#endOf(message.circuit, message.t)?.opened(message.remote, message.peer as Identifier);
      case 'refused':
        return this.#endOf(message.circuit, message.t)?.refused(message.code, message.message);
      case 'close':
        return this.#ends.get(message.circuit)?.closedByFar(errorCodeFromWire(message.code, 'WICKET_ERR_CIRCUIT_CLOSED'));
      case 'credit':
        return this.#ends.get(message.circuit)?.credited(message.bytes);
      default:
        throw wicketError('WICKET_ERR_RELAY_PROTOCOL', `mesh '${message.t}' after the link is open`);
    }
  }

  /** The end of a circuit this relay opened; an answer for one it never asked about is a violation. */
  #endOf(circuit: number, type: string): RemoteEnd | undefined {
    const end = this.#ends.get(circuit);
    if (end === undefined) throw wicketError('WICKET_ERR_RELAY_PROTOCOL', `mesh '${type}' for circuit ${circuit}, which this relay did not open`);
    return end;
  }

  // --- keepalive and closing -----------------------------------------------------------------

  #keepalive(): void {
    if (this.#state === 'closed') return;
    if (Date.now() - this.#lastHeard > this.#context.keepaliveDeadAfterMs) {
      this.#logger.warn({ silentMs: Date.now() - this.#lastHeard }, 'mesh link silent; cutting it');
      this.#ws.terminate();
      this.#shutdown();
      return;
    }
    try {
      this.#ws.ping();
    } catch {
      // Not open any more: the close event reports it.
    }
  }

  #enter(next: LinkState): void {
    checkTransition(`mesh link to ${this.peerRelayId}`, LINK_TRANSITIONS, this.#state, next);
    this.#state = next;
  }

  #shutdown(): void {
    if (this.#state === 'closed') return;
    const wasOpen = this.#state === 'open';
    this.#enter('closed');
    for (const timer of this.#timers) clearTimeout(timer);
    for (const end of [...this.#ends.values()]) end.linkLost();
    this.#ends.clear();
    if (wasOpen) this.#logger.info({ peer: this.peerRelayId }, 'mesh link closed');
    this.#context.closed(this);
  }
}
