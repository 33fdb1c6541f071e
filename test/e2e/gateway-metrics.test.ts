import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStandin, type RunningStandin } from '../../examples/azure-openai-standin/index.js';
import { runAgent } from '../../scripts/lib/local-processes.js';
import type { UsageRow } from '../../agent/gateway/usage-row.js';
import { apiKeyGateway, ledgerRows, refusal, startGatewayPortal, stopPortal, type GatewayPortal } from './gateway-fixture.js';

// The gateway's Prometheus metrics, scraped from a real outlet started with
// `agent node start --metrics 127.0.0.1:0`: tokens per identity/model/type agree with the usage
// ledger to the token, requests are counted by the status the app got (a limit refusal included),
// latency and time-to-first-token are histograms, and the backend's breaker state is a gauge.

const BACKEND_KEY = 'backend-key-metrics-0123456789';
const messages = [{ role: 'user' as const, content: 'What is Ockham\'s razor?' }];
let standin: RunningStandin;
let portal: GatewayPortal;
let metricsAddress: string;

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Prometheus text format, the sample lines only (label values here have no escaped quotes). */
function parseSamples(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match === null) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, k, v] of (match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)) labels[k!] = v!;
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

function sum(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((total, s) => total + s.value, 0);
}

async function scrape(): Promise<{ status: number; contentType: string | null; samples: Sample[]; text: string }> {
  const res = await fetch(`http://${metricsAddress}/metrics`, { signal: AbortSignal.timeout(5_000) });
  const text = await res.text();
  return { status: res.status, contentType: res.headers.get('content-type'), samples: parseSamples(text), text };
}

