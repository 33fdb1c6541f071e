// A count of bytes held against a ceiling, for memory that many requests share (the gateway's
// request bodies): take() refuses what would pass the ceiling, give() returns what was taken.

export class ByteBudget {
  readonly max: number;
  #held = 0;

  constructor(max: number) {
    this.max = max;
  }

  get held(): number {
    return this.#held;
  }

  take(bytes: number): boolean {
    if (this.#held + bytes > this.max) return false;
    this.#held += bytes;
    return true;
  }

  give(bytes: number): void {
    this.#held = Math.max(0, this.#held - bytes);
  }
}
