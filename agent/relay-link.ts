import type { Socket } from 'node:net';
import type WebSocket from 'ws';
import { asWicketError, errorCodeFromWire, isWicketError, wicketError, type WicketError } from '../protocol/errors.js';
import { KEEPALIVE_SWEEP_MS, RELAY_CLIENT_MAX_QUEUED_BYTES, RELAY_CLOSE_GRACE_MS } from '../protocol/limits.js';
import { Liveness } from '../protocol/liveness.js';
import { decodeFrameFromRelay, encodeControl, type FrameFromRelay } from '../protocol/relay-frames.js';
import type { AgentToRelay } from '../protocol/relay-messages.js';

// One open WebSocket to the relay, below authentication: decodes every incoming message into a
// RelayFrame (hostile input closes the link with a WICKET_ERR_* reason, never a throw), keeps it
// alive with pings, and reports why it closed.
//
// Frames are queued from the moment the link exists until a consumer takes them, so nothing is
// lost between the handshake (which reads frames one by one with `receive`) and the client that
// takes over with `deliverTo` — `ws` may emit several messages from one TCP chunk in one tick.

/** A relay `error`/`response.error` as a WicketError (the relay's message may already carry the code). */
export function relayError(code: string, message: string): WicketError {
  const known = errorCodeFromWire(code, 'WICKET_ERR_INTERNAL');
  const prefix = `${code}: `;
  const detail = message.startsWith(prefix) ? message.slice(prefix.length) : message;
  return wicketError(known, detail.slice(0, 500) || undefined);
}

// Liveness (protocol/liveness.ts, the same rule the relay applies) is checked every
// KEEPALIVE_SWEEP_MS, so a silent relay is dropped within KEEPALIVE_DEAD_AFTER_MS + one sweep (<= 10 s).

/** ws send options for every frame (one object, not one per frame). */
const BINARY = { binary: true } as const;

type Waiter = { resolve: (f: FrameFromRelay) => void; reject: (e: WicketError) => void; timer: NodeJS.Timeout };

export class RelayLink {
  readonly ws: WebSocket;
  /** The TCP or TLS socket under the WebSocket (its 'drain' drives backpressure). */
  readonly socket: Socket;
  /** host:port, for log lines and messages. */
  readonly where: string;
  /** Frames read before a consumer took them, with their encoded sizes. */
  #inbox: { frame: FrameFromRelay; size: number }[] = [];
  /** Sum of the sizes in #inbox (bounded by RELAY_CLIENT_MAX_QUEUED_BYTES). */
  #inboxBytes = 0;
  #waiter: Waiter | undefined;
  #handler: ((frame: FrameFromRelay) => void) | undefined;
  #closed = false;
  #reason: WicketError | undefined;
  #closeListeners: ((reason: WicketError) => void)[] = [];
  readonly #liveness = new Liveness(performance.now());
  #keepalive: NodeJS.Timeout;

