import type { Logger } from 'pino';
import { wicketError } from '../protocol/errors.js';
import type { RelayPeer } from './peer.js';
import type { FlowCounts } from './relay-counters.js';
import type { RelaySettings } from './settings.js';

// Forwarding with bounded memory (protocol/README.md, "Relay behaviour"). A destination whose
// queued bytes pass highWaterBytes pauses every source peer feeding it (pauseReading stops reading
// that socket, so TCP pushes back on the sending agent); the sources resume once the destination
// drains under lowWaterBytes. A destination past hardCapBytes despite this (many sources, each
// with a read chunk in flight) stopped reading: it is dropped with WICKET_ERR_RELAY_OVERLOADED.
//
// Replies count too: a peer that sends control requests while its own queue is above the high
// water mark (it does not read what we send it) stops being read until that queue drains, and a
// control message that takes a queue past the hard cap drops the peer like data would. So a member
// that floods `open` and never reads the answers holds at most the high water mark, not
// gigabytes (the hostile cases in test/relay/hostile-peers.test.ts).
//
// Draining is reported by the peers (drained()) as each queued frame reaches the kernel. Only
// frames sent while the queue is above the low-water mark ask for that report, so a lightly loaded
// peer pays nothing; the socket's 'drain' event is a backstop.

export class FlowControl {
  /** Per destination: the sources it paused. */
  readonly #pausedSources = new Map<RelayPeer, Set<RelayPeer>>();
  /** Per source: the destinations pausing it (itself, when its own queue is full). */
  readonly #pausedBy = new Map<RelayPeer, Set<RelayPeer>>();

  constructor(
    private readonly settings: RelaySettings,
    private readonly logger: Logger,
    private readonly counts: FlowCounts,
  ) {}

  /** Sends `frame` (the very Buffer that arrived) to `destination`, pausing `source` if it must. */
  forward(source: RelayPeer, destination: RelayPeer, frame: Buffer): void {
    const queued = destination.bufferedAmount + frame.length;
    destination.forward(frame, queued > this.settings.lowWaterBytes);
    if (this.#overCap(destination, queued)) {
      this.counts.dropped('destination_overloaded');
      return;
    }
    this.counts.forwarded(frame.length);
    if (queued > this.settings.highWaterBytes) this.#pause(source, destination, queued);
  }

  /**
   * A control message `peer` sent is about to be handled: when its own queue is already above the
   * high water mark, it is not reading our replies, so stop reading it until the queue drains.
   */
  beforeControl(peer: RelayPeer): void {
    const queued = peer.bufferedAmount;
    if (queued > this.settings.highWaterBytes) this.#pause(peer, peer, queued);
  }

  /** After a control message was queued to `peer`: over the hard cap it is dropped like data. */
  afterControl(peer: RelayPeer): void {
    this.#overCap(peer, peer.bufferedAmount);
  }

  /** The destination wrote frames out (send callback or socket 'drain'): resume its sources once low. */
  drained(destination: RelayPeer): void {
    const sources = this.#pausedSources.get(destination);
    if (sources === undefined || destination.bufferedAmount > this.settings.lowWaterBytes) return;
    this.#resumeSourcesOf(destination, sources);
  }

  /** True when `peer` is not being read because someone else's queue is full (its silence is ours). */
  pausedByOthers(peer: RelayPeer): boolean {
    const by = this.#pausedBy.get(peer);
    if (by === undefined) return false;
    for (const destination of by) if (destination !== peer) return true;
    return false;
  }

  /** True when `peer` is not being read because it does not read its own queue. */
  pausedByOwnQueue(peer: RelayPeer): boolean {
    return this.#pausedBy.get(peer)?.has(peer) ?? false;
  }

  /** A closing peer releases the sources it paused and is forgotten by the ones that paused it. */
  forget(peer: RelayPeer): void {
    const sources = this.#pausedSources.get(peer);
    if (sources !== undefined) this.#resumeSourcesOf(peer, sources);
    for (const destination of this.#pausedBy.get(peer) ?? []) this.#pausedSources.get(destination)?.delete(peer);
    this.#pausedBy.delete(peer);
  }

  #overCap(destination: RelayPeer, queued: number): boolean {
    if (queued <= this.settings.hardCapBytes) return false;
    this.logger.warn({ conn: destination.id, identifier: destination.identity?.identifier, queued }, 'peer over its buffer cap; dropping it');
    destination.fail(wicketError('WICKET_ERR_RELAY_OVERLOADED', `connection queued ${queued} bytes without reading`));
    this.counts.peerDropped('overloaded');
    return true;
  }

  #pause(source: RelayPeer, destination: RelayPeer, queued: number): void {
    let sources = this.#pausedSources.get(destination);
    if (sources === undefined) {
      sources = new Set();
      this.#pausedSources.set(destination, sources);
    }
    if (sources.has(source)) return;
    sources.add(source);
    let by = this.#pausedBy.get(source);
    if (by === undefined) {
      by = new Set();
      this.#pausedBy.set(source, by);
    }
    if (by.size === 0) {
      source.pauseReading();
      this.counts.paused(source === destination ? 'own_queue' : 'destination_full');
      this.logger.debug({ conn: source.id, by: destination.id, queued }, source === destination ? 'peer paused (it does not read its replies)' : 'source paused (destination full)');
    }
    by.add(destination);
    // A destination below the low-water mark by now (it drained between our check and here, or
    // will never call back because nothing it holds carries a callback) resumes at once.
    this.drained(destination);
  }

  #resumeSourcesOf(destination: RelayPeer, sources: Set<RelayPeer>): void {
    this.#pausedSources.delete(destination);
    for (const source of sources) {
      const by = this.#pausedBy.get(source);
      by?.delete(destination);
      if (by !== undefined && by.size === 0) {
        this.#pausedBy.delete(source);
        source.resumeReading();
        this.logger.debug({ conn: source.id, by: destination.id }, 'source resumed');
      }
    }
  }
}
