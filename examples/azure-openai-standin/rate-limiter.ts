// A fixed-window request counter per deployment, the way an Azure OpenAI deployment's
// "requests per minute" quota behaves as seen from a client: past the limit in the current window,
// every request gets 429 with `retry-after` = seconds until the window rolls over. Off unless the
// stand-in is given a `rateLimit`; tests set `{ requests: 1, windowMs: 60_000 }` and send two
// requests to see a 429 without depending on timing. The clock is injected.

export interface RateLimit {
  /** Requests allowed per window, per deployment (at least 1). */
  readonly requests: number;
  /** The window length in milliseconds (at least 1). */
  readonly windowMs: number;
}

export type RateDecision = { readonly allowed: true; readonly remaining: number } | { readonly allowed: false; readonly retryAfterSeconds: number };

export class DeploymentRateLimiter {
  readonly #limit: RateLimit;
  readonly #now: () => number;
  readonly #windows = new Map<string, { startMs: number; count: number }>();

  constructor(limit: RateLimit, now: () => number = Date.now) {
    if (!Number.isInteger(limit.requests) || limit.requests < 1) throw new RangeError('rateLimit.requests must be an integer >= 1');
    if (!Number.isInteger(limit.windowMs) || limit.windowMs < 1) throw new RangeError('rateLimit.windowMs must be an integer >= 1');
    this.#limit = limit;
    this.#now = now;
  }

  /** Counts one request against `deployment` and says whether it may proceed. */
  take(deployment: string): RateDecision {
    const now = this.#now();
    let window = this.#windows.get(deployment);
    if (!window || now - window.startMs >= this.#limit.windowMs) {
      window = { startMs: now, count: 0 };
      this.#windows.set(deployment, window);
    }
    if (window.count >= this.#limit.requests) {
      const waitMs = window.startMs + this.#limit.windowMs - now;
      return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)) };
    }
    window.count += 1;
    return { allowed: true, remaining: this.#limit.requests - window.count };
  }
}
