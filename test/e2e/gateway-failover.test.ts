import { createServer, type AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStandin, type RunningStandin } from '../../examples/azure-openai-standin/index.js';
import type { BackendStatus } from '../../agent/gateway/backend.js';
import { GATEWAY_BREAKER_FAILURES } from '../../protocol/limits.js';
import { runAgent } from '../../scripts/lib/local-processes.js';
import { API_VERSION, ledgerRows, refusal, startGatewayPortal, stopPortal, writeKeyFile, type GatewayPortal } from './gateway-fixture.js';

// The gateway's backend pool from the app's side: real relay and agent processes, Azure OpenAI
// stand-ins as the backends, the official openai SDK (maxRetries 0) as the app. A backend that
// answers 429 is skipped for exactly its retry-after; one answering 5xx or not listening at all is
// passed over and its breaker opens after GATEWAY_BREAKER_FAILURES; when nothing is left the app
// gets an Azure-shaped HTTP error (an APIError with status and WICKET_ERR_* code), never a reset;
// and a stream the backend cuts after bytes reached the app is never retried elsewhere.

const KEY = 'backend-key-for-the-failover-pool-0123';
const messages = [{ role: 'user' as const, content: 'What is Ockham\'s razor?' }];
const standins: RunningStandin[] = [];
let keyFile: string;

async function standin(region: string): Promise<RunningStandin> {
  const s = await startStandin({ apiKey: KEY, region });
  standins.push(s);
  return s;
}

/** A loopback port nothing listens on: bound, noted, closed. */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function backend(name: string, url: string, priority: number): Record<string, unknown> {
  return { name, url, priority, auth: { kind: 'api-key', file: keyFile } };
}

async function backendStatus(portal: GatewayPortal): Promise<Record<string, BackendStatus>> {
  const result = await runAgent(portal.outletHome.home, ['status', '--json']);
  expect(result.code, result.stderr).toBe(0);
  const status = JSON.parse(result.stdout) as { outlets: { gateway?: { backends: BackendStatus[] } }[] };
  return Object.fromEntries(status.outlets[0]!.gateway!.backends.map((b) => [b.name, b]));
}

beforeAll(() => {
  keyFile = writeKeyFile(KEY);
});

afterAll(() => stopPortal(...standins));

