import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { usageTotals } from '../../../agent/gateway/usage-report.js';
import { startStandin, type RunningStandin } from '../../../examples/azure-openai-standin/index.js';
import { parsePolicy } from '../../../protocol/policy.js';
import { identifierFor } from '../../helpers/identifier.js';
import { gatewayHarness, type GatewayHarness } from './gateway-harness.js';
import { join } from 'node:path';

// Deployment policies (gateway.deployments): a deployment listed there serves only callers whose
// identity and attributes satisfy its policy — whichever way the request names it (the path, the
// body's model, any letter case, a backend's own name for it) — and a request whose deployment
// cannot be read is refused while any deployment is reserved.

const KEY = 'policy-backend-key-0123456789';
const researcher = { identifier: identifierFor(1), attributes: { team: 'research' } };
const clinician = { identifier: identifierFor(2), attributes: { team: 'cardiology' } };
let standin: RunningStandin;
let harness: GatewayHarness;

async function post(base: string, path: string, body: string | Record<string, unknown>, contentType = 'application/json'): Promise<{ status: number; code: string | undefined }> {
  const res = await fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': contentType, 'api-key': 'placeholder' }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const json = (await res.json()) as { error?: { code?: string } };
  return { status: res.status, code: json.error?.code };
}

const reserved = new Map([['gpt-4o', parsePolicy('team=research')]]);
const chat = { messages: [{ role: 'user', content: 'hi' }] };

beforeAll(async () => {
  standin = await startStandin({ apiKey: KEY });
  harness = gatewayHarness(() => [{ name: 'b', url: standin.url, priority: 0, weight: 1, auth: { kind: 'api-key', file: harness.keyFile(KEY) } }]);
});

afterAll(async () => {
  await harness?.close();
  await standin?.close();
});

describe('gateway deployment policies', () => {
  it('serves a reserved deployment to a caller its policy admits, by path and by body model', async () => {
    const base = await harness.serveAs(researcher, { deploymentPolicies: reserved });
    expect((await post(base, '/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21', chat)).status).toBe(200);
    expect((await post(base, '/openai/v1/chat/completions', { model: 'gpt-4o', ...chat })).status).toBe(200);
  });

  it('refuses it to anyone else with 403 WICKET_ERR_GATEWAY_DENIED, whatever the letter case or path form', async () => {
    const base = await harness.serveAs(clinician, { deploymentPolicies: reserved });
    const before = standin.requests.length;
    for (const path of ['/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21', '/openai/deployments/GPT-4o/chat/completions?api-version=2024-10-21', '/openai/deployments/x/../gpt-4o/chat/completions?api-version=2024-10-21', '/openai/deployments/gpt-4o/%63hat/completions?api-version=2024-10-21']) {
      expect(await post(base, path, chat), path).toEqual({ status: 403, code: 'WICKET_ERR_GATEWAY_DENIED' });
    }
    expect(await post(base, '/openai/v1/chat/completions', { model: 'GPT-4O', ...chat })).toEqual({ status: 403, code: 'WICKET_ERR_GATEWAY_DENIED' });
    // Not one of them reached the backend.
    expect(standin.requests.length).toBe(before);
    // Unreserved deployments are the outlet's allow alone.
    expect((await post(base, '/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21', chat)).status).toBe(200);
  });

  it('refuses a request whose deployment cannot be read while any deployment is reserved', async () => {
    const base = await harness.serveAs(clinician, { deploymentPolicies: reserved });
    expect(await post(base, '/openai/v1/audio/transcriptions', '--boundary\r\nmodel: gpt-4o\r\n', 'multipart/form-data; boundary=boundary')).toEqual({ status: 403, code: 'WICKET_ERR_GATEWAY_DENIED' });
    // Without reserved deployments the backend answers it itself.
    const open = await harness.serveAs(clinician);
    expect((await post(open, '/openai/v1/audio/transcriptions', '--boundary\r\nmodel: gpt-4o\r\n', 'multipart/form-data; boundary=boundary')).status).not.toBe(403);
  });

  it('records every refusal in the ledger under the caller', () => {
    harness.ledger.flush();
    const rows = usageTotals(join(harness.dir, 'usage.db'), { by: 'identity' });
    expect(rows.find((r) => r.key === clinician.identifier)?.errors).toBeGreaterThanOrEqual(6);
  });
});
