import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStandin, type RunningStandin } from '../../examples/azure-openai-standin/index.js';
import { runAgent } from '../../scripts/lib/local-processes.js';
import { apiKeyGateway, CALLER_PLACEHOLDER_KEY, ledgerRows, startGatewayPortal, stopPortal, type GatewayPortal } from './gateway-fixture.js';

// The gateway as AI Corp runs it: the official openai SDK behind two callers' inlets, an outlet in
// gateway mode holding the only backend key (in a 0600 file). Usage is recorded per caller
// identity, exactly, streams included, and the callers' own keys never reach the backend.

const BACKEND_KEY = 'backend-key-only-the-outlet-holds-0123';
let standin: RunningStandin;
let portal: GatewayPortal;
const messages = [{ role: 'user' as const, content: 'What is Ockham\'s razor?' }];

beforeAll(async () => {
  standin = await startStandin({ apiKey: BACKEND_KEY, region: 'eastus' });
  portal = await startGatewayPortal({
    gateway: apiKeyGateway(standin.url, BACKEND_KEY),
    callers: [['team=cardiology'], ['team=radiology']],
  });
}, 60_000);

afterAll(() => stopPortal(standin));

describe('gateway usage ledger: exact per identity, streams included', () => {
  it('records chat (plain and streamed) and embeddings under the caller identity, with the backend key only', async () => {
    const [alice, bob] = portal.callers;
    const aliceClient = alice!.client({ deployment: 'gpt-4o-mini' });
    const plain = await aliceClient.chat.completions.create({ model: 'gpt-4o-mini', messages });
    expect(plain.usage?.total_tokens).toBeGreaterThan(0);

    // Streamed without include_usage: the app sees no usage chunk and no usage field…
    const stream = await aliceClient.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true });
    const chunks: Record<string, unknown>[] = [];
    let text = '';
    for await (const chunk of stream) {
      chunks.push(chunk as unknown as Record<string, unknown>);
      text += chunk.choices[0]?.delta?.content ?? '';
    }
    expect(text).toBe(plain.choices[0]?.message.content);
    expect(chunks.every((c) => !('usage' in c))).toBe(true);
    // Azure's first chunk (prompt filter results) has empty choices too; the usage chunk is the last one.
    expect(chunks.at(-1)?.choices).not.toEqual([]);

    // …and asking for it gives exactly what the backend reports.
    const asked = await aliceClient.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true, stream_options: { include_usage: true } });
    let askedUsage: { total_tokens: number } | undefined;
    for await (const chunk of asked) if (chunk.usage) askedUsage = chunk.usage;
    expect(askedUsage?.total_tokens).toBe(plain.usage?.total_tokens);

    const embedding = await bob!.client({ deployment: 'text-embedding-3-small' }).embeddings.create({ model: 'text-embedding-3-small', input: ['one two three', 'four five'] });
    expect(embedding.data).toHaveLength(2);

    const rows = await ledgerRows(portal.outletHome, 4);
    expect(rows).toHaveLength(4);
    const [plainRow, streamRow, askedRow, embeddingRow] = rows;
    for (const row of [plainRow, streamRow, askedRow]) {
      expect(row).toMatchObject({
        identity: alice!.home.identifier, attributes: { 'openai-inlet': 'true', team: 'cardiology' }, deployment: 'gpt-4o-mini', operation: 'chat', status: 200,
        code: null, backend: 'eastus', outlet: 'openai',
        promptTokens: plain.usage?.prompt_tokens, completionTokens: plain.usage?.completion_tokens, totalTokens: plain.usage?.total_tokens,
      });
      expect(row!.model).toBe(plain.model);
      expect(row!.requestId).toMatch(/[0-9a-f-]{36}/);
      expect(row!.latencyMs).toBeGreaterThanOrEqual(0);
    }
    expect(streamRow!.stream).toBe(true);
    expect(streamRow!.ttftMs).not.toBeNull();
    expect(embeddingRow).toMatchObject({
      identity: bob!.home.identifier, operation: 'embeddings', deployment: 'text-embedding-3-small', status: 200,
      promptTokens: embedding.usage.prompt_tokens, totalTokens: embedding.usage.total_tokens,
    });

    // The backend saw only the outlet's key: never the callers' key, never an Authorization.
    const seen = standin.requests.slice(-4);
    expect(seen).toHaveLength(4);
    for (const request of seen) {
      expect(request.headers['api-key']).toBe(BACKEND_KEY);
      expect(request.headers.authorization).toBeUndefined();
      expect(JSON.stringify(request.headers)).not.toContain(CALLER_PLACEHOLDER_KEY);
    }
    // The gateway asked for usage on the stream the app did not ask for it on.
    expect(JSON.parse(seen[1]!.bodyBytes.toString('utf8')).stream_options).toEqual({ include_usage: true });
  });

  it('`agent usage` sums the ledger per identity, per attribute and per model', async () => {
    const [alice, bob] = portal.callers;
    const rows = await ledgerRows(portal.outletHome, 4);
    const aliceTokens = rows.filter((r) => r.identity === alice!.home.identifier).reduce((sum, r) => sum + (r.totalTokens ?? 0), 0);
    const result = await runAgent(portal.outletHome.home, ['usage', '--by', 'identity', '--json']);
    expect(result.code, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout) as { rows: { key: string; requests: number; totalTokens: number }[] };
    expect(report.rows.find((r) => r.key === alice!.home.identifier)).toMatchObject({ requests: 3, totalTokens: aliceTokens });
    expect(report.rows.find((r) => r.key === bob!.home.identifier)).toMatchObject({ requests: 1 });

    const byTeam = await runAgent(portal.outletHome.home, ['usage', '--by', 'attribute:team', '--csv']);
    expect(byTeam.code, byTeam.stderr).toBe(0);
    expect(byTeam.stdout).toMatch(/cardiology/);
    expect(byTeam.stdout).toMatch(/radiology/);
    const table = await runAgent(portal.outletHome.home, ['usage', '--by', 'model']);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(/gpt-4o-mini/);
  });

  it('shows the backend in `agent status`', async () => {
    const result = await runAgent(portal.outletHome.home, ['status', '--json']);
    expect(result.code, result.stderr).toBe(0);
    const status = JSON.parse(result.stdout) as { outlets: { gateway?: { backends: { name: string; breaker: { state: string }; credential: { kind: string } }[] } }[] };
    expect(status.outlets[0]?.gateway?.backends[0]).toMatchObject({ name: 'eastus', breaker: { state: 'closed' }, credential: { kind: 'api-key' } });
    const human = await runAgent(portal.outletHome.home, ['status']);
    expect(human.stdout).toMatch(/backend eastus .* closed .*credential api-key ready/);
  });
});
