// One stream inside a mux session: a send queue spent against the peer's credit, a receive window
// (window.ts) returned to the peer as the reader consumes, half-close with FIN, abort with RESET.
//
// Events: 'data' (chunk), 'end' (peer sent FIN and every byte was emitted), 'reset' (err: the
// peer reset the stream or the session closed), 'drain' (write() may be called again),
// 'close' (both directions done, or reset either way; emitted once, last).
// A local reset() emits only 'close': the caller already knows why it aborted.
//
// Lifecycle: two named half-states instead of loose booleans, as libp2p's go-yamux keeps a
// writeState and a readState per stream (halfOpen / halfClosed / halfReset), each a Lifecycle
// whose table refuses an illegal move with WICKET_ERR_INTERNAL (our bug). A peer's protocol
// violation is checked first and surfaces as WICKET_ERR_MUX_PROTOCOL, so the table never sees it.
//
//   send:     open -> ending -> fin-sent        end() with bytes queued; FIN once they are sent
//             open -> fin-sent                  end() with nothing queued
//             open | ending -> reset
//   receive:  open -> fin-received -> ended     FIN arrived (held bytes may remain); 'end' emitted
//             open | fin-received -> reset
//
// fin-sent and ended are final: a half that finished cleanly keeps saying so when the other half
// is reset afterwards (status then shows which direction was cut). The stream is closed when
// send is fin-sent and receive is ended, or when either is reset; it is torn down and emits
// 'close' at the move that makes it so, and is inert from then on.

import { EventEmitter } from 'node:events';
import { ERROR_CODES, codeFromNumber, wicketError, type ErrorCode, type WicketError } from '../errors.js';
import { Lifecycle, type Transitions } from '../lifecycle.js';
import { MUX_MAX_DATA_PAYLOAD } from '../limits.js';
import { FrameType } from './frames.js';
import { ReceiveBuffer } from './receive-buffer.js';
import { SendQueue } from './send-queue.js';
import type { ReceiveWindow } from './window.js';

export type SendState = 'open' | 'ending' | 'fin-sent' | 'reset';
export type ReceiveState = 'open' | 'fin-received' | 'ended' | 'reset';

/** The send half's moves (see the table at the top of this file). */
export const SEND_TRANSITIONS: Transitions<SendState> = {
  open: ['ending', 'fin-sent', 'reset'],
  ending: ['fin-sent', 'reset'],
  'fin-sent': [],
  reset: [],
};

/** The receive half's moves. */
export const RECEIVE_TRANSITIONS: Transitions<ReceiveState> = {
  open: ['fin-received', 'reset'],
  'fin-received': ['ended', 'reset'],
  ended: [],
  reset: [],
};

/** What a stream needs from its session (session.ts implements it). */
export interface StreamHost {
  now(): number;
  rttMs(): number | undefined;
  /** The stream has queued bytes and may have credit: schedule it and flush. */
  wantsToSend(stream: MuxStream): void;
  /** Queue a WINDOW, FIN or RESET frame for this stream and flush. */
  control(type: FrameType, stream: number, value: number): void;
  /** The stream is done (closed or reset): drop it from the session. */
  forget(stream: MuxStream): void;
  /** Auto-tuning wants a fresh RTT sample. */
  needRtt(): void;
  /** `n` received bytes left the stream: handed to the reader, or dropped (session credit). */
  released(n: number): void;
}

export interface StreamSetup {
  id: number;
  window: ReceiveWindow;
  /** Credit the peer granted us at open. */
  sendCredit: number;
  /** write() returns false once this many bytes are queued. */
  writeHighWater: number;
}

export class MuxStream extends EventEmitter {
  readonly id: number;
  readonly #host: StreamHost;
  readonly #window: ReceiveWindow;
  readonly #queue = new SendQueue();
  readonly #held = new ReceiveBuffer();
  readonly #writeHighWater: number;
  readonly #send: Lifecycle<SendState>;
  readonly #receive: Lifecycle<ReceiveState>;
  #sendCredit: number;
  #paused = false;
  /** Inside an emit of 'data' or 'end': re-entrant deliveries wait for the outer loop. */
  #emitting = false;
  #needDrain = false;
  #bytesSent = 0;
  #bytesReceived = 0;

  /** @internal Streams are made by MuxSession (openStream, or the 'stream' event). */
  constructor(host: StreamHost, setup: StreamSetup) {
    super();
    this.#host = host;
    this.id = setup.id;
    this.#window = setup.window;
    this.#sendCredit = setup.sendCredit;
    this.#writeHighWater = setup.writeHighWater;
    this.#send = new Lifecycle(`stream ${this.id} send half`, SEND_TRANSITIONS, 'open');
    this.#receive = new Lifecycle(`stream ${this.id} receive half`, RECEIVE_TRANSITIONS, 'open');
  }

