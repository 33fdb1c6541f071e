import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ByteBudget } from '../../../agent/gateway/byte-budget.js';
import { createBackendCredential } from '../../../agent/gateway/backend-credential.js';
import { BackendPool } from '../../../agent/gateway/backend-pool.js';
import { GatewayLimits } from '../../../agent/gateway/gateway-limits.js';
import { usageTotals } from '../../../agent/gateway/usage-report.js';
import { startStandin, type RunningStandin } from '../../../examples/azure-openai-standin/index.js';
import { identifierFor } from '../../helpers/identifier.js';
import { gatewayHarness, silent, type GatewayHarness } from './gateway-harness.js';

// Decisions of the gateway's request flow that no caller should be able to turn to its advantage
// or that would mislead an app: an app hanging up mid-stream still pays; a backend refusing the
// OUTLET's credential is failed over and reported as the outlet's problem; bodies are held within
// a memory budget; compressed bodies are refused (they could not be counted); streamed usage is
// asked for only where Azure accepts the option.

const KEY = 'flow-backend-key-0123456789';
const caller = { identifier: identifierFor(7), attributes: { team: 'cardiology' } };
const messages = [{ role: 'user', content: 'What is Ockham\'s razor?' }];
const CHAT = '/openai/deployments/gpt-4o-mini/chat/completions';
let standin: RunningStandin;
let wrongKeyStandin: RunningStandin;
let harness: GatewayHarness;

function post(base: string, path: string, body: unknown, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<Response> {
  return fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body), ...(signal ? { signal } : {}) });
}

async function errorCode(res: Response): Promise<string | undefined> {
  return ((await res.json()) as { error?: { code?: string } }).error?.code;
}

beforeAll(async () => {
  standin = await startStandin({ apiKey: KEY });
  wrongKeyStandin = await startStandin({ apiKey: 'a-key-the-outlet-does-not-hold' });
  harness = gatewayHarness(() => [{ name: 'good', url: standin.url, priority: 0, weight: 1, auth: { kind: 'api-key', file: harness.keyFile(KEY) } }]);
});

afterAll(async () => {
  await harness?.close();
  await standin?.close();
  await wrongKeyStandin?.close();
});

describe('gateway request flow', () => {
  it('an app that hangs up mid-stream is still charged: its tokens were spent', async () => {
    const limits = GatewayLimits.open(join(harness.dir, 'charged.db'), [{ identity: caller.identifier, tokensPerDay: 1_000_000 }]);
    try {
      const base = await harness.serveAs(caller, { limits });
      const abort = new AbortController();
      const res = await post(base, `${CHAT}?api-version=2024-10-21`, { messages, stream: true }, { 'x-standin-chunk-delay-ms': '50' }, abort.signal);
      const reader = res.body!.getReader();
      await reader.read();
      abort.abort();
      await reader.cancel().catch(() => {});
      // The reservation holds the estimate until the gateway settles; settled, it must not be refunded.
      // The row is recorded right after the settle: once it is in the ledger, the charge is final.
      const recorded = (): number => {
        harness.ledger.flush();
        return usageTotals(join(harness.dir, 'usage.db'), { by: 'identity' }).find((r) => r.key === caller.identifier)?.requests ?? 0;
      };
      const settledBy = Date.now() + 5_000;
      while (recorded() === 0 && Date.now() < settledBy) await new Promise((r) => setTimeout(r, 20));
      expect(recorded()).toBe(1);
      expect(limits.usage(caller)[0]!.tokensToday).toBeGreaterThan(0);
    } finally {
      limits.close();
    }
  });

  it('a backend that refuses the outlet\'s credential is failed over, and alone it is a 503 WICKET_ERR_BACKEND_AUTH', async () => {
    const wrong = { name: 'wrong', url: wrongKeyStandin.url, priority: 0, weight: 1, auth: { kind: 'api-key' as const, file: harness.keyFile(KEY) } };
    const good = { name: 'good', url: standin.url, priority: 1, weight: 1, auth: { kind: 'api-key' as const, file: harness.keyFile(KEY) } };
    const pool = (specs: (typeof wrong)[]) => new BackendPool(specs, (b) => createBackendCredential(b.auth, { logger: silent }));
    const both = await harness.serveAs(caller, { pool: pool([wrong, good]) });
    const answered = await post(both, `${CHAT}?api-version=2024-10-21`, { messages });
    expect(answered.status).toBe(200);
    await answered.arrayBuffer();
    const alone = await harness.serveAs(caller, { pool: pool([wrong]) });
    const refused = await post(alone, `${CHAT}?api-version=2024-10-21`, { messages });
    expect(refused.status).toBe(503);
    expect(await errorCode(refused)).toBe('WICKET_ERR_BACKEND_AUTH');
  });

  it('bodies are held within the gateway\'s budget: past it 503 WICKET_ERR_TARGET_BUSY, and the budget is given back', async () => {
    const budget = new ByteBudget(2_000);
    const base = await harness.serveAs(caller, { bodyBudget: budget });
    const big = await post(base, `${CHAT}?api-version=2024-10-21`, { messages: [{ role: 'user', content: 'x'.repeat(5_000) }] });
    expect(big.status).toBe(503);
    expect(await errorCode(big)).toBe('WICKET_ERR_TARGET_BUSY');
    expect(big.headers.get('retry-after')).toBe('1');
    expect(budget.held).toBe(0);
    const small = await post(base, `${CHAT}?api-version=2024-10-21`, { messages });
    expect(small.status).toBe(200);
    await small.arrayBuffer();
    expect(budget.held).toBe(0);
  });

  it('a compressed request body is refused with 415: it could not be counted', async () => {
    const base = await harness.serveAs(caller);
    const res = await post(base, `${CHAT}?api-version=2024-10-21`, { messages }, { 'content-encoding': 'gzip' });
    expect(res.status).toBe(415);
    expect(await errorCode(res)).toBe('WICKET_ERR_HTTP_REQUEST');
  });

  it('asks for streamed usage only where Azure accepts stream_options (api-version 2024-09-01-preview and later, v1)', async () => {
    const base = await harness.serveAs(caller);
    const sentBody = async (version: string): Promise<Record<string, unknown>> => {
      const res = await post(base, `${CHAT}?api-version=${version}`, { messages, stream: true });
      await res.arrayBuffer();
      return JSON.parse(standin.requests.at(-1)!.bodyBytes.toString('utf8')) as Record<string, unknown>;
    };
    expect((await sentBody('2024-06-01')).stream_options).toBeUndefined();
    expect((await sentBody('2024-10-21')).stream_options).toEqual({ include_usage: true });
    expect((await sentBody('2025-01-01-preview')).stream_options).toEqual({ include_usage: true });
  });
});
