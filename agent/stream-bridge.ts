import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { ErrorCode, WicketError } from '../protocol/errors.js';
import { MUX_MAX_DATA_PAYLOAD, TCP_READ_SIZE, TLS_MAX_RECORD_PLAINTEXT } from '../protocol/limits.js';
import type { MuxStream, ReceiveState, SendState } from '../protocol/mux/index.js';

// One TCP connection joined to one mux stream, in both directions, with backpressure both ways:
//
//   socket 'data' → stream.write()   false → socket.pause()   until stream 'drain'
//   stream 'data' → socket.write()   false → stream.pause()   until socket 'drain'
//
// Ends: a FIN crosses only a clean end (socket 'end' → stream.end(); stream 'end' → socket.end()),
// and sockets are half-open capable (allowHalfOpen), so "I am done sending" and "I am done" stay
// distinct. Anything that breaks mid-stream — the stream reset by the far side, the channel
// closed under it, a socket error, the socket closed before both FINs crossed — resets BOTH
// sides: TCP RST to the local socket and a mux reset to the peer. A client therefore never mistakes
// a truncated response for a complete one (DESIGN.md, "Streams inside a channel").

export type BridgeOutcome = { clean: true } | { clean: false; code: ErrorCode; reason: string };

export interface BridgeOptions {
  logger: Logger;
  /** Resource name, for logs and status. */
  resource: string;
  /** Peer identifier of the channel, for logs and status. */
  peer: string;
  /**
   * Aborts the local connection with a TCP RST. Defaults to socket.resetAndDestroy(); a TLS
   * socket passes a function that resets its underlying TCP socket.
   */
  resetSocket?: () => void;
  /** Code sent to the peer when the local socket fails mid-stream. */
  socketFailureCode?: ErrorCode;
  onClose?: (bridge: StreamBridge, outcome: BridgeOutcome) => void;
}

export interface BridgeStatus {
  resource: string;
  stream: number;
  peer: string;
  /** The mux stream's named half-states (our direction, the peer's). */
  sendState: SendState;
  receiveState: ReceiveState;
  /** Bytes read from the local socket and sent into the stream. */
  bytesSent: number;
  /** Bytes received from the stream and written to the local socket. */
  bytesReceived: number;
  openedAt: string;
}

/** Resets a plain TCP socket; falls back to destroy() for handle types that cannot RST. */
export function resetSocket(socket: Socket): void {
  if (socket.destroyed) return;
  try {
    socket.resetAndDestroy();
  } catch {
    socket.destroy();
  }
}

export class StreamBridge {
  bytesSent = 0;
  bytesReceived = 0;
  readonly openedAt = Date.now();
  #socketEnded = false; // the local side sent FIN (we forwarded it as stream.end())
  #streamEnded = false; // the peer sent FIN (we forwarded it as socket.end())
  #finished = false;
  /** Read from the socket, not yet written to the stream (less than one frame; see #coalesce). */
  #held: Buffer[] = [];
  #heldBytes = 0;
  #flushScheduled = false;
  /** A full read arrived since the held tail's flush was last put off (see #coalesce). */
  #readThisTurn = false;
  /** A read this long may have more behind it (see #coalesce); a shorter one drained the socket. */
  readonly #fullReadSize: number;
  readonly #socket: Socket;
  readonly #stream: MuxStream;
  readonly #options: BridgeOptions;

