import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { wicketError } from '../protocol/errors.js';
import { Liveness } from '../protocol/liveness.js';
import type { FlowControl } from './flow-control.js';
import type { LiveConnections } from './live-connections.js';
import type { RelayPeer } from './peer.js';
import type { RelaySettings } from './settings.js';

// Keepalive: the liveness rule of protocol/liveness.ts applied to every connection, on one sweep
// timer (settings.keepaliveSweepMs), so a frozen agent is dropped within deadAfter + one sweep
// (<= 10 s). The keepalive owns each peer's Liveness; the connection reports what it hears.
//
// Life is any frame, ping or pong from the peer, or progress writing a full queue to it (it is
// reading what we send). A peer we do not read because another peer's queue is full cannot be
// heard through no fault of its own, so its silence does not count; a peer we do not read because
// it does not read its own replies gets no such pass: unless its queue drains, it is dead.

export class Keepalive {
  readonly #liveness = new Map<RelayPeer, Liveness>();
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly connections: LiveConnections,
    private readonly flow: FlowControl,
    private readonly settings: RelaySettings,
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.#timer = setInterval(() => this.#sweep(), this.settings.keepaliveSweepMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Any sign of life from `peer` (a frame, ping, pong, or its full queue draining). */
  heard(peer: RelayPeer): void {
    this.#livenessOf(peer).heard(performance.now());
  }

  forget(peer: RelayPeer): void {
    this.#liveness.delete(peer);
  }

  #livenessOf(peer: RelayPeer): Liveness {
    let liveness = this.#liveness.get(peer);
    if (liveness === undefined) {
      liveness = new Liveness(performance.now(), { intervalMs: this.settings.keepaliveIntervalMs, deadAfterMs: this.settings.keepaliveDeadAfterMs });
      this.#liveness.set(peer, liveness);
    }
    return liveness;
  }

  #sweep(): void {
    const now = performance.now();
    for (const peer of this.connections.all()) {
      const liveness = this.#livenessOf(peer);
      const verdict = liveness.check(now, this.flow.pausedByOthers(peer));
      if (verdict === 'ping') peer.ping();
      if (verdict !== 'dead') continue;
      const silentMs = Math.round(liveness.silentFor(now));
      const stalled = this.flow.pausedByOwnQueue(peer);
      this.logger.info({ conn: peer.id, identifier: peer.identity?.identifier, silentMs, stalled }, stalled ? 'peer stopped reading; dropping it' : 'peer silent; dropping it');
      const err = stalled
        ? wicketError('WICKET_ERR_RELAY_OVERLOADED', `read nothing of its ${peer.bufferedAmount} queued bytes for ${silentMs} ms`)
        : wicketError('WICKET_ERR_RELAY_TIMEOUT', `no frame, ping or pong for ${silentMs} ms`);
      peer.fail(err, { terminate: true });
    }
  }
}
