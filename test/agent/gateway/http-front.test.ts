// The gateway's HTTP front on real mux streams, in process: a MuxSession pair joined back to back
// (each message handed over on a later turn, as the channel would), the app's side driven as raw
// bytes on the initiator's stream, HttpFront serving the responder's. Deadlines are shortened
// through the front's options so each one is seen to fire; every wait is bounded.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { ByteBudget } from '../../../agent/gateway/byte-budget.js';
import { HttpFront, type HttpFrontOptions } from '../../../agent/gateway/http-front.js';
import { sendGatewayError } from '../../../agent/gateway/gateway-errors.js';
import { readRequestBody, type BodyResult } from '../../../agent/gateway/request-body.js';
import { GATEWAY_MAX_HEADER_BYTES, STREAM_WRITE_HIGH_WATER } from '../../../protocol/limits.js';
import { MuxSession, type MuxStream } from '../../../protocol/mux/index.js';
import { responses } from '../../helpers/http-responses.js';
import { silentLogger } from '../session-pair.js';

interface Caller {
  identifier: string;
}
const CALLER: Caller = { identifier: 'Itest-caller' };

/** What the app's side of one stream has seen. */
interface AppSide {
  stream: MuxStream;
  /** The front's stream for this connection. */
  served: MuxStream;
  bytes: () => Buffer;
  /** How the front's side finished: a FIN, or a reset. */
  ended: () => 'fin' | 'reset' | undefined;
}

interface Harness {
  front: HttpFront<Caller>;
  requests: IncomingMessage[];
  /** `endOnFin: false` keeps the app's side open after the front's FIN (a hostile app). */
  connect(o?: { endOnFin?: boolean }): Promise<AppSide>;
}

let fronts: HttpFront<Caller>[] = [];
afterEach(() => {
  for (const front of fronts) front.close();
  fronts = [];
});

function harness(onRequest: HttpFrontOptions<Caller>['onRequest'], deadlines: Partial<HttpFrontOptions<Caller>> = {}): Harness {
  const requests: IncomingMessage[] = [];
  const front = new HttpFront<Caller>({
    logger: silentLogger,
    ...deadlines,
    onRequest: (req, res, caller, deadline) => {
      requests.push(req);
      onRequest(req, res, caller, deadline);
    },
  });
  fronts.push(front);
  let app!: MuxSession;
  let outlet!: MuxSession;
  const hand = (to: () => MuxSession) => (parts: Buffer[]) => {
    const message = Buffer.concat(parts); // the channel's encryption copies too
    setImmediate(() => to().receive(message));
    return true;
  };
  app = new MuxSession({ role: 'initiator', send: hand(() => outlet) });
  outlet = new MuxSession({ role: 'responder', send: hand(() => app) });
  const accepted: ((s: MuxStream) => void)[] = [];
  outlet.on('stream', (stream: MuxStream) => {
    front.serve(stream, CALLER);
    accepted.shift()?.(stream);
  });
  return {
    front,
    requests,
    async connect({ endOnFin = true } = {}) {
      const served = new Promise<MuxStream>((resolve) => accepted.push(resolve));
      const stream = app.openStream();
      const chunks: Buffer[] = [];
      let ended: 'fin' | 'reset' | undefined;
      stream.on('data', (chunk: Buffer) => chunks.push(Buffer.from(chunk)));
      stream.once('end', () => {
        ended ??= 'fin';
        if (endOnFin) stream.end(); // the app closes too, as a client does on the server's FIN
      });
      stream.once('reset', () => {
        ended ??= 'reset';
      });
      return { stream, served: await bounded(served, 2_000, 'the front never got the stream'), bytes: () => Buffer.concat(chunks), ended: () => ended };
    },
  };
}

