import { KEEPALIVE_DEAD_AFTER_MS, KEEPALIVE_INTERVAL_MS } from './limits.js';

// The one liveness rule for both ends of an agent–relay connection (DESIGN.md: a dead peer is
// noticed within 10 s). Each side pings every `intervalMs`; any frame, ping or pong from the other
// side is life; a side silent for `deadAfterMs` is dead. Each end checks on a sweep timer of
// KEEPALIVE_SWEEP_MS, so a frozen peer is dropped within deadAfterMs + one sweep.
//
// A side we have stopped reading (the relay pausing a connection for backpressure) cannot be
// heard, through no fault of its own: while we do not read it, its silence does not count.
//
// Pure: the caller passes the clock (performance.now() ms) and does the pinging and dropping.

export interface LivenessTimes {
  readonly intervalMs: number;
  readonly deadAfterMs: number;
}

export const DEFAULT_LIVENESS: LivenessTimes = { intervalMs: KEEPALIVE_INTERVAL_MS, deadAfterMs: KEEPALIVE_DEAD_AFTER_MS };

export type LivenessVerdict = 'alive' | 'ping' | 'dead';

export class Liveness {
  #lastHeardAt: number;
  #lastPingAt: number;

  constructor(
    now: number,
    private readonly times: LivenessTimes = DEFAULT_LIVENESS,
  ) {
    this.#lastHeardAt = now;
    this.#lastPingAt = now;
  }

  heard(now: number): void {
    this.#lastHeardAt = now;
  }

  silentFor(now: number): number {
    return now - this.#lastHeardAt;
  }

  /**
   * One sweep: 'dead' when silent too long, 'ping' when a ping is due (recorded as sent), else
   * 'alive'. `readingPaused`: we are not reading this peer, so its silence is not its fault.
   */
  check(now: number, readingPaused = false): LivenessVerdict {
    if (readingPaused) this.#lastHeardAt = now;
    if (now - this.#lastHeardAt >= this.times.deadAfterMs) return 'dead';
    if (now - this.#lastPingAt >= this.times.intervalMs) {
      this.#lastPingAt = now;
      return 'ping';
    }
    return 'alive';
  }
}
