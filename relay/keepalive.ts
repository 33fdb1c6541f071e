import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { wicketError, type WicketError } from '../protocol/errors.js';
import { Liveness } from '../protocol/liveness.js';
import type { FlowControl } from './flow-control.js';
import type { LiveConnections } from './live-connections.js';
import type { RelayPeer } from './peer.js';
import type { KeepaliveCounts, PeerDropReason } from './relay-counters.js';
import type { RelaySettings } from './settings.js';

// Keepalive: on one sweep timer (settings.keepaliveSweepMs), two rules per connection, so a dead
// or stalled agent is dropped within deadAfter + one sweep (<= 10 s):
//
// - Silence (protocol/liveness.ts, the rule agents apply to the relay too): any frame, ping or
//   pong from the peer is life; silent for deadAfter is dead. A peer we are not reading (flow
//   control paused it) cannot be heard through no fault of its own, so its silence does not count.
// - Stalled reading: a peer whose queue is above the high-water mark and has taken nothing of it
//   for deadAfter is dead, however much it still sends. Its queue pauses the peers feeding it, so
//   a member that stops reading while it keeps pinging would otherwise freeze them for good.
//
// The keepalive owns each peer's liveness and write progress; the connection reports what it
// hears and what it wrote.

interface PeerTimes {
  readonly liveness: Liveness;
  /** When the peer last took bytes from its queue, or was last seen with a short queue. */
  progressAt: number;
}

export class Keepalive {
  readonly #peers = new Map<RelayPeer, PeerTimes>();
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly connections: LiveConnections,
    private readonly flow: FlowControl,
    private readonly settings: RelaySettings,
    private readonly logger: Logger,
    private readonly counts: KeepaliveCounts,
  ) {}

  start(): void {
    this.#timer = setInterval(() => this.#sweep(), this.settings.keepaliveSweepMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** A new connection: its clocks start now. */
  add(peer: RelayPeer): void {
    const now = performance.now();
    this.#peers.set(peer, {
      liveness: new Liveness(now, { intervalMs: this.settings.keepaliveIntervalMs, deadAfterMs: this.settings.keepaliveDeadAfterMs }),
      progressAt: now,
    });
  }

  /** A frame, ping or pong from `peer`. */
  heard(peer: RelayPeer): void {
    this.#peers.get(peer)?.liveness.heard(performance.now());
  }

  /** Queued bytes towards `peer` reached the kernel: it is reading. */
  wrote(peer: RelayPeer): void {
    const times = this.#peers.get(peer);
    if (times !== undefined) times.progressAt = performance.now();
  }

  forget(peer: RelayPeer): void {
    this.#peers.delete(peer);
  }

  #sweep(): void {
    const now = performance.now();
    for (const peer of this.connections.all()) {
      const times = this.#peers.get(peer);
      if (times === undefined) continue;
      if (peer.bufferedAmount <= this.settings.highWaterBytes) times.progressAt = now;
      const stalledMs = now - times.progressAt;
      if (stalledMs >= this.settings.keepaliveDeadAfterMs) {
        this.#drop(peer, 'stalled', wicketError('WICKET_ERR_RELAY_OVERLOADED', `read nothing of its ${peer.bufferedAmount} queued bytes for ${Math.round(stalledMs)} ms`), 'peer stopped reading; dropping it');
        continue;
      }
      const readingPaused = this.flow.pausedByOthers(peer) || this.flow.pausedByOwnQueue(peer);
      const verdict = times.liveness.check(now, readingPaused);
      if (verdict === 'ping') peer.ping();
      else if (verdict === 'dead') {
        const silentMs = Math.round(times.liveness.silentFor(now));
        this.#drop(peer, 'silent', wicketError('WICKET_ERR_RELAY_TIMEOUT', `no frame, ping or pong for ${silentMs} ms`), 'peer silent; dropping it');
      }
    }
  }

  #drop(peer: RelayPeer, reason: PeerDropReason, err: WicketError, why: string): void {
    this.logger.info({ conn: peer.id, identifier: peer.identity?.identifier, code: err.code, queued: peer.bufferedAmount }, why);
    this.counts.peerDropped(reason);
    peer.fail(err, { terminate: true });
  }
}