  constructor(ws: WebSocket, socket: Socket, where: string) {
    this.ws = ws;
    this.socket = socket;
    this.where = where;
    ws.on('message', (data, isBinary) => this.#onMessage(data, isBinary));
    ws.on('ping', () => this.#heard());
    ws.on('pong', () => this.#heard());
    ws.on('error', (err: Error & { code?: string }) => {
      if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') this.#noteReason(wicketError('WICKET_ERR_FRAME_TOO_LARGE', `the relay sent a message over the frame cap`));
      else this.#noteReason(wicketError('WICKET_ERR_RELAY_UNREACHABLE', `connection to the relay at ${where} failed: ${err.code ?? err.message}`));
    });
    ws.on('close', (code) => this.#onClose(code));
    this.#keepalive = setInterval(() => this.#tick(), KEEPALIVE_SWEEP_MS);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Bytes accepted by send() but not yet handed to the kernel. */
  get bufferedAmount(): number {
    return this.ws.bufferedAmount;
  }

  /** The next frame, for the handshake. Rejects on close or after timeoutMs (WICKET_ERR_RELAY_TIMEOUT). */
  receive(timeoutMs: number, what: string): Promise<FrameFromRelay> {
    const queued = this.#inbox.shift();
    if (queued !== undefined) {
      this.#inboxBytes -= queued.size;
      return Promise.resolve(queued.frame);
    }
    if (this.#closed) return Promise.reject(this.#closeReason());
    return new Promise<FrameFromRelay>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiter = undefined;
        const err = wicketError('WICKET_ERR_RELAY_TIMEOUT', `the relay at ${this.where} sent no ${what} within ${timeoutMs} ms`);
        this.fail(err);
        reject(err);
      }, timeoutMs);
      this.#waiter = { resolve, reject, timer };
    });
  }

  /** Hands every queued and future frame to `handler`, synchronously and in order. */
  deliverTo(handler: (frame: FrameFromRelay) => void): void {
    this.#handler = handler;
    const queued = this.#inbox;
    this.#inbox = [];
    this.#inboxBytes = 0;
    for (const { frame } of queued) {
      if (this.#closed) break;
      handler(frame);
    }
  }

  sendControl(message: AgentToRelay): void {
    this.send(encodeControl(message));
  }

  /** Queues one frame; silently dropped once the link is closing (the close is reported separately). */
  send(frame: Buffer): void {
    if (this.#closed || this.ws.readyState !== this.ws.OPEN) return;
    this.ws.send(frame, BINARY);
  }

  /** Records why the link is closing, unless a reason is already known (the first one wins). */
  noteReason(reason: WicketError): void {
    this.#noteReason(reason);
  }

  /** Closes at once with `reason` (protocol violation, dead peer, local decision). */
  fail(reason: WicketError): void {
    this.#noteReason(reason);
    this.ws.terminate();
  }

  /** Runs `listener` once when the link is closed (immediately if it already is). */
  onClose(listener: (reason: WicketError) => void): void {
    if (this.#closed) listener(this.#closeReason());
    else this.#closeListeners.push(listener);
  }

  /** Graceful close (ws close 1000), cut after a short grace; resolves once closed. */
  close(reason?: WicketError): Promise<void> {
    if (reason !== undefined) this.#noteReason(reason);
    if (this.#closed) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.onClose(() => resolve());
      const cut = setTimeout(() => this.ws.terminate(), RELAY_CLOSE_GRACE_MS);
      this.onClose(() => clearTimeout(cut));
      try {
        this.ws.close(1000, 'agent closing');
      } catch {
        this.ws.terminate();
      }
    });
  }

  #noteReason(reason: WicketError): void {
    if (this.#reason === undefined) this.#reason = reason;
  }

  #closeReason(): WicketError {
    return this.#reason ?? wicketError('WICKET_ERR_RELAY_UNREACHABLE', `the relay at ${this.where} closed the connection`);
  }

  #heard(): void {
    this.#liveness.heard(performance.now());
  }

  #tick(): void {
    const now = performance.now();
    const verdict = this.#liveness.check(now);
    if (verdict === 'dead') {
      this.fail(wicketError('WICKET_ERR_RELAY_UNREACHABLE', `the relay at ${this.where} was silent for ${Math.round(this.#liveness.silentFor(now))} ms`));
    } else if (verdict === 'ping') {
      try {
        this.ws.ping();
      } catch {
        // Not open (closing): the close event reports it.
      }
    }
  }

  #onMessage(data: WebSocket.RawData, isBinary: boolean): void {
    this.#heard();
    if (this.#closed) return;
    if (!isBinary) {
      this.fail(wicketError('WICKET_ERR_RELAY_PROTOCOL', 'the relay sent a text message; frames are binary'));
      return;
    }
    const bytes = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
    let frame: FrameFromRelay;
    try {
      frame = decodeFrameFromRelay(bytes);
    } catch (err) {
      this.fail(isWicketError(err) ? err : asWicketError(err));
      return;
    }
    if (this.#handler !== undefined) {
      this.#handler(frame);
    } else if (this.#waiter !== undefined) {
      const w = this.#waiter;
      this.#waiter = undefined;
      clearTimeout(w.timer);
      w.resolve(frame);
    } else if (this.#inboxBytes + bytes.length > RELAY_CLIENT_MAX_QUEUED_BYTES) {
      this.fail(wicketError('WICKET_ERR_RELAY_PROTOCOL', `the relay sent over ${RELAY_CLIENT_MAX_QUEUED_BYTES} bytes of frames before authentication finished`));
    } else {
      this.#inbox.push({ frame, size: bytes.length });
      this.#inboxBytes += bytes.length;
    }
  }

  #onClose(code: number): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#keepalive);
    this.#noteReason(wicketError('WICKET_ERR_RELAY_UNREACHABLE', `the relay at ${this.where} closed the connection (WebSocket code ${code})`));
    const reason = this.#closeReason();
    this.#inbox = [];
    this.#inboxBytes = 0;
    if (this.#waiter !== undefined) {
      const w = this.#waiter;
      this.#waiter = undefined;
      clearTimeout(w.timer);
      w.reject(reason);
    }
    const listeners = this.#closeListeners;
    this.#closeListeners = [];
    for (const l of listeners) l(reason);
  }
}