  /** Our direction: open, ending (FIN waits for queued bytes), fin-sent, or reset. */
  get sendState(): SendState {
    return this.#send.state;
  }

  /** The peer's direction: open, fin-received (held bytes may remain), ended ('end' emitted), or reset. */
  get receiveState(): ReceiveState {
    return this.#receive.state;
  }

  /** Both directions done, or reset either way: the stream is inert ('close' is emitted on getting here). */
  get closed(): boolean {
    return this.#send.is('reset') || this.#receive.is('reset') || (this.#send.is('fin-sent') && this.#receive.is('ended'));
  }

  /** Payload bytes sent in DATA frames. */
  get bytesSent(): number {
    return this.#bytesSent;
  }

  /** Payload bytes received in DATA frames (emitted or held). */
  get bytesReceived(): number {
    return this.#bytesReceived;
  }

  /** Diagnostics: our current receive window for this stream (grows with auto-tuning). */
  get receiveWindow(): number {
    return this.#window.size;
  }

  /** Diagnostics: bytes held while paused (never more than receiveWindow). */
  get heldBytes(): number {
    return this.#held.bytes;
  }

  /** Diagnostics: bytes written and not yet sent. */
  get queuedBytes(): number {
    return this.#queue.length;
  }

  /** Diagnostics: credit the peer has granted us and we have not spent. */
  get sendCredit(): number {
    return this.#sendCredit;
  }

  get paused(): boolean {
    return this.#paused;
  }

  /**
   * Queues bytes (kept by reference: do not modify `chunk` afterwards). Returns false when the
   * queue is above its high-water mark (wait for 'drain'), or when the stream is ended or reset
   * (the bytes are dropped).
   */
  write(chunk: Buffer): boolean {
    return this.writev([chunk]);
  }

