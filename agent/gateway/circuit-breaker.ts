import { GATEWAY_BREAKER_COOLDOWN_MS, GATEWAY_BREAKER_FAILURES, GATEWAY_MAX_RETRY_AFTER_MS } from '../../protocol/limits.js';

// One backend's breaker. Two reasons keep a backend out of the pool for a while:
//   cooling    the backend said 429: out until its retry-after passes, then straight back in
//              (Azure's retry-after is exact; there is nothing to probe).
//   open       GATEWAY_BREAKER_FAILURES 5xx answers or connection failures in a row: out for a
//              cooldown that doubles while it keeps failing (to 16×), then `half-open`: ONE trial
//              request goes; success closes the breaker, failure opens it again.
// A success anywhere resets the failure count.

export type BreakerState = 'closed' | 'cooling' | 'open' | 'half-open';

export interface BreakerStatus {
  state: BreakerState;
  /** ISO time the backend is back (cooling) or tried again (open). */
  until?: string;
  consecutiveFailures: number;
}

const MAX_COOLDOWN_DOUBLINGS = 4;

export class CircuitBreaker {
  readonly #now: () => number;
  #state: BreakerState = 'closed';
  #until = 0;
  #failures = 0;
  #openings = 0;
  #trialInFlight = false;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  get state(): BreakerState {
    this.#advance();
    return this.#state;
  }

  /** When the backend may be used again (now, if it may be used now). */
  get availableAt(): number {
    this.#advance();
    return this.#state === 'cooling' || this.#state === 'open' ? this.#until : this.#now();
  }

  /** May a request go to this backend now? Half-open admits one trial at a time. */
  tryAcquire(): boolean {
    this.#advance();
    switch (this.#state) {
      case 'closed':
        return true;
      case 'half-open':
        if (this.#trialInFlight) return false;
        this.#trialInFlight = true;
        return true;
      default:
        return false;
    }
  }

  success(): void {
    this.#trialInFlight = false;
    this.#failures = 0;
    this.#openings = 0;
    this.#state = 'closed';
  }

  /** The request went nowhere (the app left first): a trial slot is given back, nothing learned. */
  abandon(): void {
    this.#trialInFlight = false;
  }

  /** A 5xx or a connection failure. */
  failure(): void {
    this.#trialInFlight = false;
    this.#failures++;
    // Requests in flight when the breaker opened fail after it: they are no new trial, so they
    // must not re-open it (else a burst under load doubles the cooldown to 16× at once).
    if (this.#state === 'open') return;
    if (this.#state === 'half-open' || this.#failures >= GATEWAY_BREAKER_FAILURES) {
      const cooldown = GATEWAY_BREAKER_COOLDOWN_MS * 2 ** Math.min(this.#openings, MAX_COOLDOWN_DOUBLINGS);
      this.#openings++;
      this.#state = 'open';
      this.#until = this.#now() + cooldown;
    }
  }

  /** A 429: out until the backend's retry-after has passed. */
  throttled(retryAfterMs: number): void {
    this.#trialInFlight = false;
    const until = this.#now() + Math.min(Math.max(0, retryAfterMs), GATEWAY_MAX_RETRY_AFTER_MS);
    // An open breaker stays open at least as long as it was going to.
    this.#until = this.#state === 'open' ? Math.max(this.#until, until) : until;
    if (this.#state !== 'open') this.#state = 'cooling';
  }

  status(): BreakerStatus {
    const state = this.state;
    const status: BreakerStatus = { state, consecutiveFailures: this.#failures };
    if (state === 'cooling' || state === 'open') status.until = new Date(this.#until).toISOString();
    return status;
  }

  #advance(): void {
    if (this.#now() < this.#until) return;
    if (this.#state === 'cooling') this.#state = 'closed';
    else if (this.#state === 'open') this.#state = 'half-open';
  }
}
