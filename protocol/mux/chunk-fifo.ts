// A FIFO of Buffers with O(1) shift: a head index into an array instead of Array.shift(), which
// is O(n). Consumed slots are released at once (so a sent or delivered chunk is not pinned), and
// the array is compacted once its consumed prefix is both long and at least half of it, so it
// does not grow with a stream's lifetime. Shared by the send queue and the receive buffer.

const EMPTY = Buffer.alloc(0);
/** Compact only past this many consumed slots: a short prefix is cheaper to keep than to copy. */
const COMPACT_MIN_HEAD = 64;

export class ChunkFifo {
  #chunks: Buffer[] = [];
  #head = 0;

  /** Chunks held. */
  get count(): number {
    return this.#chunks.length - this.#head;
  }

  push(chunk: Buffer): void {
    this.#chunks.push(chunk);
  }

  /** The oldest chunk, left in place; undefined when empty. */
  peek(): Buffer | undefined {
    return this.#head < this.#chunks.length ? this.#chunks[this.#head] : undefined;
  }

  /** Removes and returns the oldest chunk; undefined when empty. */
  shift(): Buffer | undefined {
    if (this.#head === this.#chunks.length) return undefined;
    const chunk = this.#chunks[this.#head]!;
    this.#chunks[this.#head] = EMPTY;
    this.#head++;
    if (this.#head === this.#chunks.length) {
      this.#chunks.length = 0;
      this.#head = 0;
    } else if (this.#head >= COMPACT_MIN_HEAD && this.#head * 2 >= this.#chunks.length) {
      this.#chunks = this.#chunks.slice(this.#head);
      this.#head = 0;
    }
    return chunk;
  }

  clear(): void {
    this.#chunks = [];
    this.#head = 0;
  }
}
