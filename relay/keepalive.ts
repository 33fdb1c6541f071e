import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { wicketError } from '../protocol/errors.js';
import type { LiveConnections } from './live-connections.js';
import type { RelaySettings } from './settings.js';

// Keepalive (relay-semantics.md): ping every keepaliveIntervalMs; drop a peer we have heard nothing
// from (no frame, ping or pong) for keepaliveDeadAfterMs. One sweep timer for all connections,
// running every keepaliveSweepMs, so a dead peer goes within DEAD_AFTER + SWEEP (<= 10 s).
// A connection we paused for backpressure cannot be heard (we are not reading it), so silence
// does not count against it while it is paused.

export class Keepalive {
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly connections: LiveConnections,
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

  #sweep(): void {
    const now = performance.now();
    for (const connection of this.connections.all()) {
      if (connection.state === 'closed') continue;
      if (connection.ws.isPaused) connection.lastHeardAt = now;
      const silentFor = now - connection.lastHeardAt;
      if (silentFor >= this.settings.keepaliveDeadAfterMs) {
        this.logger.info({ conn: connection.id, identifier: connection.identifier, silentMs: Math.round(silentFor) }, 'peer silent; dropping it');
        connection.fail(wicketError('WICKET_ERR_RELAY_TIMEOUT', `no frame, ping or pong for ${Math.round(silentFor)} ms`), { terminate: true });
        continue;
      }
      if (now - connection.lastPingAt >= this.settings.keepaliveIntervalMs) {
        connection.lastPingAt = now;
        connection.ws.ping();
      }
    }
  }
}
