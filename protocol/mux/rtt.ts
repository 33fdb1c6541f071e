// Round-trip time from PING/PONG, smoothed like TCP's SRTT (RFC 6298 §2: alpha = 1/8).
// At most one of our pings is outstanding, so a peer's pongs can never make us keep state, and a
// pong that does not answer our outstanding ping is ignored.

const SRTT_ALPHA = 1 / 8;

export class RttEstimator {
  #smoothed: number | undefined;
  #lastSampleAt: number | undefined;
  #outstandingId: number | undefined;
  #outstandingSentAt = 0;
  #nextId = 1;

  constructor(private readonly sampleMaxAgeMs: number) {}

  /** Smoothed RTT in ms, undefined before the first sample. */
  get smoothedMs(): number | undefined {
    return this.#smoothed;
  }

  get outstanding(): boolean {
    return this.#outstandingId !== undefined;
  }

  /** True when there is no sample, or the last one is older than the max age. */
  stale(now: number): boolean {
    return this.#lastSampleAt === undefined || now - this.#lastSampleAt > this.sampleMaxAgeMs;
  }

  /** Records a ping going out now; returns its id. */
  start(now: number): number {
    const id = this.#nextId;
    this.#nextId = (this.#nextId % 0xffff_ffff) + 1;
    this.#outstandingId = id;
    this.#outstandingSentAt = now;
    return id;
  }

  /** A pong arrived. Returns true if it answered our outstanding ping (a sample was taken). */
  pong(id: number, now: number): boolean {
    if (id !== this.#outstandingId) return false;
    this.#outstandingId = undefined;
    const sample = Math.max(0, now - this.#outstandingSentAt);
    this.#smoothed = this.#smoothed === undefined ? sample : this.#smoothed + SRTT_ALPHA * (sample - this.#smoothed);
    this.#lastSampleAt = now;
    return true;
  }
}
