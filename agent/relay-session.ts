import type { Logger } from 'pino';
import { verifyCredential } from '../protocol/credential.js';
import { asWicketError, errorCodeFromWire, wicketError, type ErrorCode, type WicketError } from '../protocol/errors.js';
import { isIdentifier, type Identifier } from '../protocol/identity.js';
import { MAX_CIRCUITS_PER_CONNECTION, MAX_CREDENTIAL_LEN, RELAY_HIGH_WATER_BYTES, RELAY_LOW_WATER_BYTES, RELAY_MAX_FRAME } from '../protocol/limits.js';
import { DATA_HEADER_LEN, fromBase64url, writeDataHeader, type FrameFromRelay } from '../protocol/relay-frames.js';
import type { AdminOp, RelayToAgent } from '../protocol/relay-messages.js';
import { parseRelaysMessage } from '../protocol/relay-directory.js';
import type { TicketRelay } from '../protocol/ticket.js';
import { relayError, type RelayLink } from './relay-link.js';
import { PendingRequests, type OutgoingRequest, type Reply, type ReplyType } from './relay-requests.js';
import type { RevokedPeers } from './revoked-peers.js';

// One authenticated connection to the relay, from the welcome to the close: the circuits open on
// it, the requests waiting for answers, and what the relay's messages mean (protocol/README.md,
// "Relay frames"). The relay client (relay-client.ts) makes one per connection and drops it when
// the connection closes; the lifecycle (dial, backoff, reconnect) is the client's, not this.
//
// The relay is trusted to route, not to lie about identities: every identifier it names is
// checked for form, and a message that breaks the protocol closes the connection.

export interface IncomingCircuit {
  circuit: number;
  name: string;
  /** The identity that opened the circuit: the outlet holds the handshake to it. */
  peer: Identifier;
}

/** What the session reports to its client (called synchronously, in wire order). */
export interface RelaySessionEvents {
  incoming(circuit: IncomingCircuit): void;
  data(circuit: number, payload: Buffer): void;
  circuitClosed(circuit: number, code: ErrorCode): void;
  /** An identity was newly revoked: close every channel with it now. */
  revoked(identifier: Identifier): void;
  credential(encoded: Buffer): void;
  /** The project's relays as the relay lists them now (checked: a bad list closed the connection). */
  relays(relays: TicketRelay[]): void;
  drain(): void;
}

export interface RelaySessionOptions {
  readonly identifier: Identifier;
  readonly authorityPublicKey: Buffer;
  readonly now: () => number;
  readonly revoked: RevokedPeers;
  readonly logger: Logger;
  readonly events: RelaySessionEvents;
}

function peerIdentifier(link: RelayLink, text: string, what: string): Identifier | undefined {
  if (isIdentifier(text)) return text;
  link.fail(wicketError('WICKET_ERR_RELAY_PROTOCOL', `the relay's '${what}' names no valid identifier`));
  return undefined;
}

export class RelaySession {
  readonly #link: RelayLink;
  readonly #o: RelaySessionOptions;
  readonly #circuits = new Set<number>();
  readonly #requests = new PendingRequests();
  #needDrain = false;
  #closed = false;