describe('failover: throttled, failing and dead backends are passed over for the healthy one', () => {
  // One backend per priority, so the order is fixed: every request tries throttled (unless it
  // is cooling), then failing, then dead (each until its breaker opens), then healthy.
  const RETRY_AFTER_MS = 4_000;
  let throttled: RunningStandin;
  let failing: RunningStandin;
  let healthy: RunningStandin;
  let portal: GatewayPortal;

  beforeAll(async () => {
    throttled = await standin('throttled-region');
    failing = await standin('failing-region');
    healthy = await standin('healthy-region');
    const dead = await deadPort();
    portal = await startGatewayPortal({
      gateway: {
        kind: 'azure-openai',
        backends: [
          backend('throttled', throttled.url, 0),
          backend('failing', failing.url, 1),
          backend('dead', `http://127.0.0.1:${dead}`, 2),
          backend('healthy', healthy.url, 3),
        ],
      },
      callers: [['team=failover']],
    });
  }, 60_000);

  it('answers from the healthy backend; skips the 429 one until its retry-after and opens the others\' breakers', async () => {
    const client = portal.callers[0]!.client({ deployment: 'gpt-4o-mini' });
    const ask = async (): Promise<string | null> => {
      const { data, response } = await client.chat.completions.create({ model: 'gpt-4o-mini', messages }).withResponse();
      expect(data.choices[0]?.message.content).toBeTruthy();
      return response.headers.get('x-ms-region');
    };
    throttled.setOutage({ kind: 'rate-limited', retryAfterMs: RETRY_AFTER_MS });
    failing.setOutage({ kind: 'failing', status: 500 });

    const sentFirstAt = Date.now();
    expect(await ask()).toBe('healthy-region');
    const throttledAt = Date.now(); // the gateway saw the 429 no later than this
    expect(throttled.answered).toEqual({ 429: 1 });
    expect(failing.answered).toEqual({ 500: 1 });
    expect(healthy.answered).toEqual({ 200: 1 });

    // Until the breaker opens, every request still tries failing (and dead) first; throttled is cooling.
    for (let i = 1; i < GATEWAY_BREAKER_FAILURES; i++) expect(await ask()).toBe('healthy-region');
    expect(failing.answered).toEqual({ 500: GATEWAY_BREAKER_FAILURES });
    // Breakers open: the next requests go straight to healthy.
    expect(await ask()).toBe('healthy-region');
    expect(await ask()).toBe('healthy-region');
    expect(failing.requests).toHaveLength(GATEWAY_BREAKER_FAILURES);
    expect(throttled.requests).toHaveLength(1);
    expect(healthy.answered).toEqual({ 200: GATEWAY_BREAKER_FAILURES + 2 });

    const status = await backendStatus(portal);
    // The premise of the "cooling" assertions: all of the above happened within the retry-after.
    expect(Date.now() - sentFirstAt).toBeLessThan(RETRY_AFTER_MS);
    expect(status.throttled).toMatchObject({ breaker: { state: 'cooling' }, requests: 1, throttled: 1, failures: 0, lastError: { message: `429: cooling for ${RETRY_AFTER_MS} ms` } });
    expect(Date.parse(status.throttled!.breaker.until!)).toBeGreaterThanOrEqual(sentFirstAt + RETRY_AFTER_MS);
    expect(Date.parse(status.throttled!.breaker.until!)).toBeLessThanOrEqual(throttledAt + RETRY_AFTER_MS);
    expect(status.failing).toMatchObject({
      breaker: { state: 'open', consecutiveFailures: GATEWAY_BREAKER_FAILURES }, requests: GATEWAY_BREAKER_FAILURES, failures: GATEWAY_BREAKER_FAILURES,
      lastError: { message: 'HTTP 500' },
    });
    expect(status.failing!.breaker.until).toBeDefined();
    expect(status.dead).toMatchObject({ breaker: { state: 'open', consecutiveFailures: GATEWAY_BREAKER_FAILURES }, requests: GATEWAY_BREAKER_FAILURES, failures: GATEWAY_BREAKER_FAILURES });
    expect(status.dead!.lastError?.message).toMatch(/^unreachable: .*ECONNREFUSED/);
    expect(status.healthy).toMatchObject({ breaker: { state: 'closed', consecutiveFailures: 0 }, requests: GATEWAY_BREAKER_FAILURES + 2, failures: 0, throttled: 0 });
    expect(status.healthy!.lastError).toBeUndefined();

    // Throttled recovers, but its retry-after has not passed: still skipped.
    throttled.setOutage({ kind: 'none' });
    expect(await ask()).toBe('healthy-region');
    expect(Date.now() - sentFirstAt).toBeLessThan(RETRY_AFTER_MS);
    expect(throttled.requests).toHaveLength(1);

    // Once it has passed, priority 0 takes the traffic again.
    await sleep(Math.max(0, throttledAt + RETRY_AFTER_MS + 100 - Date.now()));
    expect(await ask()).toBe('throttled-region');
    expect(await ask()).toBe('throttled-region');
    expect(throttled.answered).toEqual({ 429: 1, 200: 2 });
    expect(failing.requests).toHaveLength(GATEWAY_BREAKER_FAILURES);
    expect((await backendStatus(portal)).throttled).toMatchObject({ breaker: { state: 'closed' }, requests: 3 });

    const rows = await ledgerRows(portal.outletHome, GATEWAY_BREAKER_FAILURES + 5);
    expect(rows.map((r) => r.backend)).toEqual([...Array<string>(GATEWAY_BREAKER_FAILURES + 3).fill('healthy'), 'throttled', 'throttled']);
    expect(rows.every((r) => r.status === 200 && r.code === null)).toBe(true);
  });
});

describe('no backend left: the app gets an HTTP error with a WICKET_ERR_* code', () => {
  let east: RunningStandin;
  let west: RunningStandin;
  let portal: GatewayPortal;

  beforeAll(async () => {
    east = await standin('east');
    west = await standin('west');
    portal = await startGatewayPortal({
      gateway: { kind: 'azure-openai', backends: [backend('east', east.url, 0), backend('west', west.url, 0)] },
      callers: [['team=unavailable']],
    });
  }, 60_000);

  it('all cooling → 503 WICKET_ERR_BACKENDS_COOLING with retry-after; all failing → 502 WICKET_ERR_BACKEND_FAILED; all unreachable → 502 WICKET_ERR_BACKEND_UNREACHABLE', async () => {
    const client = portal.callers[0]!.client({ deployment: 'gpt-4o-mini', maxRetries: 0 });
    const chat = (): Promise<unknown> => client.chat.completions.create({ model: 'gpt-4o-mini', messages });

    const retryAfterMs = 1_500;
    east.setOutage({ kind: 'rate-limited', retryAfterMs });
    west.setOutage({ kind: 'rate-limited', retryAfterMs });
    // Both tried, both 429: the gateway says when the first is back.
    const tried = await refusal(chat());
    const throttledBy = Date.now();
    expect(east.answered).toEqual({ 429: 1 });
    expect(west.answered).toEqual({ 429: 1 });
    // Both still cooling: nothing is even tried.
    const skipped = await refusal(chat());
    expect(east.requests).toHaveLength(1);
    expect(west.requests).toHaveLength(1);
    for (const err of [tried, skipped]) {
      expect(err.status).toBe(503);
      expect(err.code).toBe('WICKET_ERR_BACKENDS_COOLING');
      const headers = err.headers as Record<string, string>;
      expect(headers['x-wicket-error-code']).toBe('WICKET_ERR_BACKENDS_COOLING');
      expect(headers['retry-after']).toMatch(/^[12]$/);
      expect(Number(headers['retry-after-ms'])).toBeGreaterThanOrEqual(1_000);
      expect(Number(headers['retry-after-ms'])).toBeLessThanOrEqual(retryAfterMs);
    }

    // All failing (once the 429s have passed): both tried, 502.
    east.setOutage({ kind: 'failing', status: 500 });
    west.setOutage({ kind: 'failing', status: 503 });
    await sleep(Math.max(0, throttledBy + retryAfterMs + 100 - Date.now()));
    const failed = await refusal(chat());
    expect(failed.status).toBe(502);
    expect(failed.code).toBe('WICKET_ERR_BACKEND_FAILED');
    expect(failed.message).toMatch(/2 failing/);
    expect(east.answered).toEqual({ 429: 1, 500: 1 });
    expect(west.answered).toEqual({ 429: 1, 503: 1 });

    // All unreachable: nothing listens any more (one failure short of opening the breakers).
    await Promise.all([east.close(), west.close()]);
    const unreachable = await refusal(chat());
    expect(unreachable.status).toBe(502);
    expect(unreachable.code).toBe('WICKET_ERR_BACKEND_UNREACHABLE');
    expect(unreachable.message).toMatch(/2 unreachable/);

    const rows = await ledgerRows(portal.outletHome, 4);
    expect(rows.map((r) => [r.status, r.code, r.backend])).toEqual([
      [503, 'WICKET_ERR_BACKENDS_COOLING', null],
      [503, 'WICKET_ERR_BACKENDS_COOLING', null],
      [502, 'WICKET_ERR_BACKEND_FAILED', null],
      [502, 'WICKET_ERR_BACKEND_UNREACHABLE', null],
    ]);
  });
});

