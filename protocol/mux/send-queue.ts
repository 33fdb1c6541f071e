// A stream's outgoing bytes: the caller's chunks, held as they were written (no copy), handed
// out as subarray views so a frame's payload can span the tail of one write and the head of the
// next without Buffer.concat. The secure channel encrypts the parts it is given; nothing here
// ever copies a data byte.

export class SendQueue {
  #chunks: Buffer[] = [];
  /** Index of the first chunk still (partly) queued. */
  #head = 0;
  /** Bytes of chunks[head] already taken. */
  #headOffset = 0;
  #length = 0;

  /** Bytes queued and not yet taken. */
  get length(): number {
    return this.#length;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#length += chunk.length;
  }

  /**
   * Removes exactly `n` bytes (n <= length) and appends them to `into` as views of the written
   * chunks. Returns the number of parts appended.
   */
  takeInto(n: number, into: Buffer[]): number {
    let parts = 0;
    let want = n;
    while (want > 0) {
      const chunk = this.#chunks[this.#head]!;
      const available = chunk.length - this.#headOffset;
      if (available <= want) {
        into.push(this.#headOffset === 0 ? chunk : chunk.subarray(this.#headOffset));
        want -= available;
        this.#head++;
        this.#headOffset = 0;
      } else {
        into.push(chunk.subarray(this.#headOffset, this.#headOffset + want));
        this.#headOffset += want;
        want = 0;
      }
      parts++;
    }
    this.#length -= n;
    this.#compact();
    return parts;
  }

  clear(): void {
    this.#chunks = [];
    this.#head = 0;
    this.#headOffset = 0;
    this.#length = 0;
  }

  /** Drops consumed chunk references so the array does not grow with the stream's lifetime. */
  #compact(): void {
    if (this.#head === this.#chunks.length) {
      this.#chunks.length = 0;
      this.#head = 0;
    } else if (this.#head >= 64 && this.#head * 2 >= this.#chunks.length) {
      this.#chunks = this.#chunks.slice(this.#head);
      this.#head = 0;
    }
  }
}