  constructor(link: RelayLink, options: RelaySessionOptions) {
    this.#link = link;
    this.#o = options;
    link.socket.on('drain', () => this.#onSocketDrain());
  }

  get circuitCount(): number {
    return this.#circuits.size;
  }

  /** Starts taking frames (those queued behind the welcome first, then live ones). */
  start(): void {
    this.#link.deliverTo((frame) => this.#dispatch(frame));
  }

  call<T extends ReplyType>(message: OutgoingRequest, expects: T): Promise<Reply<T>> {
    if (this.#closed || this.#link.closed) return Promise.reject(wicketError('WICKET_ERR_RELAY_UNREACHABLE', `the connection to the relay at ${this.#link.where} is closed`));
    return this.#requests.call(message, expects, (m) => this.#link.sendControl(m));
  }

  async openCircuit(name: string, avoid: readonly string[]): Promise<{ circuit: number; peer: Identifier }> {
    const reply = await this.call({ t: 'open', name, ...(avoid.length > 0 ? { avoid: avoid.join(',') } : {}) }, 'opened');
    if (!this.#circuits.has(reply.circuit)) {
      throw wicketError('WICKET_ERR_CIRCUIT_CLOSED', `circuit ${reply.circuit} to '${name}' closed before it could be used`);
    }
    return { circuit: reply.circuit, peer: reply.peer as Identifier };
  }

  async request(op: AdminOp, args: Record<string, unknown>): Promise<unknown> {
    const reply = await this.call({ t: 'request', op, args }, 'response');
    if (reply.error !== undefined) throw relayError(reply.error.code, reply.error.message);
    return reply.result;
  }

  /** See RelayClient.sendData. */
  sendData(circuit: number, frame: Buffer): boolean {
    if (frame.length < DATA_HEADER_LEN || frame.length > RELAY_MAX_FRAME) {
      throw wicketError('WICKET_ERR_FRAME_TOO_LARGE', `a data frame must be ${DATA_HEADER_LEN}..${RELAY_MAX_FRAME} bytes, got ${frame.length}`);
    }
    if (this.#closed || !this.#circuits.has(circuit)) return true;
    writeDataHeader(frame, circuit);
    this.#link.send(frame);
    if (this.#link.bufferedAmount > RELAY_HIGH_WATER_BYTES) {
      this.#needDrain = true;
      return false;
    }
    return true;
  }

  closeCircuit(circuit: number, code: ErrorCode): void {
    if (!this.#circuits.delete(circuit)) return;
    this.#link.sendControl({ t: 'close', circuit, code });
  }

  /** The connection closed: waiting requests fail, every circuit on it is reported closed. */
  closed(reason: WicketError): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#requests.rejectAll(wicketError('WICKET_ERR_RELAY_UNREACHABLE', `the connection to the relay closed: ${reason.message}`));
    const circuits = [...this.#circuits];
    this.#circuits.clear();
    for (const circuit of circuits) this.#o.events.circuitClosed(circuit, 'WICKET_ERR_CIRCUIT_CLOSED');
    if (this.#needDrain) {
      this.#needDrain = false;
      this.#o.events.drain();
    }
  }

  #onSocketDrain(): void {
    if (this.#closed || !this.#needDrain || this.#link.bufferedAmount > RELAY_LOW_WATER_BYTES) return;
    this.#needDrain = false;
    this.#o.events.drain();
  }

  #dispatch(frame: FrameFromRelay): void {
    if (this.#closed) return;
    if (frame.kind === 'data') {
      // Unknown circuit: a race with close, dropped (the relay does the same).
      if (this.#circuits.has(frame.circuit)) this.#o.events.data(frame.circuit, frame.payload);
      return;
    }
    try {
      this.#onControl(frame.message);
    } catch (err) {
      this.#link.fail(asWicketError(err));
    }
  }

  #onControl(m: RelayToAgent): void {
    switch (m.t) {
      case 'registered':
      case 'unregistered':
      case 'response':
        this.#settle(m.id, m);
        return;
      case 'opened':
        return this.#onOpened(m);
      case 'error':
        if (m.id !== undefined) {
          this.#settle(m.id, m);
          return;
        }
        // Connection-level refusal: the relay closes next; this is why.
        return this.#link.noteReason(relayError(m.code, m.message));
      case 'incoming':
        return this.#onIncoming(m);
      case 'close':
        if (this.#circuits.delete(m.circuit)) this.#o.events.circuitClosed(m.circuit, errorCodeFromWire(m.code, 'WICKET_ERR_INTERNAL'));
        return;
      case 'credential':
        return this.#onCredentialPush(m.credential);
      case 'revoked': {
        const identifier = peerIdentifier(this.#link, m.identifier, 'revoked');
        if (identifier === undefined) return;
        if (this.#o.revoked.revoked(m.seq, identifier, m.until)) {
          this.#o.logger.info({ peer: identifier, seq: m.seq, until: new Date(m.until).toISOString() }, 'the relay reports a revoked identity');
        }
        // Also when already known: a channel opened meanwhile must still be closed.
        this.#o.events.revoked(identifier);
        return;
      }
      case 'reinstated': {
        const identifier = peerIdentifier(this.#link, m.identifier, 'reinstated');
        if (identifier === undefined) return;
        this.#o.revoked.reinstated(m.seq, identifier);
        this.#o.logger.info({ peer: identifier, seq: m.seq }, 'the relay reports a reinstated identity');
        return;
      }
      case 'relays':
        // A list that breaks the rules is a protocol violation like any malformed message: it
        // throws, and the connection closes with WICKET_ERR_RELAY_PROTOCOL (the list is kept).
        return this.#o.events.relays(parseRelaysMessage(m.relays));
      case 'revocations-synced':
        this.#o.revoked.synced(m.seq);
        this.#o.logger.debug({ seq: m.seq, revoked: this.#o.revoked.size }, 'revoked set in sync with the relay');
        return;
      case 'hello':
      case 'welcome':
        throw wicketError('WICKET_ERR_RELAY_PROTOCOL', `the relay sent '${m.t}' after authentication`);
    }
  }

  #settle(id: number, message: RelayToAgent): boolean {
    const outcome = this.#requests.settle(id, message);
    if (outcome.kind === 'mismatch') this.#link.fail(outcome.error);
    return outcome.kind === 'settled';
  }

  #onOpened(m: Extract<RelayToAgent, { t: 'opened' }>): void {
    if (peerIdentifier(this.#link, m.peer, 'opened') === undefined) return;
    if (m.circuit === 0 || this.#circuits.has(m.circuit)) {
      throw wicketError('WICKET_ERR_RELAY_PROTOCOL', `the relay opened circuit ${m.circuit}, which is zero or already open`);
    }
    // Live before the opener's promise continues, so frames right behind 'opened' find it.
    this.#circuits.add(m.circuit);
    if (!this.#settle(m.id, m)) {
      // Its request timed out (or never existed): an orphaned circuit must not stay open.
      this.#circuits.delete(m.circuit);
      if (!this.#link.closed) this.#link.sendControl({ t: 'close', circuit: m.circuit, code: 'WICKET_ERR_RELAY_TIMEOUT' });
    }
  }

  #onIncoming(m: Extract<RelayToAgent, { t: 'incoming' }>): void {
    const peer = peerIdentifier(this.#link, m.peer, 'incoming');
    if (peer === undefined) return;
    if (m.circuit === 0 || this.#circuits.has(m.circuit)) {
      throw wicketError('WICKET_ERR_RELAY_PROTOCOL', `the relay announced circuit ${m.circuit}, which is zero or already open`);
    }
    if (this.#circuits.size >= MAX_CIRCUITS_PER_CONNECTION) {
      this.#link.sendControl({ t: 'close', circuit: m.circuit, code: 'WICKET_ERR_RELAY_TOO_MANY_CIRCUITS' });
      return;
    }
    this.#circuits.add(m.circuit);
    this.#o.events.incoming({ circuit: m.circuit, name: m.name, peer });
  }

  #onCredentialPush(text: string): void {
    try {
      const encoded = fromBase64url(text, 'credential', { max: MAX_CREDENTIAL_LEN });
      verifyCredential(encoded, { authorityPublicKey: this.#o.authorityPublicKey, subject: this.#o.identifier, now: this.#o.now() });
      this.#o.events.credential(encoded);
      this.#o.logger.debug('credential refreshed');
    } catch (err) {
      // Keep the credential we have; a bad push is logged, not stored.
      const e = asWicketError(err);
      this.#o.logger.warn({ code: e.code }, `ignored a credential from the relay that does not verify: ${e.message}`);
    }
  }
}
