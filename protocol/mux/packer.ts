// Builds the session's outgoing plaintext messages (protocol/README.md, "Packing"): control frames
// raised together leave together, packed into one header block per message; a data frame goes in
// whole as [9-byte header, payload views of the written buffers], never split and never copied,
// so a full-size data frame is a message of its own. What to send, and when, is the session's
// business (session.ts: round robin, congestion, ping/pong); this file only packs.

import { MUX_FRAME_HEADER_LEN, NOISE_MAX_PLAINTEXT } from '../limits.js';
import { FrameType, frameHeader, writeFrameHeader } from './frames.js';
import type { MuxStream } from './stream.js';

export class MessagePacker {
  /** Pending control frames as (type, stream, value) triplets: no object per frame. */
  #control: number[] = [];
  /** The message being built: its parts and their total length. */
  #parts: Buffer[] = [];
  #length = 0;

  /** @param deliver takes one finished message (non-empty parts). */
  constructor(private readonly deliver: (parts: Buffer[]) => void) {}

  /** Queues a control frame for the next packControl(). */
  control(type: FrameType, stream: number, value: number): void {
    this.#control.push(type, stream, value);
  }

  /** Moves every pending control frame into the message being built, finishing full messages. */
  packControl(): void {
    const pending = this.#control;
    if (pending.length === 0) return;
    this.#control = [];
    let frame = 0;
    const frames = pending.length / 3;
    while (frame < frames) {
      const room = Math.floor((NOISE_MAX_PLAINTEXT - this.#length) / MUX_FRAME_HEADER_LEN);
      if (room === 0) {
        this.finishMessage();
        continue;
      }
      const count = Math.min(room, frames - frame);
      const block = Buffer.allocUnsafe(count * MUX_FRAME_HEADER_LEN);
      for (let i = 0; i < count; i++, frame++) {
        writeFrameHeader(block, i * MUX_FRAME_HEADER_LEN, pending[frame * 3]! as FrameType, pending[frame * 3 + 1]!, pending[frame * 3 + 2]!);
      }
      this.#parts.push(block);
      this.#length += block.length;
    }
  }

  /** True when a data frame of `n` payload bytes fits in the message being built. */
  fits(n: number): boolean {
    return this.#length + MUX_FRAME_HEADER_LEN + n <= NOISE_MAX_PLAINTEXT;
  }

  /** Appends one DATA frame of `n` (<= stream._sendable(), fits(n)) bytes taken from `stream`. */
  packData(stream: MuxStream, n: number): void {
    // Length first: _takeData may emit 'drain', and a handler that closes the session clear()s us.
    this.#length += MUX_FRAME_HEADER_LEN + n;
    const parts = this.#parts;
    parts.push(frameHeader(FrameType.DATA, stream.id, n));
    stream._takeData(n, parts);
  }

  /** Hands the message being built (if any) to `deliver`. */
  finishMessage(): void {
    const parts = this.#parts;
    if (parts.length === 0) return;
    this.#parts = [];
    this.#length = 0;
    this.deliver(parts);
  }

  /** Drops everything pending (the session closed). */
  clear(): void {
    this.#control = [];
    this.#parts = [];
    this.#length = 0;
  }
}
