import { wicketError } from '../protocol/errors.js';
import { RECONNECT_MAX_DELAY_MS, RECONNECT_MIN_DELAY_MS } from '../protocol/limits.js';

// Jittered exponential backoff for reconnecting to the relay (DESIGN.md: Ockam issue #4796, a
// reconnect loop without backoff pinned a CPU).
//
// Attempt n (0-based) waits a delay drawn uniformly from [ceiling/2, ceiling], where
// ceiling = min(max, min · 2^n), and never less than `min`. "Equal jitter": the lower half keeps
// the delay growing for certain, so a fleet of agents cut off together neither hammers the relay
// in lockstep nor ever spins; the upper half spreads them out.

export interface BackoffOptions {
  minDelayMs?: number;
  maxDelayMs?: number;
  /** Uniform in [0, 1). Inject a seeded generator so a test run reproduces exactly. */
  random?: () => number;
}

export class Backoff {
  readonly minDelayMs: number;
  readonly maxDelayMs: number;
  readonly #random: () => number;
  #attempt = 0;

  constructor(o: BackoffOptions = {}) {
    this.minDelayMs = o.minDelayMs ?? RECONNECT_MIN_DELAY_MS;
    this.maxDelayMs = o.maxDelayMs ?? RECONNECT_MAX_DELAY_MS;
    if (!(this.minDelayMs > 0) || !(this.maxDelayMs >= this.minDelayMs)) {
      throw wicketError('WICKET_ERR_ARGUMENT', `backoff needs 0 < min (${this.minDelayMs}) <= max (${this.maxDelayMs})`);
    }
    this.#random = o.random ?? Math.random;
  }

  /** How many delays were handed out since the last reset. */
  get attempt(): number {
    return this.#attempt;
  }

  /** The upper bound of the next delay (before jitter). */
  ceiling(): number {
    // Cap the exponent so 2^n stays finite however long the relay is away.
    const exponent = Math.min(this.#attempt, 30);
    return Math.min(this.maxDelayMs, this.minDelayMs * 2 ** exponent);
  }

  /** The delay before the next attempt, in ms; each call grows the ceiling until the cap. */
  next(): number {
    const ceiling = this.ceiling();
    this.#attempt++;
    const r = Math.min(Math.max(this.#random(), 0), 1);
    const delay = ceiling / 2 + r * (ceiling / 2);
    return Math.round(Math.min(this.maxDelayMs, Math.max(this.minDelayMs, delay)));
  }

  /** After a successful authentication: the next outage starts from the minimum delay again. */
  reset(): void {
    this.#attempt = 0;
  }
}