  /** write() for several chunks at once: queued together, so they can leave as one frame. */
  writev(chunks: readonly Buffer[]): boolean {
    if (!this.#send.is('open')) return false;
    const before = this.#queue.length;
    for (const chunk of chunks) this.#queue.push(chunk);
    if (this.#queue.length > before) this.#host.wantsToSend(this);
    if (this.#queue.length >= this.#writeHighWater) {
      this.#needDrain = true;
      return false;
    }
    return !this.closed;
  }

  /** Half-closes our direction: FIN goes out once every queued byte is sent. */
  end(): void {
    if (!this.#send.is('open')) return;
    if (this.#queue.length === 0) this.#sendFin();
    else this.#send.to('ending');
  }

  /** Aborts both directions; the peer's stream gets 'reset' with this code. */
  reset(code: ErrorCode = 'WICKET_ERR_STREAM_RESET'): void {
    if (this.closed) return;
    // Torn down before the RESET is queued: the flush that queuing runs must not see this stream.
    this.#teardown();
    this.#host.control(FrameType.RESET, this.id, ERROR_CODES[code].num);
    this.emit('close');
  }

  /** Holds received data (within the window) and stops returning credit until resume(). */
  pause(): void {
    this.#paused = true;
  }

  /** Emits held data, then lets credit flow again. */
  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#deliverHeld();
  }

  // --- called by the session -----------------------------------------------------------------

  /** @internal A DATA frame arrived. Throws a WicketError on a protocol violation. */
  _receiveData(payload: Buffer, messageLength: number): void {
    if (!this.#receive.is('open')) {
      throw wicketError('WICKET_ERR_MUX_PROTOCOL', `stream ${this.id}: DATA after FIN`);
    }
    if (!this.#window.receive(payload.length)) {
      throw wicketError(
        'WICKET_ERR_MUX_WINDOW_EXCEEDED',
        `stream ${this.id}: ${payload.length} bytes against ${this.#window.allowance} of credit`,
      );
    }
    this.#bytesReceived += payload.length;
    if (this.#paused || this.#held.bytes > 0 || this.#emitting) {
      this.#held.push(payload, messageLength);
      return;
    }
    this.#window.consume(payload.length);
    this.#host.released(payload.length);
    this.emit('data', payload);
    this.#announceCredit();
  }

  /** @internal A FIN arrived. */
  _receiveFin(): void {
    if (!this.#receive.is('open')) throw wicketError('WICKET_ERR_MUX_PROTOCOL', `stream ${this.id}: second FIN`);
    this.#receive.to('fin-received');
    this.#deliverHeld();
  }

  /** @internal A WINDOW frame arrived. */
  _receiveWindow(increment: number): void {
    if (this.#sendCredit + increment > 0xffff_ffff) {
      throw wicketError('WICKET_ERR_MUX_PROTOCOL', `stream ${this.id}: credit would exceed 2^32-1`);
    }
    this.#sendCredit += increment;
    if (this.#queue.length > 0) this.#host.wantsToSend(this);
  }

  /** @internal A RESET arrived. */
  _receiveReset(errorNumber: number): void {
    if (this.closed) return;
    let code = codeFromNumber(errorNumber);
    if (code === 'WICKET_ERR_INTERNAL' && errorNumber !== ERROR_CODES.WICKET_ERR_INTERNAL.num) {
      code = 'WICKET_ERR_STREAM_RESET';
    }
    this.#abort(wicketError(code, `stream ${this.id} reset by the peer (error ${errorNumber})`));
  }

  /** @internal The session is closing: reset without telling the peer. */
  _abort(err: WicketError): void {
    if (this.closed) return;
    this.#abort(err);
  }

  /** @internal Raises our receive window (an acceptor's own initial window); returns the credit to announce. */
  _raiseWindow(target: number): number {
    return this.#window.raiseTo(target);
  }

  /** @internal Bytes the next DATA frame may carry now. */
  _sendable(): number {
    if (this.closed) return 0;
    return Math.min(this.#sendCredit, this.#queue.length, MUX_MAX_DATA_PAYLOAD);
  }

  /** @internal Moves `n` (<= _sendable()) payload bytes into `parts`, as views. */
  _takeData(n: number, parts: Buffer[]): void {
    this.#queue.takeInto(n, parts);
    this.#sendCredit -= n;
    this.#bytesSent += n;
    if (this.#queue.length === 0 && this.#send.is('ending')) this.#sendFin();
    if (this.#needDrain && this.#queue.length * 2 <= this.#writeHighWater && !this.closed) {
      this.#needDrain = false;
      this.emit('drain');
    }
  }

  // --- internals ------------------------------------------------------------------------------

  #sendFin(): void {
    this.#send.to('fin-sent');
    this.#host.control(FrameType.FIN, this.id, 0);
    this.#closeIfDone();
  }

  /** Emits held chunks in order while not paused, then 'end' if the peer finished. */
  #deliverHeld(): void {
    if (this.#emitting || this.closed) return;
    this.#emitting = true;
    try {
      while (!this.#paused && !this.closed) {
        const chunk = this.#held.shift();
        if (chunk === undefined) break;
        this.#window.consume(chunk.length);
        this.#host.released(chunk.length);
        this.emit('data', chunk);
      }
    } finally {
      this.#emitting = false;
    }
    if (this.closed || this.#paused) return;
    this.#announceCredit();
    if (this.#receive.is('fin-received') && this.#held.bytes === 0) {
      // 'ended' means 'end' was emitted, so the move follows the emit; #emitting keeps a
      // resume() from inside an 'end' handler from emitting it twice.
      this.#emitting = true;
      try {
        this.emit('end');
      } finally {
        this.#emitting = false;
      }
      if (!this.#receive.is('fin-received')) return; // an 'end' handler reset the stream
      this.#receive.to('ended');
      this.#closeIfDone();
    }
  }

  /** Returns consumed credit to the peer once half a window is unannounced (never while paused). */
  #announceCredit(): void {
    if (this.#paused || !this.#receive.is('open') || this.closed || !this.#window.updateDue) return;
    const increment = this.#window.takeUpdate(this.#host.now(), this.#host.rttMs());
    if (increment > 0) {
      this.#host.control(FrameType.WINDOW, this.id, increment);
      this.#host.needRtt();
    }
  }

  /** Called right after a half reaches its clean end: the second one to get there closes the stream. */
  #closeIfDone(): void {
    if (this.#send.is('fin-sent') && this.#receive.is('ended')) {
      this.#teardown();
      this.emit('close');
    }
  }

  #abort(err: WicketError): void {
    this.#teardown();
    this.emit('reset', err);
    this.emit('close');
  }

  /**
   * Resets whichever halves had not finished cleanly (none when both had) and drops the buffers;
   * held bytes dropped unread still leave the session's hands, so their session credit goes back.
   */
  #teardown(): void {
    if (this.#send.can('reset')) this.#send.to('reset');
    if (this.#receive.can('reset')) this.#receive.to('reset');
    const dropped = this.#held.bytes;
    this.#queue.clear();
    this.#held.clear();
    this.#window.release();
    this.#host.forget(this);
    if (dropped > 0) this.#host.released(dropped);
  }
}
