import type { ErrorCode, WicketError } from '../protocol/errors.js';
import type { Identifier } from '../protocol/identity.js';
import type { RelayToAgent } from '../protocol/relay-messages.js';

// What the relay's parts (router, flow control, keepalive, revocation, admin) may do with one
// agent connection, and nothing more. The connection (connection.ts) implements it and owns its
// own state; each part keeps whatever it tracks per peer in its own maps, keyed by the peer. This
// file imports no relay module, so the parts depend on it and never on each other's internals.

/** Who an authenticated peer is: its identifier and the attributes of its current credential. */
export interface PeerIdentity {
  readonly identifier: Identifier;
  /** An agent's Ed25519 key (the member it authenticated as); absent for a mesh peer. */
  readonly publicKey?: Buffer;
  readonly attributes: Readonly<Record<string, string>>;
}

export interface FailOptions {
  /** The code the other ends of this peer's circuits are told (default WICKET_ERR_CIRCUIT_CLOSED). */
  readonly circuitCode?: ErrorCode;
  /** Cut the socket at once, without a close handshake (a dead peer would never answer it). */
  readonly terminate?: boolean;
}

export interface RelayPeer {
  /** Unique per relay process, for logs. */
  readonly id: number;
  /** Set once the peer is authenticated; its attributes follow credential refreshes. */
  readonly identity: PeerIdentity | undefined;
  /** True for the far end of a circuit whose agent sits on another relay (relay/mesh/remote-end.ts). */
  readonly viaMesh?: boolean;
  /** Authenticated and not closed: may be routed to and told things. */
  readonly isOpen: boolean;
  /** A control message; counts against the peer's buffer cap like data (over it: dropped). */
  send(message: RelayToAgent): void;
  /**
   * A DATA frame, forwarded as the very Buffer that arrived. `reportWhenWritten`: when it reaches
   * the kernel, the peer tells flow control (`FlowControl.drained`) so paused sources can resume.
   */
  forward(frame: Buffer, reportWhenWritten: boolean): void;
  /** Bytes queued towards the peer and not yet handed to the kernel. */
  readonly bufferedAmount: number;
  /** Stop / start reading the peer's socket (TCP then pushes back on its sender). */
  pauseReading(): void;
  resumeReading(): void;
  /** A WebSocket ping (keepalive). */
  ping(): void;
  /** Refuses and closes this one connection with `err` (sent as `error {code}`, then closed). */
  fail(err: WicketError, options?: FailOptions): void;
}
