// A stream's outgoing bytes: the caller's chunks, held as they were written (no copy), handed
// out as subarray views so a frame's payload can span the tail of one write and the head of the
// next without Buffer.concat. The secure channel encrypts the parts it is given; nothing here
// ever copies a data byte.

import { ChunkFifo } from './chunk-fifo.js';

export class SendQueue {
  readonly #chunks = new ChunkFifo();
  /** Bytes of the oldest chunk already taken. */
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
      const chunk = this.#chunks.peek()!;
      const available = chunk.length - this.#headOffset;
      if (available <= want) {
        into.push(this.#headOffset === 0 ? chunk : chunk.subarray(this.#headOffset));
        want -= available;
        this.#chunks.shift();
        this.#headOffset = 0;
      } else {
        into.push(chunk.subarray(this.#headOffset, this.#headOffset + want));
        this.#headOffset += want;
        want = 0;
      }
      parts++;
    }
    this.#length -= n;
    return parts;
  }

  clear(): void {
    this.#chunks.clear();
    this.#headOffset = 0;
    this.#length = 0;
  }
}
