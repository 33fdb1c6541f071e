import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBackendCredential } from '../../../agent/gateway/backend-credential.js';
import { BackendPool } from '../../../agent/gateway/backend-pool.js';
import { deploymentPolicies } from '../../../agent/gateway/deployment-policies.js';
import { validateGatewaySpec } from '../../../agent/gateway/gateway-spec.js';
import { startStandin, type RunningStandin } from '../../../examples/azure-openai-standin/index.js';
import { identifierFor } from '../../helpers/identifier.js';
import { gatewayHarness, silent, type GatewayHarness } from './gateway-harness.js';

// A backend may name a deployment its own way (`deployments: {"gpt-4o": "gpt-4o-prod"}`). The
// gateway maps the caller's name to the backend's without regard to case, and a reserved
// deployment's policy also holds for the backend's own name: asking for `gpt-4o-prod` directly is
// no way around the policy of `gpt-4o`.

const KEY = 'names-backend-key-0123456789';
const researcher = { identifier: identifierFor(1), attributes: { team: 'research' } };
const clinician = { identifier: identifierFor(2), attributes: { team: 'cardiology' } };
let standin: RunningStandin;
let harness: GatewayHarness;

async function chat(base: string, deployment: string): Promise<number> {
  const res = await fetch(`${base}/openai/deployments/${deployment}/chat/completions?api-version=2024-10-21`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] }),
  });
  await res.arrayBuffer();
  return res.status;
}

beforeAll(async () => {
  standin = await startStandin({ apiKey: KEY, deployments: { 'gpt-4o-prod': 'gpt-4o-2024-08-06' } });
  harness = gatewayHarness(() => []);
});

afterAll(async () => {
  await harness?.close();
  await standin?.close();
});

describe('backend deployment names', () => {
  it('maps the caller\'s name, in any case, to the backend\'s, and the reserved deployment\'s policy holds for both names', async () => {
    const spec = validateGatewaySpec({
      kind: 'azure-openai',
      backends: [{ name: 'b', url: standin.url, auth: { kind: 'api-key', file: harness.keyFile(KEY) }, deployments: { 'gpt-4o': 'gpt-4o-prod' } }],
      deployments: { 'gpt-4o': 'team=research' },
    }, 'gateway', 'WICKET_ERR_CONFIG');
    const policies = deploymentPolicies(spec);
    const pool = () => new BackendPool(spec.backends, (b) => createBackendCredential(b.auth, { logger: silent }));
    const asResearcher = await harness.serveAs(researcher, { deploymentPolicies: policies, pool: pool() });
    expect(await chat(asResearcher, 'gpt-4o')).toBe(200);
    expect(await chat(asResearcher, 'GPT-4o')).toBe(200);
    expect(standin.requests.at(-1)?.path).toMatch(/^\/openai\/deployments\/gpt-4o-prod\//);
    const asClinician = await harness.serveAs(clinician, { deploymentPolicies: policies, pool: pool() });
    expect(await chat(asClinician, 'gpt-4o')).toBe(403);
    expect(await chat(asClinician, 'gpt-4o-prod')).toBe(403);
    expect(await chat(asClinician, 'GPT-4O-PROD')).toBe(403);
  });
});
