import { createWriteStream, type WriteStream } from 'node:fs';

// Test-only frame tap (`relay start --tap FILE`, or WICKET_RELAY_TAP): appends every byte of every
// frame the relay RECEIVES to FILE, so a test can prove that plaintext never reaches the relay.
// Frames are appended raw, back to back; the file is a haystack to search, not a log to parse.

export class FrameTap {
  readonly #stream: WriteStream;

  constructor(readonly path: string) {
    this.#stream = createWriteStream(path, { flags: 'a', mode: 0o600 });
  }

  record(frame: Buffer): void {
    // A copy: the mesh rewrites a forwarded frame's circuit id in place while the write may still be queued.
    this.#stream.write(Buffer.from(frame));
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.#stream.end(() => resolve()));
  }
}
