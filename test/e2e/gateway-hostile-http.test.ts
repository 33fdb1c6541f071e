import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStandin, type RunningStandin } from '../../examples/azure-openai-standin/index.js';
import { GATEWAY_HEADERS_TIMEOUT_MS, GATEWAY_MAX_HEADER_BYTES, GATEWAY_MAX_REQUEST_BODY_BYTES } from '../../protocol/limits.js';
import { responses } from '../helpers/http-responses.js';
import { seededBytes } from '../helpers/seeded.js';
import { API_VERSION, apiKeyGateway, ledgerRows, startGatewayPortal, stopPortal, type GatewayPortal } from './gateway-fixture.js';

// Hostile HTTP from an app, through a real inlet: raw TCP bytes to the caller's inlet address are
// forwarded as they are through the relay, and the outlet's gateway parses them. Each attack gets
// an HTTP answer with the WICKET_ERR_HTTP_REQUEST JSON body (or the connection closed), nothing
// smuggled reaches the backend, and afterwards the outlet process still serves the official SDK
// with a ledger row for every complete request.

const BACKEND_KEY = 'backend-key-hostile-http-test-0123456789';
const CHAT = `/openai/deployments/gpt-4o-mini/chat/completions?api-version=${API_VERSION}`;
const EMBEDDINGS = `/openai/deployments/text-embedding-3-small/embeddings?api-version=${API_VERSION}`;
/** A path no legitimate request here uses: a backend request or ledger row naming it was smuggled. */
const SMUGGLED = `/openai/deployments/smuggled/embeddings?api-version=${API_VERSION}`;
const CHAT_BODY = JSON.stringify({ messages: [{ role: 'user', content: 'What is Ockham\'s razor?' }] });
const EMBEDDINGS_BODY = JSON.stringify({ input: 'one two three' });

let standin: RunningStandin;
let portal: GatewayPortal;
let address: string;

beforeAll(async () => {
  standin = await startStandin({ apiKey: BACKEND_KEY, region: 'eastus' });
  portal = await startGatewayPortal({
    gateway: apiKeyGateway(standin.url, BACKEND_KEY),
    callers: [['team=red']],
  });
  address = portal.callers[0]!.address;
}, 60_000);

afterAll(() => stopPortal(standin));

interface RawResult {
  data: Buffer;
  /** 'closed': the connection closed (FIN or reset); 'timeout': still open when the test gave up. */
  how: 'closed' | 'timeout';
  ms: number;
}

/**
 * One raw connection to the inlet: `drive` writes (it may keep writing until `closed()` says so),
 * and the result is every byte received until the connection closed, bounded by `timeoutMs`.
 */
function raw(drive: (socket: Socket, closed: () => boolean) => void | Promise<void>, timeoutMs = 10_000): Promise<RawResult> {
  const [host, port] = address.split(':');
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = connect({ host: host!, port: Number(port) });
    const chunks: Buffer[] = [];
    let closed = false;
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => undefined); // a reset or a write after the gateway's FIN: seen as the close
    const timer = setTimeout(() => {
      socket.destroy();
      finish('timeout');
    }, timeoutMs);
    const finish = (how: RawResult['how']): void => {
      if (closed) return;
      closed = true;
      clearTimeout(timer);
      resolve({ data: Buffer.concat(chunks), how, ms: Date.now() - started });
    };
    socket.once('close', () => finish('closed'));
    socket.once('connect', () => void Promise.resolve(drive(socket, () => closed || socket.destroyed || socket.writableEnded)).catch(() => undefined));
  });
}

const send = (bytes: Buffer | string) => (socket: Socket) => void socket.write(bytes);

/** The one gateway refusal in `result`: its status, after checking the JSON error body and the close. */
function refusal(result: RawResult): number {
  expect(result.how).toBe('closed');
  const all = responses(result.data);
  expect(all, result.data.toString('latin1').slice(0, 300)).toHaveLength(1);
  const [answer] = all;
  expect(answer!.headers['content-type']).toBe('application/json');
  expect(answer!.headers['x-wicket-error-code']).toBe('WICKET_ERR_HTTP_REQUEST');
  expect(JSON.parse(answer!.body).error).toMatchObject({ code: 'WICKET_ERR_HTTP_REQUEST', type: 'wicket_gateway' });
  return answer!.status;
}

