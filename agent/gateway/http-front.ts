import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import {
  GATEWAY_HEADERS_TIMEOUT_MS,
  GATEWAY_KEEP_ALIVE_TIMEOUT_MS,
  GATEWAY_MAX_HEADER_BYTES,
  GATEWAY_REQUEST_TIMEOUT_MS,
} from '../../protocol/limits.js';
import { isWicketError } from '../../protocol/errors.js';
import type { MuxStream } from '../../protocol/mux/index.js';
import { writeRawError } from './gateway-errors.js';
import { MuxDuplex } from './mux-duplex.js';

// The gateway's HTTP/1.1 front: node:http's parser run on each mux stream (keep-alive, chunked
// bodies, pipelining and the smuggling checks are node's). The server never listens: streams are
// handed to it as connections.
//
// node:http enforces headersTimeout/requestTimeout only for servers that listen, so the deadlines
// are kept here, per connection:
//   idle    (no byte of a next request yet)     → closed quietly after GATEWAY_KEEP_ALIVE_TIMEOUT_MS
//   head    (first byte seen, no 'request' yet) → 408 after GATEWAY_HEADERS_TIMEOUT_MS (slow-loris)
//   body    (request seen, body not all read)   → 408 after GATEWAY_REQUEST_TIMEOUT_MS from its first byte
//   answer  (body read; the gateway is answering) → no deadline here (the backend client has its own)
//   closing (an error was answered raw)          → nothing more is read; reset after CLOSE_GRACE_MS
// A request head over GATEWAY_MAX_HEADER_BYTES is 431; bytes the parser refuses (conflicting
// Content-Length and Transfer-Encoding, garbage) are 400; each then closes the stream.
//
// Pipelined requests overlap (node emits 'request' for each as soon as its head is parsed, and
// answers them in order): each keeps its own body deadline, and the stream is idle only once every
// answer has finished — an idle timer running under a later answer would cut it with a FIN.

/**
 * One request. `deadline` aborts when the body has not all arrived in time: the handler stops
 * reading and answers 408 (the front destroys the stream if it does not within a second).
 */
export type RequestHandler<C> = (req: IncomingMessage, res: ServerResponse, caller: C, deadline: AbortSignal) => void;

export interface HttpFrontOptions<C> {
  logger: Logger;
  onRequest: RequestHandler<C>;
  /** Deadlines (tests shorten them). */
  headersTimeoutMs?: number;
  requestTimeoutMs?: number;
  keepAliveTimeoutMs?: number;
}

type Phase = 'idle' | 'head' | 'body' | 'answer' | 'closing';

/**
 * After a raw error answer and our FIN, how long the app has to close its side before the stream
 * is reset: long enough for the answer to reach it, short enough that a caller holding the stream
 * open (a slow-loris) does not keep it.
 */
const CLOSE_GRACE_MS = 1_000;

interface Connection<C> {
  duplex: MuxDuplex;
  caller: C;
  phase: Phase;
  timer: NodeJS.Timeout | undefined;
  requestStartedAt: number;
  /** Requests whose answer has not finished (more than one when pipelined). */
  answering: number;
}

export class HttpFront<C> {
  readonly #server: http.Server;
  readonly #connections = new Map<MuxDuplex, Connection<C>>();
  readonly #log: Logger;
  readonly #headersTimeoutMs: number;
  readonly #requestTimeoutMs: number;
  readonly #keepAliveTimeoutMs: number;