async function bounded<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function until(condition: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms: ${what}`);
    await sleep(5);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Answers every request with its path once the body is read. */
function echoPath(req: IncomingMessage, res: ServerResponse): void {
  req.resume();
  req.once('end', () => {
    const body = `path ${req.url}`;
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(body.length) });
    res.end(body);
  });
}

const GET = (path: string) => Buffer.from(`GET ${path} HTTP/1.1\r\nhost: gateway\r\n\r\n`);

describe('HttpFront on mux streams', () => {
  it('keeps a connection alive for a second request, then closes the idle stream quietly after keepAliveTimeoutMs', async () => {
    const { front, connect } = harness(echoPath, { keepAliveTimeoutMs: 300 });
    const app = await connect();
    app.stream.write(GET('/one'));
    await until(() => responses(app.bytes()).length === 1, 2_000, 'first answer');
    app.stream.write(GET('/two'));
    await until(() => responses(app.bytes()).length === 2, 2_000, 'second answer on the same stream');
    expect(responses(app.bytes()).map((r) => r.body)).toEqual(['path /one', 'path /two']);
    const idleSince = Date.now();
    await until(() => app.ended() !== undefined, 2_000, 'idle close');
    expect(app.ended()).toBe('fin'); // quietly: a FIN, no bytes, no reset
    expect(Date.now() - idleSince).toBeGreaterThanOrEqual(250);
    expect(responses(app.bytes())).toHaveLength(2);
    await until(() => front.connections === 0, 2_000, 'the front forgets the stream');
  });

  it('answers pipelined requests in order on one stream', async () => {
    const { connect } = harness(echoPath);
    const app = await connect();
    app.stream.write(Buffer.concat([GET('/a'), GET('/b'), GET('/c')]));
    await until(() => responses(app.bytes()).length === 3, 2_000, 'three answers');
    expect(responses(app.bytes()).map((r) => r.body)).toEqual(['path /a', 'path /b', 'path /c']);
  });

  it('a pipelined answer that outlasts the keep-alive timeout is not cut by it (the stream is idle only when every answer is done)', async () => {
    const { connect } = harness(
      (req, res) => {
        req.resume();
        const slow = req.url === '/slow';
        setTimeout(() => {
          res.writeHead(200, { 'content-length': String(req.url!.length) });
          res.end(req.url);
        }, slow ? 600 : 0);
      },
      { keepAliveTimeoutMs: 200 },
    );
    const app = await connect();
    app.stream.write(Buffer.concat([GET('/fast'), GET('/slow')]));
    await until(() => responses(app.bytes()).length === 2 || app.ended() !== undefined, 3_000, 'both answers');
    expect(responses(app.bytes()).map((r) => r.body)).toEqual(['/fast', '/slow']);
  });

  it('a request pipelined under a long answer gets its own body deadline, not the one its predecessor started', async () => {
    const { connect } = harness(
      (req, res, _caller, deadline) => {
        void readRequestBody(req, 1024, deadline, new ByteBudget(1024 * 1024)).then((read) => {
          if (read.kind !== 'body') {
            res.shouldKeepAlive = false;
            sendGatewayError(res, { status: 408, code: 'WICKET_ERR_HTTP_REQUEST', message: read.kind });
            return;
          }
          setTimeout(() => {
            const body = `${req.url} ${read.body.length}`;
            res.writeHead(200, { 'content-length': String(body.length) });
            res.end(body);
          }, req.url === '/slow' ? 500 : 0);
        });
      },
      { requestTimeoutMs: 300 },
    );
    const app = await connect();
    app.stream.write(GET('/slow'));
    await sleep(400); // past /slow's request deadline, while it is being answered
    app.stream.write(Buffer.from('POST /next HTTP/1.1\r\nhost: g\r\ncontent-length: 4\r\n\r\n{}'));
    await sleep(50);
    app.stream.write(Buffer.from('{}'));
    await until(() => responses(app.bytes()).length === 2 || app.ended() !== undefined, 3_000, 'both answers');
    expect(responses(app.bytes()).map((r) => [r.status, r.body])).toEqual([[200, '/slow 0'], [200, '/next 4']]);
  });

  it('slow-loris head: 408 after headersTimeoutMs, the stream is closed, and the head finished later is never served', async () => {
    const handled: string[] = [];
    const { front, connect } = harness((req, res) => {
      handled.push(req.url ?? '');
      echoPath(req, res);
    }, { headersTimeoutMs: 300 });
    const app = await connect({ endOnFin: false });
    const head = GET('/loris');
    const started = Date.now();
    let sent = 0;
    while (app.ended() === undefined && sent < head.length - 1 && Date.now() - started < 3_000) {
      app.stream.write(head.subarray(sent, sent + 1));
      sent++;
      await sleep(40);
    }
    await until(() => app.ended() !== undefined, 2_000, '408 and close');
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(280);
    expect(elapsed).toBeLessThan(1_500);
    const [answer, ...rest] = responses(app.bytes());
    expect(answer?.status).toBe(408);
    expect(answer?.headers.connection).toBe('close');
    expect(JSON.parse(answer!.body).error.code).toBe('WICKET_ERR_HTTP_REQUEST');
    expect(rest).toEqual([]);
    expect(app.ended()).toBe('fin');
    // The rest of the head (if the stream still took it) must not become a request.
    app.stream.write(head.subarray(sent));
    await sleep(100);
    expect(handled).toEqual([]);
    // An app that holds the stream open after the 408 loses it about a second later (reset).
    await until(() => front.connections === 0 && app.stream.closed, 2_000, 'the front cuts the held stream');
  });

  it('body deadline: the handler\'s AbortSignal fires after requestTimeoutMs and it answers 408; the stream closes', async () => {
    let result: BodyResult | undefined;
    let signal: AbortSignal | undefined;
    const { connect } = harness(
      (req, res, _caller, deadline) => {
        signal = deadline;
        void readRequestBody(req, 1024 * 1024, deadline, new ByteBudget(1024 * 1024)).then((read) => {
          result = read;
          if (read.kind === 'timeout') {
            res.shouldKeepAlive = false;
            sendGatewayError(res, { status: 408, code: 'WICKET_ERR_HTTP_REQUEST', message: 'WICKET_ERR_HTTP_REQUEST: the request body did not arrive in time.' });
          }
        });
      },
      { requestTimeoutMs: 400 },
    );
    const app = await connect();
    const started = Date.now();
    app.stream.write(Buffer.from('POST /openai/deployments/d/chat/completions HTTP/1.1\r\nhost: g\r\ncontent-length: 100\r\n\r\n{"messages":'));
    await until(() => app.ended() !== undefined, 3_000, '408 and close');
    expect(Date.now() - started).toBeGreaterThanOrEqual(350);
    expect(signal?.aborted).toBe(true);
    expect(result?.kind).toBe('timeout');
    const [answer] = responses(app.bytes());
    expect(answer?.status).toBe(408);
    expect(answer?.headers['x-wicket-error-code']).toBe('WICKET_ERR_HTTP_REQUEST');
    expect(JSON.parse(answer!.body).error.code).toBe('WICKET_ERR_HTTP_REQUEST');
    expect(app.ended()).toBe('fin');
  });

  it('body deadline: a handler that ignores the signal has its stream reset about a second later', async () => {
    const { connect } = harness(() => undefined, { requestTimeoutMs: 200 });
    const app = await connect();
    app.stream.write(Buffer.from('POST /x HTTP/1.1\r\nhost: g\r\ncontent-length: 100\r\n\r\n{'));
    await until(() => app.ended() !== undefined, 3_000, 'reset');
    expect(app.ended()).toBe('reset');
    expect(app.bytes().length).toBe(0);
  });

  it('a reset from the peer destroys the request being read: the body read reports "aborted" and the stream is forgotten', async () => {
    let read: Promise<BodyResult> | undefined;
    let response: ServerResponse | undefined;
    const { front, requests, connect } = harness((req, res, _caller, deadline) => {
      response = res;
      read = readRequestBody(req, 1024 * 1024, deadline, new ByteBudget(1024 * 1024));
    });
    const app = await connect();
    app.stream.write(Buffer.from('POST /x HTTP/1.1\r\nhost: g\r\ncontent-length: 1000\r\n\r\n{"half":'));
    await until(() => requests.length === 1, 2_000, 'the request');
    app.stream.reset('WICKET_ERR_STREAM_RESET');
    expect(await bounded(read!, 2_000, 'body read')).toMatchObject({ kind: 'aborted' });
    await until(() => requests[0]!.destroyed && response!.destroyed, 2_000, 'request and response destroyed');
    expect(requests[0]!.complete).toBe(false);
    await until(() => front.connections === 0, 2_000, 'the front forgets the stream');
  });

  it('a head over GATEWAY_MAX_HEADER_BYTES is 431 and garbage is 400, each with the JSON error and a closed stream', async () => {
    const { requests, connect } = harness(echoPath);
    const big = await connect();
    big.stream.write(Buffer.from(`GET / HTTP/1.1\r\nhost: g\r\nx-big: ${'a'.repeat(GATEWAY_MAX_HEADER_BYTES + 1)}\r\n\r\n`));
    const garbage = await connect();
    garbage.stream.write(Buffer.from([0x16, 0x03, 0x01, 0x00, 0xff, 0x01, 0x00, 0x00, 0xfb, 0x03, 0x03, 0x0d, 0x0a, 0x0d, 0x0a]));
    await until(() => big.ended() !== undefined && garbage.ended() !== undefined, 3_000, 'both closed');
    expect(responses(big.bytes()).map((r) => [r.status, JSON.parse(r.body).error.code])).toEqual([[431, 'WICKET_ERR_HTTP_REQUEST']]);
    expect(responses(garbage.bytes()).map((r) => [r.status, JSON.parse(r.body).error.code])).toEqual([[400, 'WICKET_ERR_HTTP_REQUEST']]);
    expect(requests).toHaveLength(0);
  });

  it('backpressure: a large answer to a paused reader waits in bounded buffers (mux queue at its high-water mark), then arrives whole', async () => {
    const TOTAL = 32 * 1024 * 1024;
    const CHUNK = Buffer.alloc(64 * 1024, 0x61);
    let produced = 0;
    const { connect } = harness((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-length': String(TOTAL) });
      const source = Readable.from(
        (function* () {
          while (produced < TOTAL) {
            produced += CHUNK.length;
            yield CHUNK;
          }
        })(),
      );
      void pipeline(source, res).catch(() => undefined);
    });
    const app = await connect();
    app.stream.pause(); // the app reads nothing yet
    app.stream.write(GET('/big'));
    let maxQueued = 0;
    const sample = setInterval(() => {
      maxQueued = Math.max(maxQueued, app.served.queuedBytes);
    }, 2);
    try {
      await sleep(500);
      const producedWhilePaused = produced;
      // Held back: the app's window, the mux queue, and node's stream buffers — never the whole answer.
      expect(producedWhilePaused).toBeLessThan(2 * 1024 * 1024);
      expect(maxQueued).toBeGreaterThan(0);
      expect(maxQueued).toBeLessThanOrEqual(STREAM_WRITE_HIGH_WATER + CHUNK.length);
      let received = 0;
      app.stream.removeAllListeners('data');
      app.stream.on('data', (chunk: Buffer) => {
        received += chunk.length;
      });
      app.stream.resume();
      await until(() => received >= TOTAL, 20_000, 'the whole answer after resume');
      expect(maxQueued).toBeLessThanOrEqual(STREAM_WRITE_HIGH_WATER + CHUNK.length);
    } finally {
      clearInterval(sample);
    }
  });
});