  constructor(socket: Socket, stream: MuxStream, options: BridgeOptions) {
    this.#socket = socket;
    this.#stream = stream;
    this.#options = options;
    this.#fullReadSize = (socket as Socket & { encrypted?: boolean }).encrypted === true ? TLS_MAX_RECORD_PLAINTEXT : TCP_READ_SIZE;
    socket.setNoDelay(true);

    socket.on('data', (chunk: Buffer) => {
      this.bytesSent += chunk.length;
      this.#coalesce(chunk);
    });
    stream.on('drain', () => {
      if (!this.#finished) socket.resume();
    });
    stream.on('data', (chunk: Buffer) => {
      if (socket.destroyed) return;
      this.bytesReceived += chunk.length;
      if (!socket.write(chunk)) stream.pause();
    });
    socket.on('drain', () => stream.resume());

    socket.on('end', () => {
      this.#socketEnded = true;
      this.#flushHeld();
      stream.end();
      this.#maybeClean();
    });
    stream.on('end', () => {
      this.#streamEnded = true;
      if (!socket.destroyed) socket.end();
      this.#maybeClean();
    });

    socket.on('error', (err: NodeJS.ErrnoException) => {
      this.#abort(options.socketFailureCode ?? 'WICKET_ERR_STREAM_RESET', `socket error ${err.code ?? err.message}`, 'stream');
    });
    socket.on('close', () => {
      // A socket that closes before both FINs crossed was cut: the peer must not see a clean end.
      if (!(this.#socketEnded && this.#streamEnded)) {
        this.#abort(options.socketFailureCode ?? 'WICKET_ERR_STREAM_RESET', 'socket closed mid-stream', 'stream');
      }
    });
    stream.on('reset', (err: WicketError) => {
      // The peer reset the stream, or the channel under it closed (err says which).
      this.#abort(err.code, err.message, 'socket');
    });
    stream.on('close', () => {
      // The stream is gone (both ends done, reset, or the channel closed). Unless both FINs
      // crossed, the local socket is reset.
      if (!(this.#socketEnded && this.#streamEnded)) this.#abort('WICKET_ERR_CHANNEL_CLOSED', 'stream closed mid-stream', 'socket');
    });
  }

  get streamId(): number {
    return this.#stream.id;
  }

  status(): BridgeStatus {
    return {
      resource: this.#options.resource,
      stream: this.#stream.id,
      peer: this.#options.peer,
      sendState: this.#stream.sendState,
      receiveState: this.#stream.receiveState,
      bytesSent: this.bytesSent,
      bytesReceived: this.bytesReceived,
      openedAt: new Date(this.openedAt).toISOString(),
    };
  }

  /** Resets both sides now (channel revoked, resource deleted, node stopping). */
  abort(code: ErrorCode, reason: string): void {
    this.#abort(code, reason, 'both');
  }

  // --- write coalescing --------------------------------------------------------------------
  //
  // A socket read is 64 KiB (65,536 bytes) while one frame carries at most MUX_MAX_DATA_PAYLOAD
  // (65,510): written as read, every chunk would become a full frame plus a 26-byte one, and each
  // tiny frame costs a whole message's fixed price on every hop (AEAD setup, WebSocket frame,
  // relay forward, a syscall at the target). TLS targets deliver 16 KiB records, four messages
  // where one would do. So full reads are handed to the stream in full frames; a frame that spans
  // two reads is written as views of both in one writev(), so they leave as one frame and no byte
  // is copied. What is left over waits for the next read, until an event-loop turn brings none
  // (the sender paused or stopped): then it goes, at most one turn after the data before it. A
  // read shorter than the socket's read buffer means the kernel had nothing more queued, so
  // nothing will join it: it is written at once, with whatever was held.

  #write(chunk: Buffer): void {
    if (this.#finished) return;
    if (!this.#stream.write(chunk)) this.#socket.pause();
  }

  #writev(chunks: Buffer[]): void {
    if (this.#finished) return;
    if (!this.#stream.writev(chunks)) this.#socket.pause();
  }

  #coalesce(chunk: Buffer): void {
    if (this.#heldBytes === 0) {
      // Nothing held: a full frame, or a short read that fits one frame, goes out as it is.
      if (chunk.length === MUX_MAX_DATA_PAYLOAD) return this.#write(chunk);
      if (chunk.length < this.#fullReadSize && chunk.length < MUX_MAX_DATA_PAYLOAD) return this.#write(chunk);
    }
    this.#held.push(chunk);
    this.#heldBytes += chunk.length;
    while (this.#heldBytes >= MUX_MAX_DATA_PAYLOAD) this.#writeHeld(MUX_MAX_DATA_PAYLOAD);
    if (chunk.length < this.#fullReadSize) return this.#flushHeld();
    this.#readThisTurn = true;
    if (this.#heldBytes > 0 && !this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(this.#flushHeldAfterQuietTurn);
    }
  }

  /** The tail waits while full reads keep coming (it joins the next one); one quiet turn sends it. */
  readonly #flushHeldAfterQuietTurn = (): void => {
    if (this.#readThisTurn && this.#heldBytes > 0 && !this.#finished) {
      this.#readThisTurn = false;
      setImmediate(this.#flushHeldAfterQuietTurn);
      return;
    }
    this.#flushScheduled = false;
    this.#readThisTurn = false;
    this.#flushHeld();
  };

  #flushHeld(): void {
    if (this.#heldBytes > 0) this.#writeHeld(this.#heldBytes);
  }

  /** Writes the first `n` held bytes to the stream at once, as views of the reads that hold them. */
  #writeHeld(n: number): void {
    this.#heldBytes -= n;
    const pieces: Buffer[] = [];
    for (let left = n; left > 0; ) {
      const piece = this.#held[0]!;
      const used = Math.min(piece.length, left);
      if (used === piece.length) this.#held.shift();
      else this.#held[0] = piece.subarray(used);
      left -= used;
      pieces.push(used === piece.length ? piece : piece.subarray(0, used));
    }
    this.#writev(pieces);
  }

  #maybeClean(): void {
    if (this.#finished || !(this.#socketEnded && this.#streamEnded)) return;
    this.#finished = true;
    this.#options.logger.debug(
      { resource: this.#options.resource, stream: this.#stream.id, peer: this.#options.peer, bytesSent: this.bytesSent, bytesReceived: this.bytesReceived },
      'stream closed cleanly',
    );
    this.#options.onClose?.(this, { clean: true });
  }

  /** `notify`: which side(s) still need telling ('socket' when the stream side already knows). */
  #abort(code: ErrorCode, reason: string, notify: 'socket' | 'stream' | 'both'): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#held = [];
    this.#heldBytes = 0;
    if (notify !== 'socket') {
      try {
        this.#stream.reset(code);
      } catch {
        // already reset or closed: nothing more to tell the peer
      }
    }
    if (notify !== 'stream' || !this.#socket.destroyed) {
      if (this.#options.resetSocket !== undefined) this.#options.resetSocket();
      else resetSocket(this.#socket);
    }
    this.#options.logger.info(
      { resource: this.#options.resource, stream: this.#stream.id, peer: this.#options.peer, code, reason, bytesSent: this.bytesSent, bytesReceived: this.bytesReceived },
      'stream reset',
    );
    this.#options.onClose?.(this, { clean: false, code, reason });
  }
}
