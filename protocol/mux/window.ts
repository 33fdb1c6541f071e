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
// doubles (up to the cap, and within the session's shared budget). A slow reader never grows its
// window, so a stalled stream holds at most what it was granted.
//
// The session budget: every byte of window above our own initial window is taken from one
// WindowBudget per session, whether it comes from auto-tuning or from a peer's OPEN asking for a
// bigger window than ours (tryOpen), and is given back when the stream goes (release); libp2p's
// go-yamux likewise reserves memory both on accepting a stream and on growing a window. Without the
// OPEN part a peer could open streams at STREAM_MAX_WINDOW and make us hold 16 MiB on each (32
// such streams against a target that never read grew an outlet by 405 MB). The sum of the windows,
// maxStreams x initialWindow + budget, no longer bounds what a session holds (with 61,008 streams
// it would be 15 GiB): the session window does (session-window.ts), whatever the stream count. The
// budget still matters within it: grown and large windows together take at most the budget, so
// a few stalled fast streams can never hold the whole session window and stall the others.

/** Shared by all streams of a session: bounds the sum of windows above our initial window. */
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
  /** Bytes of this window taken from the budget (given back on release()). */
  #charged = 0;
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

  /**
   * The receive window of a stream the peer opened with `size` (its OPEN value, already checked
   * against maxWindow): whatever `size` exceeds our own initial window `free` is taken from the
   * budget. Returns undefined, taking nothing, when that excess does not fit in what is left.
   */
  static tryOpen(size: number, free: number, maxWindow: number, budget: WindowBudget, now: number): ReceiveWindow | undefined {
    const excess = Math.max(0, size - free);
    if (!budget.tryTake(excess)) return undefined;
    const window = new ReceiveWindow(size, maxWindow, budget, now);
    window.#charged = excess;
    return window;
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
   * the opener's). Not charged to the budget: only ever called with our own initial window, which
   * every stream may hold. Returns the credit to announce.
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
          this.#charged += growth;
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

  /** The stream is gone: give what it took back to the session budget. */
  release(): void {
    this.budget.release(this.#charged);
    this.#charged = 0;
  }
}
