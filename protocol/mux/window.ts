// Receive-side credit for one stream, with window auto-tuning.
//
// Accounting (all in bytes, for one stream and one direction):
//   allowance   = credit the peer still holds: granted so far minus received
//   buffered    = received, not yet handed to the reader (the stream holds it)
//   unannounced = handed to the reader, credit not yet returned
//   allowance + buffered + unannounced = window              (the invariant)
// so whatever the peer does, what we hold for a stream never exceeds its window, and a peer that
// sends more than `allowance` has overrun it.
//
// Window updates go out only once unannounced >= window / 2 (yamux), which keeps update frames
// rare. Auto-tuning follows quic-go's flowcontrol and Go's http2 BDP estimator: at each update,
// if the reader consumed this epoch's bytes at a rate that would drain a whole window in less
// than two round trips, the window is too small for the path's bandwidth-delay product, so it
// doubles (up to the cap, and within the session's shared growth budget). A slow reader never
// grows its window, so a stalled stream holds at most what it was granted.

/** Shared by all streams of a session: bounds the sum of growth above the initial windows. */
export class WindowBudget {
  #left: number;
  constructor(bytes: number) {
    this.#left = bytes;
  }
  get left(): number {
    return this.#left;
  }
  tryTake(n: number): boolean {
    if (n > this.#left) return false;
    this.#left -= n;
    return true;
  }
  release(n: number): void {
    this.#left += n;
  }
}

/** Two round trips: a window the reader drains faster than this is smaller than ~2 x BDP. */
const GROW_WHEN_WINDOW_DRAINS_WITHIN_RTTS = 2;

export class ReceiveWindow {
  #window: number;
  #allowance: number;
  #unannounced = 0;
  /** Bytes this window grew beyond its start, taken from the budget (given back on release()). */
  #grown = 0;
  #epochStart: number;
  #epochConsumed = 0;

  constructor(
    initial: number,
    private readonly maxWindow: number,
    private readonly budget: WindowBudget,
    now: number,
  ) {
    this.#window = initial;
    this.#allowance = initial;
    this.#epochStart = now;
  }

  /** Current window: the most the peer may have in flight plus what we hold. */
  get size(): number {
    return this.#window;
  }

  /** Credit the peer holds (as far as we have granted). */
  get allowance(): number {
    return this.#allowance;
  }

  get unannounced(): number {
    return this.#unannounced;
  }

  /** The peer sent `n` bytes. Returns false, changing nothing, if that overruns its credit. */
  receive(n: number): boolean {
    if (n > this.#allowance) return false;
    this.#allowance -= n;
    return true;
  }

  /** The reader was handed `n` bytes. */
  consume(n: number): void {
    this.#unannounced += n;
    this.#epochConsumed += n;
  }

  /**
   * Raises the window to `target` at once (an acceptor whose own initial window is larger than
   * the opener's). Returns the credit to announce.
   */
  raiseTo(target: number): number {
    const delta = Math.min(target, this.maxWindow) - this.#window;
    if (delta <= 0) return 0;
    this.#window += delta;
    this.#allowance += delta;
    return delta;
  }

  /** True once half the window is unannounced: the next takeUpdate() returns credit. */
  get updateDue(): boolean {
    return this.#unannounced * 2 >= this.#window;
  }

  /**
   * If enough credit is unannounced, auto-tunes and returns the increment for a WINDOW frame
   * (the returned credit plus any growth); otherwise 0. `rttMs` undefined disables growth.
   */
  takeUpdate(now: number, rttMs: number | undefined): number {
    if (!this.updateDue) return 0;
    const before = this.#window;
    if (rttMs !== undefined && rttMs > 0 && this.#window < this.maxWindow) {
      const elapsed = now - this.#epochStart;
      const fractionConsumed = this.#epochConsumed / this.#window;
      if (elapsed < GROW_WHEN_WINDOW_DRAINS_WITHIN_RTTS * fractionConsumed * rttMs) {
        const growth = Math.min(this.#window, this.maxWindow - this.#window);
        if (this.budget.tryTake(growth)) {
          this.#window += growth;
          this.#grown += growth;
        }
      }
    }
    this.#epochStart = now;
    this.#epochConsumed = 0;
    const increment = this.#unannounced + (this.#window - before);
    this.#allowance += increment;
    this.#unannounced = 0;
    return increment;
  }

  /** The stream is gone: give its growth back to the session budget. */
  release(): void {
    this.budget.release(this.#grown);
    this.#grown = 0;
  }
}
