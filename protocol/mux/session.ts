// A mux session: many streams inside one secure channel (protocol/README.md, "Stream
// multiplexing"). Pure: plaintext messages come in through receive(), go out through the
// `send` callback; the clock is injected.
//
// Receiving: each message is parsed frame by frame; the type byte is range-checked in frames.ts
// and then dispatched through a table of handlers (yamux). Any violation closes the session with
// its code and resets every stream; nothing throws out of receive().
//
// Sending: control frames (OPEN, WINDOW, FIN, RESET, PING, PONG) are packed together and always
// go out, congested or not; data frames are taken round-robin from the streams that have both
// bytes and credit, one frame per turn, so a stream without credit (a slow reader at the far
// end) never holds up the others. A frame carries at most the session credit left too; once that
// is spent no data goes out, for any stream, until the peer's WINDOW(0), and the streams keep
// their place in line. A full-size data frame is its own message: [header, payload views], never
// copied (packer.ts builds the messages). While the transport is congested no data is sent.
// With deferFlush, what a turn writes leaves together, at its end (flush-timing.ts says when not).
//
// Memory a peer can make us hold: at most sessionWindow bytes of DATA across all streams (320 MiB
// by default; session-window.ts), plus maxStreams streams' state (MUX_STREAM_STATE_BYTES each).
// Each stream's window bounds what it holds; window above our initialWindow is charged to one
// WindowBudget (window.ts), so a few streams cannot claim the session window: an OPEN whose excess
// does not fit is refused with RESET(MUX_WINDOW_BUDGET), like one past maxStreams.

import { EventEmitter } from 'node:events';
import { ERROR_CODES, asWicketError, wicketError, type ErrorCode, type WicketError } from '../errors.js';
import { MUX_FRAME_HEADER_LEN, MUX_MAX_DATA_PAYLOAD, MUX_RTT_SAMPLE_MAX_AGE_MS } from '../limits.js';
import { FlushTiming } from './flush-timing.js';
import { FRAME_TYPE_COUNT, FrameType, SESSION_HELLO, checkMessageSize, readFrameHeader } from './frames.js';
import { MessagePacker } from './packer.js';
import { RttEstimator } from './rtt.js';
import { sessionSettings, type MuxSessionOptions } from './session-options.js';
import { SessionReceiveWindow, SessionSendCredit } from './session-window.js';
import { MuxStream, type StreamHost } from './stream.js';
import { ReceiveWindow, WindowBudget } from './window.js';

export type { MuxSessionOptions } from './session-options.js';

type FrameHandler = (stream: number, value: number, payload: Buffer, messageLength: number) => void;

const NO_PAYLOAD: Buffer = Buffer.alloc(0);
const STREAM_ID_MAX = 0xffff_ffff;

export class MuxSession extends EventEmitter {
  readonly #send: (parts: Buffer[]) => boolean;
  readonly #now: () => number;
  readonly #initiator: boolean;
  readonly #maxStreams: number;
  readonly #initialWindow: number;
  readonly #maxWindow: number;
  readonly #writeHighWater: number;
  readonly #budget: WindowBudget;
  /** Session credit: what the peer may send us across all streams, and what it lets us send. */
  readonly #sessionWindow: SessionReceiveWindow;
  readonly #sessionCredit: SessionSendCredit;
  readonly #rtt = new RttEstimator(MUX_RTT_SAMPLE_MAX_AGE_MS);
  readonly #streams = new Map<number, MuxStream>();
  /** Streams that may have bytes and credit, in round-robin order. */
  readonly #ready = new Set<MuxStream>();
  /** The one pong we owe (a newer ping replaces it): a ping flood cannot queue pongs. */
  #pendingPong: number | undefined;
  #pingWanted = false;
  #nextLocalId: number;
  #lastPeerId = 0;
  /** Peer OPENs refused (stream limit or budget) since the transport was last drained (bounds RESETs we queue). */
  #refusedWhileCongested = 0;
  #congested = false;
  #closed = false;
  /** >0 inside receive(): flushes wait until the whole message is processed. */
  #batchDepth = 0;
  #flushing = false;
  #flushAgain = false;
  readonly #flushTiming: FlushTiming;
  readonly #packer = new MessagePacker((parts) => this.#emitMessage(parts));
  readonly #host: StreamHost;
  readonly #dispatch: readonly FrameHandler[];