describe('a stream the backend cuts mid-answer', () => {
  let first: RunningStandin;
  let second: RunningStandin;
  let portal: GatewayPortal;

  beforeAll(async () => {
    first = await standin('first');
    second = await standin('second');
    portal = await startGatewayPortal({
      gateway: { kind: 'azure-openai', backends: [backend('first', first.url, 0), backend('second', second.url, 1)] },
      callers: [['team=streams']],
    });
  }, 60_000);

  it('keeps what the app already got, is not retried on another backend, and fails the app\'s stream', async () => {
    const client = portal.callers[0]!.client({ deployment: 'gpt-4o-mini' });
    const comparable = (chunk: object): unknown => ({ ...chunk, id: undefined, created: undefined });

    // The whole stream, for reference.
    const whole: unknown[] = [];
    for await (const chunk of await client.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true })) whole.push(comparable(chunk));
    expect(whole.length).toBeGreaterThan(6);

    // The frames as the backend sends them to the gateway (which asks for usage), to cut inside the 5th.
    const direct = await fetch(`${first.url}/openai/deployments/gpt-4o-mini/chat/completions?api-version=${API_VERSION}`, {
      method: 'POST',
      headers: { 'api-key': KEY, 'content-type': 'application/json' },
      body: JSON.stringify({ messages, stream: true, stream_options: { include_usage: true } }),
    });
    const frames = (await direct.text()).split(/(?<=\n\n)/);
    const kept = 4;
    const cutAfter = frames.slice(0, kept).reduce((n, f) => n + Buffer.byteLength(f), 0) + Math.floor(Buffer.byteLength(frames[kept]!) / 2);
    const firstBefore = first.requests.length;
    const secondBefore = second.requests.length;

    const got: unknown[] = [];
    let thrown: unknown;
    try {
      const stream = await client.chat.completions.create(
        { model: 'gpt-4o-mini', messages, stream: true },
        { headers: { 'x-standin-abort-after-bytes': String(cutAfter) } },
      );
      for await (const chunk of stream) got.push(comparable(chunk));
    } catch (err) {
      thrown = err;
    }
    // The stream did not end cleanly …
    expect(thrown).toBeInstanceOf(Error);
    expect((thrown as Error).message).toMatch(/ECONNRESET|terminated|premature|aborted/i); // a reset, not an HTTP answer
    // … and every event that arrived whole is there, intact and in order (the half one is not).
    expect(got).toEqual(whole.slice(0, kept));

    // Once the request's ledger row is written it is over: the second backend never saw it.
    const rows = await ledgerRows(portal.outletHome, 2);
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatchObject({ status: 200, code: null, backend: 'first', stream: true });
    expect(rows[1]).toMatchObject({ code: 'WICKET_ERR_BACKEND_FAILED', backend: 'first', stream: true, operation: 'chat' });
    expect(first.requests.length - firstBefore).toBe(1);
    expect(first.requests.at(-1)!.headers['x-standin-abort-after-bytes']).toBe(String(cutAfter));
    expect(second.requests.length - secondBefore).toBe(0);

    // A cut answer is no breaker failure: the next request still goes to the first backend.
    const { response } = await client.chat.completions.create({ model: 'gpt-4o-mini', messages }).withResponse();
    expect(response.headers.get('x-ms-region')).toBe('first');
    const status = await backendStatus(portal);
    expect(status.first!.lastError?.message).toMatch(/broke off mid-body/);
    expect(status.second).toMatchObject({ requests: 0, breaker: { state: 'closed' } });
  });
});
