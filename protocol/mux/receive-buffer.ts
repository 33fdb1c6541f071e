// Data a paused stream holds until its reader resumes. Its byte count is bounded by the stream's
// window (the peer cannot send more than its credit), but bytes are not the only cost: a view of
// a received message keeps the whole message alive, and every held chunk is an object. A peer
// sending many 1-byte frames, or one small frame in a message padded with pings, could otherwise
// make a 256 KiB window pin megabytes. So a chunk is held as a view only when it is at least
// 1 KiB and at least a quarter of the message it came from; other chunks are copied into a shared
// tail buffer. What a stream pins is then at most ~4x its window, and it holds at most about
// 2 x window / 1 KiB chunks. Copies happen only while paused and only for small chunks; bulk
// frames stay zero-copy.

import { ChunkFifo } from './chunk-fifo.js';

/** Capacity of one coalescing buffer for small held chunks. */
const TAIL_CAPACITY = 16 * 1024;
/** A chunk is held as a view when chunk * VIEW_RATIO >= its message's length... */
const VIEW_RATIO = 4;
/** ...and it is at least this long. */
const VIEW_MIN_BYTES = 1024;

export class ReceiveBuffer {
  readonly #chunks = new ChunkFifo();
  #tail: Buffer | undefined;
  #tailUsed = 0;
  #bytes = 0;

  /** Bytes held. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Chunks held, the open tail counted as one. */
  get chunkCount(): number {
    return this.#chunks.count + (this.#tailUsed > 0 ? 1 : 0);
  }

  push(chunk: Buffer, messageLength: number): void {
    this.#bytes += chunk.length;
    if (chunk.length >= VIEW_MIN_BYTES && chunk.length * VIEW_RATIO >= messageLength) {
      this.#sealTail();
      this.#chunks.push(chunk);
      return;
    }
    if (this.#tail === undefined || this.#tailUsed + chunk.length > this.#tail.length) {
      this.#sealTail();
      this.#tail = Buffer.allocUnsafe(TAIL_CAPACITY);
    }
    chunk.copy(this.#tail, this.#tailUsed);
    this.#tailUsed += chunk.length;
  }

  /** The oldest held chunk, or undefined when empty. */
  shift(): Buffer | undefined {
    if (this.#chunks.count === 0) this.#sealTail();
    const chunk = this.#chunks.shift();
    if (chunk !== undefined) this.#bytes -= chunk.length;
    return chunk;
  }

  clear(): void {
    this.#chunks.clear();
    this.#tail = undefined;
    this.#tailUsed = 0;
    this.#bytes = 0;
  }

  /** Moves the open tail into the chunk list; a mostly empty tail is copied down to size. */
  #sealTail(): void {
    if (this.#tail === undefined || this.#tailUsed === 0) return;
    const used = this.#tail.subarray(0, this.#tailUsed);
    this.#chunks.push(this.#tailUsed * 2 >= this.#tail.length ? used : Buffer.from(used));
    this.#tail = undefined;
    this.#tailUsed = 0;
  }
}