  constructor(o: MuxSessionOptions) {
    super();
    const settings = sessionSettings(o);
    this.#send = o.send;
    this.#now = settings.now;
    this.#initiator = settings.initiator;
    this.#maxStreams = settings.maxStreams;
    this.#maxWindow = settings.maxWindow;
    this.#initialWindow = settings.initialWindow;
    this.#writeHighWater = settings.writeHighWater;
    this.#flushTiming = new FlushTiming(settings.deferFlush, () => {
      if (!this.#closed && !this.#flushing) this.#flushNow();
    });
    this.#budget = new WindowBudget(settings.windowBudget);
    this.#sessionWindow = new SessionReceiveWindow(settings.sessionWindow);
    this.#sessionCredit = new SessionSendCredit(settings.sessionWindow);
    // Initiator streams are odd, responder streams even (yamux); 0 is the session itself.
    this.#nextLocalId = this.#initiator ? 1 : 2;
    // Our first frame, in our first flush (session-window.ts: why a hello, not a WINDOW(0)).
    this.#packer.control(FrameType.PING, 0, SESSION_HELLO);
    this.#host = {
      now: () => this.#now(),
      rttMs: () => this.#rtt.smoothedMs,
      wantsToSend: (stream) => {
        this.#ready.add(stream);
        this.#flush(stream._sendable() < MUX_MAX_DATA_PAYLOAD);
      },
      control: (type, stream, value) => this.#queueControl(type, stream, value),
      forget: (stream) => {
        this.#streams.delete(stream.id);
        this.#ready.delete(stream);
      },
      needRtt: () => this.#wantRtt(),
      released: (n) => {
        if (this.#sessionWindow.release(n)) this.#flush();
      },
    };
    const table: Record<FrameType, FrameHandler> = {
      [FrameType.DATA]: (id, _value, payload, messageLength) => this.#onData(id, payload, messageLength),
      [FrameType.WINDOW]: (id, increment) => (id === 0 ? this.#sessionCredit.grant(increment) : this.#streamFor(id)?._receiveWindow(increment)),
      [FrameType.OPEN]: (id, window) => this.#onOpen(id, window),
      [FrameType.FIN]: (id) => this.#streamFor(id)?._receiveFin(),
      [FrameType.RESET]: (id, errorNumber) => this.#streamFor(id)?._receiveReset(errorNumber),
      [FrameType.PING]: (_id, pingId) => {
        this.#pendingPong = pingId; // a hello is a first frame only, taken before dispatch (#firstFrame)
      },
      [FrameType.PONG]: (_id, pingId) => {
        this.#rtt.pong(pingId, this.#now());
      },
    };
    this.#dispatch = Array.from({ length: FRAME_TYPE_COUNT }, (_, type) => table[type as FrameType]);
  }

