import { Duplex } from 'node:stream';
import type { ErrorCode, WicketError } from '../../protocol/errors.js';
import type { MuxStream } from '../../protocol/mux/index.js';

// A mux stream seen as a Node Duplex, so node:http can parse the app's HTTP straight off it
// (`server.emit('connection', duplex)`) with its own parser, limits and keep-alive handling.
//
// Backpressure both ways: a push() the reader refuses pauses the mux stream (its credit window
// then holds the peer back) until _read; a write() the mux queue refuses waits for its 'drain'.
// Ends: the peer's FIN ends our readable side; our end() sends FIN. A reset from the peer destroys
// the duplex with that error; destroying the duplex without a clean end resets the stream, so the
// app behind the inlet never mistakes a cut answer for a complete one.

export class MuxDuplex extends Duplex {
  readonly stream: MuxStream;
  /** Set by the gateway before destroy() to say why the stream is reset (default STREAM_RESET). */
  resetCode: ErrorCode = 'WICKET_ERR_STREAM_RESET';
  #pendingWrite: ((error?: Error | null) => void) | undefined;

  constructor(stream: MuxStream) {
    // allowHalfOpen: the app may send FIN after its request and still read the answer.
    super({ allowHalfOpen: true, decodeStrings: true });
    this.stream = stream;
    stream.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) stream.pause();
    });
    stream.once('end', () => this.push(null));
    stream.once('reset', (err: WicketError) => this.destroy(err));
    stream.on('drain', () => {
      const callback = this.#pendingWrite;
      this.#pendingWrite = undefined;
      callback?.();
    });
    stream.once('close', () => {
      // Closed cleanly in both directions, or reset: nothing more will flow.
      if (!this.destroyed && stream.sendState === 'reset') this.destroy();
    });
  }

  override _read(): void {
    this.stream.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.stream.write(chunk) || this.stream.closed) callback();
    else this.#pendingWrite = callback;
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.stream.end();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const pending = this.#pendingWrite;
    this.#pendingWrite = undefined;
    // Not both FINs crossed: the far side must see a reset, not a clean end.
    if (!this.stream.closed) this.stream.reset(this.resetCode);
    pending?.(error);
    callback(error);
  }

  // node:http calls these on sockets; a mux stream has no socket options to set.
  setNoDelay(): this {
    return this;
  }

  setKeepAlive(): this {
    return this;
  }

  setTimeout(_ms: number, callback?: () => void): this {
    if (callback !== undefined) this.once('timeout', callback);
    return this;
  }
}