  constructor(options: HttpFrontOptions<C>) {
    this.#log = options.logger;
    this.#headersTimeoutMs = options.headersTimeoutMs ?? GATEWAY_HEADERS_TIMEOUT_MS;
    this.#requestTimeoutMs = options.requestTimeoutMs ?? GATEWAY_REQUEST_TIMEOUT_MS;
    this.#keepAliveTimeoutMs = options.keepAliveTimeoutMs ?? GATEWAY_KEEP_ALIVE_TIMEOUT_MS;
    this.#server = http.createServer(
      { maxHeaderSize: GATEWAY_MAX_HEADER_BYTES, requireHostHeader: false, insecureHTTPParser: false, keepAlive: true },
      (req, res) => this.#request(req, res, options.onRequest),
    );
    this.#server.on('clientError', (err: NodeJS.ErrnoException, socket) => this.#clientError(err, socket as MuxDuplex));
  }

  /** Serves HTTP on one stream for `caller` (whose identity the channel proved). */
  serve(stream: MuxStream, caller: C): void {
    const duplex = new MuxDuplex(stream);
    const connection: Connection<C> = { duplex, caller, phase: 'idle', timer: undefined, requestStartedAt: 0, answering: 0 };
    this.#connections.set(duplex, connection);
    duplex.on('data', () => {
      if (connection.phase === 'idle') this.#enter(connection, 'head');
    });
    duplex.on('error', (err) => this.#log.debug({ stream: stream.id, reason: err.message }, 'gateway stream failed'));
    duplex.once('close', () => {
      clearTimeout(connection.timer);
      this.#connections.delete(duplex);
    });
    this.#enter(connection, 'idle');
    this.#server.emit('connection', duplex);
  }

  get connections(): number {
    return this.#connections.size;
  }

  /** Stops serving: every stream is reset. */
  close(): void {
    for (const { duplex, timer } of [...this.#connections.values()]) {
      clearTimeout(timer);
      duplex.destroy();
    }
    this.#connections.clear();
  }

  #request(req: IncomingMessage, res: ServerResponse, onRequest: RequestHandler<C>): void {
    const connection = this.#connections.get(req.socket as unknown as MuxDuplex);
    // A head the parser completed after a raw error answer (a slow-loris finishing after its 408)
    // must not reach the handler: the app was told the stream is closed.
    if (connection === undefined || connection.phase === 'closing') {
      res.destroy();
      return;
    }
    // A pipelined request had no head phase of its own: its clock starts now.
    const startedAt = connection.phase === 'head' ? connection.requestStartedAt : Date.now();
    connection.answering++;
    this.#enter(connection, 'body');
    const deadline = new AbortController();
    const bodyTimer = setTimeout(() => this.#bodyTimedOut(connection, deadline), Math.max(0, startedAt + this.#requestTimeoutMs - Date.now()));
    bodyTimer.unref();
    req.once('end', () => {
      clearTimeout(bodyTimer);
      if (connection.phase === 'body') this.#enter(connection, 'answer');
      // One request at a time per stream: the next (pipelined) one is not parsed, and its bytes
      // wait in the stream's window, until this answer is done. Memory per stream stays one body.
      // (An answer sent before the body was read — a refusal — may finish first: then no pause.)
      if (!res.writableFinished) connection.duplex.pause();
    });
    // Answered (or cut) before its body was all read: the body deadline no longer applies.
    res.once('close', () => clearTimeout(bodyTimer));
    res.once('finish', () => {
      connection.answering--;
      if (connection.answering === 0 && connection.phase !== 'closing' && !connection.duplex.destroyed) {
        this.#enter(connection, 'idle');
        connection.duplex.resume();
      }
    });
    onRequest(req, res, connection.caller, deadline.signal);
  }

  #enter(connection: Connection<C>, phase: Phase): void {
    clearTimeout(connection.timer);
    connection.timer = undefined;
    connection.phase = phase;
    if (phase === 'head') connection.requestStartedAt = Date.now();
    const { duplex } = connection;
    switch (phase) {
      case 'idle':
        // Idle too long: FIN, and a reset if the app does not close its side within the grace
        // (or at once when the last answer already ended ours with `connection: close`).
        connection.timer = setTimeout(() => {
          if (duplex.writableEnded) {
            duplex.destroy();
            return;
          }
          duplex.end();
          setTimeout(() => duplex.destroy(), CLOSE_GRACE_MS).unref();
        }, this.#keepAliveTimeoutMs);
        break;
      case 'head':
        connection.timer = setTimeout(() => this.#timedOut(connection, `the request head did not arrive within ${this.#headersTimeoutMs} ms`), this.#headersTimeoutMs);
        break;
      case 'body': // each request's body deadline is its own (#request)
      case 'answer':
        break;
      case 'closing':
        // Nothing more is parsed (node's parser would serve a head finished after the error);
        // the app's unread bytes then wait in the stream's window, which bounds them.
        duplex.pause();
        connection.timer = setTimeout(() => duplex.destroy(), CLOSE_GRACE_MS);
        break;
    }
    connection.timer?.unref();
  }

  /** The head never finished: no request object exists, so the 408 is written raw. */
  #timedOut(connection: Connection<C>, why: string): void {
    this.#log.info({ stream: connection.duplex.stream.id, code: 'WICKET_ERR_HTTP_REQUEST' }, `gateway request timed out: ${why}`);
    connection.duplex.resetCode = 'WICKET_ERR_HTTP_REQUEST';
    writeRawError(connection.duplex, 408, `WICKET_ERR_HTTP_REQUEST: ${why}; the stream is closed.`);
    this.#enter(connection, 'closing');
  }

  /** The body stalls: the handler (reading it) answers 408 through node; a handler that does not is cut. */
  #bodyTimedOut(connection: Connection<C>, deadline: AbortController): void {
    this.#log.info({ stream: connection.duplex.stream.id, code: 'WICKET_ERR_HTTP_REQUEST' }, `gateway request body did not arrive within ${this.#requestTimeoutMs} ms`);
    connection.duplex.resetCode = 'WICKET_ERR_HTTP_REQUEST';
    deadline.abort(new Error(`the request did not arrive within ${this.#requestTimeoutMs} ms`));
    setTimeout(() => connection.duplex.destroy(), CLOSE_GRACE_MS).unref();
  }

  #clientError(err: NodeJS.ErrnoException, duplex: MuxDuplex): void {
    // node reports the stream's own failures here too (a reset by the app): nothing to answer.
    if (duplex.destroyed || isWicketError(err)) return;
    const tooLarge = err.code === 'HPE_HEADER_OVERFLOW';
    const status = tooLarge ? 431 : 400;
    const message = tooLarge
      ? `WICKET_ERR_HTTP_REQUEST: the request head is larger than ${GATEWAY_MAX_HEADER_BYTES} bytes`
      : `WICKET_ERR_HTTP_REQUEST: the request is not valid HTTP/1.1 (${err.code ?? 'parse error'})`;
    this.#log.info({ stream: duplex.stream?.id, code: 'WICKET_ERR_HTTP_REQUEST', parser: err.code }, 'gateway refused a malformed request');
    duplex.resetCode = 'WICKET_ERR_HTTP_REQUEST';
    // A response already under way on this connection cannot be followed by another: just cut.
    const busy = (duplex as unknown as { _httpMessage?: unknown })._httpMessage;
    const connection = this.#connections.get(duplex);
    if (busy !== undefined && busy !== null) duplex.destroy();
    else {
      writeRawError(duplex, status, message);
      if (connection !== undefined && !duplex.destroyed) this.#enter(connection, 'closing');
    }
  }
}
