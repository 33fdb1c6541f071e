// When a mux session flushes (session.ts): at once, or, with a deferFlush hook (an agent passes
// setImmediate), at the end of the event-loop turn, where everything the turn asked for leaves
// together.
//
// Which of the two: a stream that wrote less than a full data frame (a request, a response) waits
// for the turn's end, where the other streams' writes of the same turn join it (64 connections'
// requests read in one turn; the responses one received message set off; a response and a FIN
// read in the same turn), so a burst pays a message's fixed price (seal, WebSocket frame, TLS record, relay
// forward, two process wake-ups) once. Anything else flushes at once when it is the turn's first:
// a full-size data frame is a message of its own, so nothing could join it, and credit returned
// (WINDOW) is what a bulk sender is waiting for. The rest of a turn's flushes join the one at its end.
//
// Measured through TLS relays with wrk and iperf3 (`npm run bench:ab -- HEAD`, interleaved rounds):
// - the first flush of a turn at once and the rest at its end, against every write flushed at
//   once (82e5020): 64 keep-alive connections 27,921 -> 33,789 req/s;
// - every flush at the turn's end, against that (two runs of 6 and 7 rounds): 64 connections
//   1.08x and 1.20x, a new connection per request 1.05x and 1.04x, but one-stream bulk 0.90x and
//   0.96x (CPU per GB 1.09x and 1.04x); full frames alone at once did not mend bulk (0.93x);
// - short data at the turn's end, the rest as before (this file; 7 rounds): 64 connections 1.07x,
//   a new connection per request 1.06x, one-connection p50 1.02x, bulk 1.09x (CPU per GB 0.93x).

export class FlushTiming {
  /** This turn asked for a flush: the end-of-turn check is scheduled. */
  #turnBusy = false;
  /** A flush waits for the turn's end. */
  #pending = false;

  constructor(
    private readonly defer: ((run: () => void) => void) | undefined,
    private readonly flush: () => void,
  ) {}

  /**
   * Asks for a flush: `shortData` when a stream wrote less than a full data frame. Runs it now, or
   * at the end of the turn (see the top of this file for which).
   */
  request(shortData: boolean): void {
    if (this.defer === undefined) return this.flush();
    if (this.#turnBusy) {
      this.#pending = true;
      return;
    }
    this.#turnBusy = true;
    this.defer(this.#endOfTurn);
    if (shortData) this.#pending = true;
    else this.flush();
  }

  readonly #endOfTurn = (): void => {
    this.#turnBusy = false;
    if (!this.#pending) return;
    this.#pending = false;
    this.flush();
  };
}
