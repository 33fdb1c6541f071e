// When a mux session flushes (session.ts): at once, or, with a deferFlush hook (an agent passes
// setImmediate), the first flush of an event-loop turn at once and the rest of that turn's
// together at its end.
//
// Why both: a lone request must not wait (the first write of a turn leaves at once: nothing else
// would join it), while a burst (64 connections' requests read in one turn, a received message
// that makes several streams write) leaves as one message instead of one per stream, paying a
// message's fixed price (seal, WebSocket frame, relay forward, syscalls) once. Measured through
// TLS relays with wrk, 64 keep-alive connections, against the build before (every write flushed at
// once; `npm run bench:ab -- 82e5020`, which also holds session credit and the bridge's views):
// 27,921 -> 33,789 req/s.

export class FlushTiming {
  /** A flush ran at once this turn; the end-of-turn check is scheduled. */
  #turnBusy = false;
  /** A flush was asked for after the first one this turn. */
  #pending = false;

  constructor(
    private readonly defer: ((run: () => void) => void) | undefined,
    private readonly flush: () => void,
  ) {}

  /** Runs the flush now, or at the end of the turn if one already ran this turn. */
  request(): void {
    if (this.defer === undefined) return this.flush();
    if (this.#turnBusy) {
      this.#pending = true;
      return;
    }
    this.#turnBusy = true;
    this.defer(this.#endOfTurn);
    this.flush();
  }

  readonly #endOfTurn = (): void => {
    this.#turnBusy = false;
    if (!this.#pending) return;
    this.#pending = false;
    this.flush();
  };
}