/** A port free on 127.0.0.1 right now (`--metrics` takes no port 0: an operator names the scrape address). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

beforeAll(async () => {
  const port = await freePort();
  standin = await startStandin({ apiKey: BACKEND_KEY, region: 'eastus' });
  portal = await startGatewayPortal({
    gateway: apiKeyGateway(standin.url, BACKEND_KEY, { limits: [{ attribute: 'team', value: 'radiology', requestsPerMinute: 1 }] }),
    callers: [['team=cardiology'], ['team=radiology']],
    outletArgs: ['--metrics', `127.0.0.1:${port}`],
  });
  const status = await runAgent(portal.outletHome.home, ['status', '--json']);
  expect(status.code, status.stderr).toBe(0);
  metricsAddress = (JSON.parse(status.stdout) as { metrics?: string }).metrics!;
  expect(metricsAddress).toBe(`127.0.0.1:${port}`);
}, 60_000);

afterAll(() => stopPortal(standin));

describe('gateway metrics on the agent\'s --metrics address', () => {
  it('tokens per identity, model and type match the ledger; requests by status, a limit refusal included; latency and ttft histograms', async () => {
    const [alice, bob] = portal.callers;
    const chat = alice!.client({ deployment: 'gpt-4o-mini' });
    await chat.chat.completions.create({ model: 'gpt-4o-mini', messages });
    const stream = await chat.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true, stream_options: { include_usage: true } });
    for await (const chunk of stream) void chunk;
    await alice!.client({ deployment: 'text-embedding-3-small' }).embeddings.create({ model: 'text-embedding-3-small', input: ['one two three'] });
    const bobChat = bob!.client({ deployment: 'gpt-4o-mini' });
    await bobChat.chat.completions.create({ model: 'gpt-4o-mini', messages });
    const refused = await refusal(bobChat.chat.completions.create({ model: 'gpt-4o-mini', messages }));
    expect(refused.status).toBe(429);
    expect(refused.code).toBe('WICKET_ERR_GATEWAY_RATE_LIMITED');

    const rows = await ledgerRows(portal.outletHome, 5);
    expect(rows).toHaveLength(5);
    const { status, contentType, samples } = await scrape();
    expect(status).toBe(200);
    expect(contentType).toMatch(/^text\/plain; version=0\.0\.4/);

    // Tokens: every (identity, model, type) of the ledger, to the token, and nothing else.
    const expected = new Map<string, number>();
    const add = (row: UsageRow, type: string, n: number | null) => {
      if (n === null) return;
      const key = JSON.stringify({ outlet: 'openai', identity: row.identity, model: row.model ?? 'none', type });
      expected.set(key, (expected.get(key) ?? 0) + n);
    };
    for (const row of rows) {
      add(row, 'prompt', row.promptTokens);
      add(row, 'completion', row.completionTokens);
    }
    const tokenSamples = samples.filter((s) => s.name === 'wicket_gateway_tokens_total');
    const actual = new Map(tokenSamples.map((s) => [JSON.stringify({ outlet: s.labels.outlet, identity: s.labels.identity, model: s.labels.model, type: s.labels.type }), s.value]));
    expect(actual).toEqual(expected);
    expect(sum(samples, 'wicket_gateway_tokens_total', { identity: alice!.home.identifier, type: 'prompt' })).toBeGreaterThan(0);
    expect(sum(samples, 'wicket_gateway_tokens_total', { identity: bob!.home.identifier, type: 'completion' })).toBe(rows.find((r) => r.identity === bob!.home.identifier)!.completionTokens);
    // The embeddings model is its own label value.
    expect(tokenSamples.some((s) => s.labels.model === rows[2]!.model && s.labels.type === 'prompt')).toBe(true);

    // Requests by operation and status, as the ledger has them.
    for (const row of rows) {
      const count = rows.filter((r) => r.operation === row.operation && r.status === row.status).length;
      expect(sum(samples, 'wicket_gateway_requests_total', { outlet: 'openai', operation: row.operation, status: String(row.status) }), `${row.operation} ${row.status}`).toBe(count);
    }
    expect(sum(samples, 'wicket_gateway_requests_total', { status: '429' })).toBe(1);
    expect(sum(samples, 'wicket_gateway_requests_total')).toBe(rows.length);
    expect(sum(samples, 'wicket_gateway_limit_refusals_total', { code: 'WICKET_ERR_GATEWAY_RATE_LIMITED' })).toBe(1);

    // Histograms: one latency observation per request; ttft for the answered ones that had one.
    expect(sum(samples, 'wicket_gateway_request_seconds_count')).toBe(rows.length);
    expect(sum(samples, 'wicket_gateway_request_seconds_bucket', { operation: 'chat', le: '+Inf' })).toBe(rows.filter((r) => r.operation === 'chat').length);
    expect(sum(samples, 'wicket_gateway_request_seconds_sum')).toBeGreaterThan(0);
    const withTtft = rows.filter((r) => r.ttftMs !== null);
    expect(withTtft.length).toBeGreaterThanOrEqual(1);
    expect(sum(samples, 'wicket_gateway_time_to_first_token_seconds_count')).toBe(withTtft.length);
    expect(sum(samples, 'wicket_gateway_time_to_first_token_seconds_bucket', { le: '+Inf' })).toBe(withTtft.length);

    // The backend's breaker: closed, and only closed.
    expect(sum(samples, 'wicket_gateway_backend_state', { outlet: 'openai', backend: 'eastus', state: 'closed' })).toBe(1);
    expect(sum(samples, 'wicket_gateway_backend_state', { backend: 'eastus' })).toBe(1);
  });

  it('the backend state gauge follows the breaker at scrape time, without anyone running `agent status`', async () => {
    const [alice] = portal.callers;
    standin.setOutage({ kind: 'rate-limited', retryAfterMs: 60_000 });
    try {
      const refused = await refusal(alice!.client({ deployment: 'gpt-4o-mini' }).chat.completions.create({ model: 'gpt-4o-mini', messages }));
      expect(refused.status).toBe(503);
      expect(refused.code).toBe('WICKET_ERR_BACKENDS_COOLING');
    } finally {
      standin.setOutage({ kind: 'none' });
    }
    const { samples } = await scrape();
    expect(sum(samples, 'wicket_gateway_backend_state', { backend: 'eastus', state: 'cooling' })).toBe(1);
    expect(sum(samples, 'wicket_gateway_backend_state', { backend: 'eastus', state: 'closed' })).toBe(0);
  });

  it('GET /healthz is 200; any other path is 404; other methods 405', async () => {
    const health = await fetch(`http://${metricsAddress}/healthz`, { signal: AbortSignal.timeout(5_000) });
    expect(health.status).toBe(200);
    expect(await health.text()).toBe('ok\n');
    const unknown = await fetch(`http://${metricsAddress}/nope`, { signal: AbortSignal.timeout(5_000) });
    expect(unknown.status).toBe(404);
    await unknown.text();
    const post = await fetch(`http://${metricsAddress}/metrics`, { method: 'POST', body: 'x', signal: AbortSignal.timeout(5_000) });
    expect(post.status).toBe(405);
    await post.text();
  });
});