  get streamCount(): number {
    return this.#streams.size;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Diagnostics: DATA bytes received and not yet read or dropped, across all streams (<= sessionWindow). */
  get heldBytes(): number {
    return this.#sessionWindow.held;
  }

  /** Diagnostics: session credit we have (assumed until the peer announces; Infinity against an older peer). */
  get sessionCredit(): number {
    return this.#sessionCredit.available;
  }

  /** Smoothed round-trip time from PING/PONG, undefined until the first sample. */
  get rttMs(): number | undefined {
    return this.#rtt.smoothedMs;
  }

  /**
   * Feeds one decrypted plaintext message. The session keeps views of it (emitted and held data),
   * so the caller must not reuse the buffer. Never throws: a violation closes the session.
   */
  receive(plaintext: Buffer): void {
    if (this.#closed) return;
    this.#batchDepth++;
    try {
      checkMessageSize(plaintext);
      let offset = this.#sessionWindow.state === 'unknown' && plaintext.length > 0 ? this.#firstFrame(plaintext) : 0;
      while (offset < plaintext.length) {
        const frame = readFrameHeader(plaintext, offset);
        offset += MUX_FRAME_HEADER_LEN;
        let payload = NO_PAYLOAD;
        if (frame.type === FrameType.DATA) {
          payload = plaintext.subarray(offset, offset + frame.value);
          offset += frame.value;
        }
        this.#dispatch[frame.type]!(frame.stream, frame.value, payload, plaintext.length);
        if (this.#closed) return;
      }
    } catch (err) {
      this.close(asWicketError(err));
      return;
    } finally {
      this.#batchDepth--;
    }
    this.#flush();
  }

  /** Opens a stream to the peer. The peer's outlet decides where it goes; OPEN names no target. */
  openStream(): MuxStream {
    if (this.#closed) throw wicketError('WICKET_ERR_CHANNEL_CLOSED', 'mux session is closed');
    const refusal =
      this.#streams.size >= this.#maxStreams ? `${this.#streams.size} streams open, limit ${this.#maxStreams}`
      : this.#nextLocalId > STREAM_ID_MAX ? 'stream ids exhausted; open a new channel'
      : undefined;
    if (refusal !== undefined) throw wicketError('WICKET_ERR_MUX_TOO_MANY_STREAMS', refusal);
    const id = this.#nextLocalId;
    this.#nextLocalId += 2;
    const window = new ReceiveWindow(this.#initialWindow, this.#maxWindow, this.#budget, this.#now());
    const stream = this.#newStream(id, window, this.#initialWindow);
    this.#batchDepth++; // OPEN and a first PING leave in one message
    try {
      this.#queueControl(FrameType.OPEN, id, this.#initialWindow);
      this.#wantRtt();
    } finally {
      this.#batchDepth--;
    }
    this.#flush();
    return stream;
  }

  transportDrained(): void {
    if (this.#closed) return;
    this.#congested = false;
    this.#refusedWhileCongested = 0;
    this.#flush();
  }

  /** Sends a ping (unless one is outstanding); the pong gives an RTT sample. */
  ping(): void {
    if (this.#closed || this.#rtt.outstanding) return;
    this.#pingWanted = true;
    this.#flush();
  }

  /**
   * Closes the session: every stream gets 'reset' with `err` (or CHANNEL_CLOSED), then the session
   * emits 'close' with `err`. Nothing more is sent; the owner closes the channel.
   */
  close(err?: WicketError): void {
    if (this.#closed) return;
    this.#closed = true;
    const streamErr = err ?? wicketError('WICKET_ERR_CHANNEL_CLOSED', 'mux session closed');
    for (const stream of [...this.#streams.values()]) stream._abort(streamErr);
    this.#streams.clear();
    this.#ready.clear();
    this.#packer.clear();
    this.#pendingPong = undefined;
    this.emit('close', err);
  }

  // --- receiving ------------------------------------------------------------------------------

  #isLocalId(id: number): boolean {
    return (id % 2 === 1) === this.#initiator;
  }

  /**
   * The stream a frame names; undefined for a stream that existed and is gone (the frame crossed
   * our RESET or close in flight, which is a race, not an attack). Ids never opened are unknown.
   */
  #streamFor(id: number): MuxStream | undefined {
    const stream = this.#streams.get(id);
    if (stream !== undefined) return stream;
    const everOpened = this.#isLocalId(id) ? id < this.#nextLocalId : id <= this.#lastPeerId;
    if (!everOpened) throw wicketError('WICKET_ERR_MUX_UNKNOWN_STREAM', `stream ${id} was never opened`);
    return undefined;
  }

  /**
   * The peer's first frame says whether it speaks session credit: SESSION_HELLO, or anything else
   * from a build that predates it. Returns the bytes consumed: the hello is not dispatched (no
   * PONG); a PING(0) anywhere later is an ordinary ping, as it always was.
   */
  #firstFrame(message: Buffer): number {
    const first = readFrameHeader(message, 0);
    const hello = first.type === FrameType.PING && first.value === SESSION_HELLO;
    this.#sessionWindow.peerSpoke(hello);
    this.#sessionCredit.peerSpoke(hello);
    return hello ? MUX_FRAME_HEADER_LEN : 0;
  }

  /** Every DATA byte counts against the session window, whichever stream it is for. */
  #onData(id: number, payload: Buffer, messageLength: number): void {
    const stream = this.#streamFor(id);
    if (!this.#sessionWindow.receive(payload.length)) {
      throw wicketError('WICKET_ERR_MUX_WINDOW_EXCEEDED', `session: ${payload.length} bytes against ${this.#sessionWindow.allowance} of session credit`);
    }
    // A stream already gone (the frame crossed our RESET): the bytes are dropped, the credit returned.
    if (stream === undefined) this.#sessionWindow.release(payload.length);
    else stream._receiveData(payload, messageLength);
  }

  #onOpen(id: number, window: number): void {
    if (this.#isLocalId(id)) throw wicketError('WICKET_ERR_MUX_PROTOCOL', `peer opened stream ${id}, an id of ours`);
    if (id <= this.#lastPeerId) {
      throw wicketError('WICKET_ERR_MUX_PROTOCOL', `duplicate OPEN: stream ${id} (last opened ${this.#lastPeerId})`);
    }
    if (window > this.#maxWindow) {
      throw wicketError('WICKET_ERR_MUX_PROTOCOL', `OPEN window ${window} above our cap ${this.#maxWindow}`);
    }
    this.#lastPeerId = id;
    if (this.#streams.size >= this.#maxStreams) return this.#refuse(id, 'WICKET_ERR_MUX_TOO_MANY_STREAMS', 'past the stream limit');
    // The OPEN value is our send credit as it stands; as our receive window, whatever it asks
    // above our own initialWindow is charged to the session budget, or the stream is refused.
    const receiveWindow = ReceiveWindow.tryOpen(window, this.#initialWindow, this.#maxWindow, this.#budget, this.#now());
    if (receiveWindow === undefined) return this.#refuse(id, 'WICKET_ERR_MUX_WINDOW_BUDGET', 'with windows beyond the session budget');
    const stream = this.#newStream(id, receiveWindow, window);
    const raise = stream._raiseWindow(this.#initialWindow);
    if (raise > 0) this.#queueControl(FrameType.WINDOW, id, raise);
    this.#wantRtt();
    this.emit('stream', stream);
  }

  /**
   * Refuses one peer OPEN with RESET(code) and keeps the session. While congested the RESETs we
   * owe pile up below us, so a peer that keeps opening streams we refuse then loses the session.
   */
  #refuse(id: number, code: ErrorCode, why: string): void {
    if (this.#congested && ++this.#refusedWhileCongested > this.#maxStreams) {
      throw wicketError(code, `peer keeps opening streams ${why}`);
    }
    this.#queueControl(FrameType.RESET, id, ERROR_CODES[code].num);
  }

  #newStream(id: number, receiveWindow: ReceiveWindow, sendCredit: number): MuxStream {
    const stream = new MuxStream(this.#host, { id, window: receiveWindow, sendCredit, writeHighWater: this.#writeHighWater });
    this.#streams.set(id, stream);
    return stream;
  }

  // --- sending --------------------------------------------------------------------------------

  #queueControl(type: FrameType, stream: number, value: number): void {
    if (this.#closed) return;
    this.#packer.control(type, stream, value);
    this.#flush();
  }

  #wantRtt(): void {
    if (this.#closed || this.#rtt.outstanding || this.#pingWanted || !this.#rtt.stale(this.#now())) return;
    this.#pingWanted = true;
    this.#flush();
  }

  /** `shortData`: a stream has less than a full data frame to send (flush-timing.ts). */
  #flush(shortData = false): void {
    if (this.#closed || this.#batchDepth > 0) return;
    if (this.#flushing) {
      this.#flushAgain = true;
      return;
    }
    this.#flushTiming.request(shortData);
  }

  #flushNow(): void {
    this.#flushing = true;
    try {
      do {
        this.#flushAgain = false;
        this.#flushOnce();
      } while (this.#flushAgain && !this.#closed);
    } catch (err) {
      // The channel's send threw (it is closed or broken): nothing more can go out.
      this.close(asWicketError(err));
    } finally {
      this.#flushing = false;
    }
  }

  #flushOnce(): void {
    for (;;) {
      this.#appendControl();
      this.#packer.packControl();
      if (this.#congested || this.#closed) break;
      // Session credit spent: no data for anyone until WINDOW(0); the ready streams keep their place.
      const credit = this.#sessionCredit.available;
      if (credit === 0) break;
      const stream = this.#nextReady();
      if (stream === undefined) break;
      const sendable = stream._sendable();
      const n = Math.min(sendable, credit);
      if (n === 0) {
        this.#ready.delete(stream);
        continue;
      }
      if (!this.#packer.fits(n)) {
        // Never split a frame to fill a message: a full-size frame is a message of its own.
        this.#packer.finishMessage();
        continue;
      }
      this.#sessionCredit.spend(n);
      // A frame cut short by the session credit does not end the stream's turn: it stays at the
      // front and goes on when credit returns, so no stream's turns are spent on slivers of credit.
      const turnDone = n === sendable;
      if (turnDone) this.#ready.delete(stream);
      this.#packer.packData(stream, n);
      if (turnDone && stream._sendable() > 0) this.#ready.add(stream); // back of the round-robin line
    }
    this.#packer.finishMessage();
  }

  /** The stream at the front of the round-robin line (a Set keeps insertion order). */
  #nextReady(): MuxStream | undefined {
    if (this.#ready.size === 0) return undefined;
    for (const stream of this.#ready) return stream;
    return undefined;
  }

  /** Hands one message built by the packer to the channel. */
  #emitMessage(parts: Buffer[]): void {
    if (this.#closed) return;
    if (!this.#send(parts)) this.#congested = true;
  }

  /** Queues session credit due, the pong we owe (unless congested) and a wanted ping, for the packer. */
  #appendControl(): void {
    // The announcement of our session window, then returned credit once due.
    for (let value = this.#sessionWindow.takeFrame(); value > 0; value = this.#sessionWindow.takeFrame()) {
      this.#packer.control(FrameType.WINDOW, 0, value);
    }
    // The pong waits while congested: at most one is ever owed.
    if (this.#pendingPong !== undefined && !this.#congested) {
      this.#packer.control(FrameType.PONG, 0, this.#pendingPong);
      this.#pendingPong = undefined;
    }
    if (this.#pingWanted) {
      this.#pingWanted = false;
      this.#packer.control(FrameType.PING, 0, this.#rtt.start(this.#now()));
    }
  }
}
