import type { ErrorCode } from '../protocol/errors.js';

// What the relay counts, as plain numbers. The data path is benchmarked against `ssh -L`, so a
// forwarded frame costs two additions here and nothing else; prom-client reads these numbers only
// when someone scrapes /metrics (relay-metrics.ts). This object owns the numbers: the parts count
// into it through the narrow interfaces below and never see each other's.
//
// Every label a number is filed under comes from a fixed set (the enums here, ErrorCode), never
// from an identifier, a relay name or anything else a member chooses, so the series stay bounded.

/** Why the relay did not pass on a DATA frame (one name per drop site). */
export const FRAME_DROP_REASONS = [
  /** The circuit is not (any more) known: a race with its close (router.ts). */
  'unknown_circuit',
  /** DATA on a circuit the sender is not an end of: a violation, the sender is dropped (router.ts). */
  'not_circuit_member',
  /** DATA before authentication: a violation, the sender is dropped (connection.ts). */
  'before_auth',
  /** The destination's queue passed the hard cap: the destination is dropped (flow-control.ts). */
  'destination_overloaded',
  /** Arrived on a connection the relay had already closed (connection.ts). */
  'connection_closed',
] as const;
export type FrameDropReason = (typeof FRAME_DROP_REASONS)[number];

/** Who flow control stopped reading: a source feeding a full destination, or a peer not reading its replies. */
export const PAUSE_CAUSES = ['destination_full', 'own_queue'] as const;
export type PauseCause = (typeof PAUSE_CAUSES)[number];

/** Why the keepalive or flow control cut a peer. */
export const PEER_DROP_REASONS = ['silent', 'stalled', 'overloaded'] as const;
export type PeerDropReason = (typeof PEER_DROP_REASONS)[number];

/** `auth` (a member logging in) or `enroll` (redeeming a ticket). */
export type HandshakeKind = 'auth' | 'enroll';
/** ok, the refusal's code, or `abandoned` (the peer left, or the relay stopped, before an answer). */
export type HandshakeOutcome = 'ok' | 'abandoned' | ErrorCode;

export type RevocationKind = 'revoke' | 'reinstate';

/** Flow control's view: frames passed on, frames refused at the hard cap, sources paused. */
export interface FlowCounts {
  forwarded(bytes: number): void;
  dropped(reason: FrameDropReason): void;
  paused(cause: PauseCause): void;
  peerDropped(reason: PeerDropReason): void;
}

/** The router's and a connection's view: frames they refuse to route. */
export interface DropCounts {
  dropped(reason: FrameDropReason): void;
}

/** A connection's view: its handshake's outcome, once. */
export interface ConnectionCounts extends DropCounts {
  handshake(kind: HandshakeKind, outcome: HandshakeOutcome): void;
}

export interface KeepaliveCounts {
  peerDropped(reason: PeerDropReason): void;
}

export interface RevocationCounts {
  revocationApplied(kind: RevocationKind): void;
}

function zeroes<K extends string>(keys: readonly K[]): Record<K, number> {
  return Object.fromEntries(keys.map((key) => [key, 0])) as Record<K, number>;
}

function bump<K>(map: Map<K, number>, key: K): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

export class RelayCounters implements FlowCounts, ConnectionCounts, KeepaliveCounts, RevocationCounts {
  #bytesForwarded = 0;
  #framesForwarded = 0;
  readonly #framesDropped = zeroes(FRAME_DROP_REASONS);
  readonly #pauses = zeroes(PAUSE_CAUSES);
  readonly #peersDropped = zeroes(PEER_DROP_REASONS);
  readonly #handshakes = new Map<HandshakeOutcome, number>([['ok', 0]]);
  readonly #enrollments = new Map<HandshakeOutcome, number>([['ok', 0]]);
  readonly #revocations = zeroes<RevocationKind>(['revoke', 'reinstate']);

  // --- counting (the parts) ------------------------------------------------------------------

  forwarded(bytes: number): void {
    this.#framesForwarded++;
    this.#bytesForwarded += bytes;
  }

  dropped(reason: FrameDropReason): void {
    this.#framesDropped[reason]++;
  }

  paused(cause: PauseCause): void {
    this.#pauses[cause]++;
  }

  peerDropped(reason: PeerDropReason): void {
    this.#peersDropped[reason]++;
  }

  handshake(kind: HandshakeKind, outcome: HandshakeOutcome): void {
    bump(kind === 'auth' ? this.#handshakes : this.#enrollments, outcome);
  }

  revocationApplied(kind: RevocationKind): void {
    this.#revocations[kind]++;
  }

  // --- reading (the scrape) ------------------------------------------------------------------

  get bytesForwarded(): number {
    return this.#bytesForwarded;
  }

  get framesForwarded(): number {
    return this.#framesForwarded;
  }

  framesDropped(): Readonly<Record<FrameDropReason, number>> {
    return this.#framesDropped;
  }

  pauses(): Readonly<Record<PauseCause, number>> {
    return this.#pauses;
  }

  peersDropped(): Readonly<Record<PeerDropReason, number>> {
    return this.#peersDropped;
  }

  handshakes(kind: HandshakeKind): ReadonlyMap<HandshakeOutcome, number> {
    return kind === 'auth' ? this.#handshakes : this.#enrollments;
  }

  revocations(): Readonly<Record<RevocationKind, number>> {
    return this.#revocations;
  }
}