const post = (path: string, body: string, extra = '') =>
  `POST ${path} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('gateway: hostile HTTP from the app never takes the outlet down', () => {
  it('a request head over GATEWAY_MAX_HEADER_BYTES is 431 with the JSON error, then the connection closes', async () => {
    const head = `GET ${CHAT} HTTP/1.1\r\nhost: localhost\r\nx-filler: ${'f'.repeat(GATEWAY_MAX_HEADER_BYTES + 1024)}\r\n\r\n`;
    const result = await raw(send(head));
    expect(refusal(result)).toBe(431);
  });

  it('a body over GATEWAY_MAX_REQUEST_BODY_BYTES is 413: by its content-length at once, or once a chunked body grows past it; then closed', async () => {
    // The head alone: the 413 comes before any body byte is sent.
    const declared = await raw(send(`POST ${CHAT} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: ${GATEWAY_MAX_REQUEST_BODY_BYTES + 1}\r\n\r\n`));
    expect(refusal(declared)).toBe(413);
    expect(declared.ms).toBeLessThan(5_000);

    let sentBody = 0;
    let answeredAfter = -1;
    const chunked = await raw(async (socket, closed) => {
      socket.once('data', () => {
        answeredAfter = sentBody;
      });
      socket.write(`POST ${CHAT} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n`);
      const piece = Buffer.alloc(64 * 1024, 0x20);
      const frame = Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n')]);
      while (!closed() && answeredAfter < 0 && sentBody < 2 * GATEWAY_MAX_REQUEST_BODY_BYTES) {
        sentBody += piece.length;
        if (!socket.write(frame)) await new Promise((r) => socket.once('drain', r).once('close', r));
      }
    }, 30_000);
    expect(refusal(chunked)).toBe(413);
    expect(answeredAfter).toBeGreaterThan(GATEWAY_MAX_REQUEST_BODY_BYTES);
  });

  // Each is refused by node's parser at the head (400, no request, no row) — except xchunked: the
  // parser emits that request and refuses its framing at the first body byte, so the gateway's
  // handler had begun (its row says 499) and the stream is reset (an answer was under way).
  const smuggling: [string, string][] = [
    // Content-Length says the body is "0\r\n\r\n"; chunked says it ended there, leaving a second request.
    ['Content-Length and Transfer-Encoding: chunked together', `POST ${CHAT} HTTP/1.1\r\nhost: localhost\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\nGET ${SMUGGLED} HTTP/1.1\r\nhost: localhost\r\n\r\n`],
    ['two different Content-Length headers', `POST ${CHAT} HTTP/1.1\r\nhost: localhost\r\ncontent-length: 0\r\ncontent-length: 50\r\n\r\nGET ${SMUGGLED} HTTP/1.1\r\nhost: localhost\r\n\r\n`],
    ['Transfer-Encoding: xchunked', `POST ${CHAT} HTTP/1.1\r\nhost: localhost\r\ntransfer-encoding: xchunked\r\n\r\n0\r\n\r\nGET ${SMUGGLED} HTTP/1.1\r\nhost: localhost\r\n\r\n`],
    ['an obs-fold header hiding Transfer-Encoding', `POST ${CHAT} HTTP/1.1\r\nhost: localhost\r\nx-folded: a\r\n transfer-encoding: chunked\r\ncontent-length: 5\r\n\r\n0\r\n\r\nGET ${SMUGGLED} HTTP/1.1\r\nhost: localhost\r\n\r\n`],
    ['bare LF line ends', `POST ${CHAT} HTTP/1.1\nhost: localhost\ncontent-length: 5\ntransfer-encoding: chunked\n\n0\n\nGET ${SMUGGLED} HTTP/1.1\nhost: localhost\n\n`],
  ];

  it.each(smuggling)('smuggling — %s: 400 (or reset) and closed, and no second request is parsed from the bytes', async (name, bytes) => {
    const before = standin.requests.length;
    const result = await raw(send(bytes));
    if (name.includes('xchunked')) expect([result.how, result.data.length]).toEqual(['closed', 0]);
    else expect(refusal(result)).toBe(400);
    await sleep(200);
    expect(standin.requests.length).toBe(before);
    expect(standin.requests.some((r) => r.path.includes('smuggled'))).toBe(false);
  });

  it(`slow-loris: a head sent a byte at a time past GATEWAY_HEADERS_TIMEOUT_MS (${GATEWAY_HEADERS_TIMEOUT_MS} ms) is 408, then closed`, async () => {
    const head = Buffer.from(`GET ${CHAT} HTTP/1.1\r\nhost: localhost\r\nx-slow: ${'s'.repeat(40)}\r\n\r\n`);
    // One byte every 250 ms: the whole head would take ~30 s.
    const result = await raw(async (socket, closed) => {
      for (let i = 0; i < head.length && !closed(); i++) {
        socket.write(head.subarray(i, i + 1));
        await sleep(250);
      }
    }, GATEWAY_HEADERS_TIMEOUT_MS + 8_000);
    expect(refusal(result)).toBe(408);
    expect(result.ms).toBeGreaterThanOrEqual(GATEWAY_HEADERS_TIMEOUT_MS - 500);
    expect(result.ms).toBeLessThan(GATEWAY_HEADERS_TIMEOUT_MS + 4_000);
  }, GATEWAY_HEADERS_TIMEOUT_MS + 20_000);

  it('garbage bytes (seeded random binary) are 400 and closed', async () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const result = await raw(send(seededBytes(seed, 4096)));
      expect(refusal(result), `seed ${seed}`).toBe(400);
    }
  });

  it('keep-alive works: two requests in turn on one raw connection are both answered, and pipelined requests are answered in order', async () => {
    const inTurn = await raw(async (socket) => {
      const got: Buffer[] = [];
      socket.on('data', (c: Buffer) => got.push(c));
      socket.write(post(CHAT, CHAT_BODY));
      for (let i = 0; i < 200 && responses(Buffer.concat(got)).length < 1; i++) await sleep(25);
      socket.write(post(EMBEDDINGS, EMBEDDINGS_BODY, 'connection: close\r\n'));
    });
    const both = responses(inTurn.data);
    expect(both.map((r) => r.status)).toEqual([200, 200]);
    expect(JSON.parse(both[0]!.body).object).toBe('chat.completion');
    expect(JSON.parse(both[1]!.body).object).toBe('list');

    const pipelined = await raw(send(post(EMBEDDINGS, EMBEDDINGS_BODY) + post(CHAT, CHAT_BODY, 'connection: close\r\n')));
    const ordered = responses(pipelined.data);
    expect(ordered.map((r) => r.status)).toEqual([200, 200]);
    expect(ordered.map((r) => JSON.parse(r.body).object)).toEqual(['list', 'chat.completion']);
  });

  it('after all of it the outlet is alive, the SDK still works, and every complete request has its ledger row', async () => {
    expect(portal.outlet.proc.alive).toBe(true);
    const client = portal.callers[0]!.client({ deployment: 'gpt-4o-mini' });
    const answer = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'still there?' }] });
    expect(answer.choices[0]?.message.content).toBeTruthy();

    // Rows: the two 413s (complete requests the gateway refused), the xchunked request (its head
    // reached the handler before the parser refused its body: 499, the stream was cut), the four
    // keep-alive answers and the SDK call. The 431, the 400s and the 408 are parse-level refusals
    // or a head that never finished: none of them is a request, so none has a row.
    const expected = 2 + 1 + 4 + 1;
    await ledgerRows(portal.outletHome, expected, 10_000);
    await sleep(600); // a late extra row would be flushed by now
    const rows = await ledgerRows(portal.outletHome, expected);
    expect(rows).toHaveLength(expected);
    const identity = portal.callers[0]!.home.identifier;
    expect(rows.every((r) => r.identity === identity)).toBe(true);
    expect(rows.filter((r) => r.status === 413).map((r) => r.code)).toEqual(['WICKET_ERR_HTTP_REQUEST', 'WICKET_ERR_HTTP_REQUEST']);
    expect(rows.filter((r) => r.status === 499)).toHaveLength(1);
    expect(rows.filter((r) => r.status === 200)).toHaveLength(5);
    expect(rows.some((r) => r.deployment === 'smuggled')).toBe(false);
    expect(standin.requests.some((r) => r.path.includes('smuggled'))).toBe(false);
    expect(portal.outlet.proc.alive).toBe(true);
  });
});
