import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStandin, type RunningStandin } from '../../examples/azure-openai-standin/index.js';
import { startNodeProcess } from '../../scripts/lib/local-processes.js';
import { apiKeyGateway, ledgerRows, refusal, startGatewayPortal, stopPortal, type GatewayPortal } from './gateway-fixture.js';

// Limits per identity and per attribute value, as the app sees them through the official SDK:
// 429 with retry-after (which the SDK's own retry honours), 403 for a spent quota, separate
// budgets for separate identities, one shared budget for an attribute value.

const BACKEND_KEY = 'backend-key-limits-0123456789';
let standin: RunningStandin;
let portal: GatewayPortal;
const messages = [{ role: 'user' as const, content: 'What is Ockham\'s razor?' }];

beforeAll(async () => {
  standin = await startStandin({ apiKey: BACKEND_KEY });
  // Enrol first, then write the rules naming the identities: a second portal start is not needed
  // because limits are keyed by identifier, which enrolment fixes.
  portal = await startGatewayPortal({
    gateway: apiKeyGateway(standin.url, BACKEND_KEY, { limits: [] }),
    callers: [['team=cardiology'], ['team=oncology'], ['team=radiology'], ['team=radiology']],
  });
  const [alice, bob] = portal.callers;
  // One chat answer from the stand-in costs 66 tokens (measured by gateway-usage.test.ts's exact rows).
  const limits = [
    { identity: alice!.home.identifier, requestsPerMinute: 1 },
    { identity: bob!.home.identifier, tokensPerDay: 100 },
    { attribute: 'team', value: 'radiology', tokensPerMonth: 100 },
  ];
  await portal.outlet.proc.kill('SIGTERM', 5_000);
  portal.outlet = await startNodeProcess(portal.outletHome, {
    outlets: [{ name: 'openai', relay: 'openai', allow: 'openai-inlet', gateway: apiKeyGateway(standin.url, BACKEND_KEY, { limits }) }],
  });
}, 90_000);

afterAll(() => stopPortal(standin));

describe('gateway limits: per identity, per attribute, as Azure answers them', () => {
  it('a spent daily quota is 403 for that identity only', async () => {
    const [alice, bob] = portal.callers;
    const client = bob!.client({ deployment: 'gpt-4o-mini' });
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages });
    const refused = await refusal(client.chat.completions.create({ model: 'gpt-4o-mini', messages }));
    expect(refused.status).toBe(403);
    expect(refused.code).toBe('WICKET_ERR_GATEWAY_QUOTA_EXCEEDED');
    expect(refused.message).toMatch(/quota|per day/i);
    // Another identity's budget is its own.
    const other = await alice!.client({ deployment: 'gpt-4o-mini' }).chat.completions.create({ model: 'gpt-4o-mini', messages });
    expect(other.choices[0]?.message.content).toBeTruthy();
  });

  it('an attribute-wide budget is shared by every identity with that attribute value', async () => {
    const [, , carol, dave] = portal.callers;
    await carol!.client({ deployment: 'gpt-4o-mini' }).chat.completions.create({ model: 'gpt-4o-mini', messages });
    const refused = await refusal(dave!.client({ deployment: 'gpt-4o-mini' }).chat.completions.create({ model: 'gpt-4o-mini', messages }));
    expect(refused.status).toBe(403);
    expect(refused.code).toBe('WICKET_ERR_GATEWAY_QUOTA_EXCEEDED');
    expect(refused.message).toMatch(/team=radiology/);
  });

  it('requests per minute: 429 with retry-after, and the SDK\'s own retry succeeds after the window', async () => {
    const [alice] = portal.callers;
    // alice used her one request per minute in the first test; wait a little so the window's end is < 60 s away.
    await new Promise((r) => setTimeout(r, 2_000));
    const refused = await refusal(alice!.client({ deployment: 'gpt-4o-mini' }).chat.completions.create({ model: 'gpt-4o-mini', messages }));
    expect(refused.status).toBe(429);
    expect(refused.code).toBe('WICKET_ERR_GATEWAY_RATE_LIMITED');
    const retryAfterMs = Number(refused.headers?.['retry-after-ms']);
    expect(Number(refused.headers?.['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(retryAfterMs).toBeGreaterThan(0);
    expect(retryAfterMs).toBeLessThanOrEqual(60_000);
    expect(refused.headers?.['x-ratelimit-remaining-requests']).toBe('0');

    const started = Date.now();
    const retried = await alice!.client({ deployment: 'gpt-4o-mini', maxRetries: 2 }).chat.completions.create({ model: 'gpt-4o-mini', messages }, { timeout: 90_000 });
    expect(retried.choices[0]?.message.content).toBeTruthy();
    // It was let through only once the window had room again.
    expect(Date.now() - started).toBeGreaterThanOrEqual(retryAfterMs - 1_500);

    const rows = await ledgerRows(portal.outletHome, 1);
    const refusals = rows.filter((r) => r.identity === alice!.home.identifier && r.status === 429);
    expect(refusals.length).toBeGreaterThanOrEqual(2);
    expect(refusals.every((r) => r.code === 'WICKET_ERR_GATEWAY_RATE_LIMITED' && r.totalTokens === null)).toBe(true);
  }, 120_000);
});
