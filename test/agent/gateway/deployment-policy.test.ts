import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBackendCredential } from '../../../agent/gateway/backend-credential.js';
import { BackendPool } from '../../../agent/gateway/backend-pool.js';
import { GatewayLimits } from '../../../agent/gateway/gateway-limits.js';
import { serveGatewayRequest, type GatewayParts } from '../../../agent/gateway/gateway-request.js';
import { UsageLedger } from '../../../agent/gateway/usage-ledger.js';
import { usageTotals } from '../../../agent/gateway/usage-report.js';
import { startStandin, type RunningStandin } from '../../../examples/azure-openai-standin/index.js';
import { parsePolicy, type Policy } from '../../../protocol/policy.js';
import { identifierFor } from '../../helpers/identifier.js';

// Deployment policies (gateway.deployments): a deployment listed there serves only callers whose
// identity and attributes satisfy its policy — whichever way the request names it (the path, the
// body's model, any letter case) — and a request whose deployment cannot be read is refused while
// any deployment is reserved. The gateway's request flow runs in-process behind a plain node:http
// server, with the caller fixed per server, in front of the Azure OpenAI stand-in.

const logger = pino({ level: 'silent' });
const KEY = 'policy-backend-key-0123456789';
const researcher = { identifier: identifierFor(1), attributes: { team: 'research' } };
const clinician = { identifier: identifierFor(2), attributes: { team: 'cardiology' } };
let standin: RunningStandin;
let dir: string;
let ledger: UsageLedger;
let limits: GatewayLimits;
let pool: BackendPool;
const servers: Server[] = [];

async function serveAs(caller: { identifier: string; attributes: Record<string, string> }, policies: ReadonlyMap<string, Policy>): Promise<string> {
  const parts: GatewayParts = { outlet: 'openai', pool, limits, deploymentPolicies: policies, ledger, contentLog: undefined, metrics: undefined, logger };
  const server = createServer((req, res) => void serveGatewayRequest(parts, req, res, caller, new AbortController().signal));
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function post(base: string, path: string, body: string | Record<string, unknown>, contentType = 'application/json'): Promise<{ status: number; code: string | undefined }> {
  const res = await fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': contentType, 'api-key': 'placeholder' }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const json = (await res.json()) as { error?: { code?: string } };
  return { status: res.status, code: json.error?.code };
}

const reserved = new Map([['gpt-4o', parsePolicy('team=research')]]);
const chat = { messages: [{ role: 'user', content: 'hi' }] };

beforeAll(async () => {
  standin = await startStandin({ apiKey: KEY });
  dir = mkdtempSync(join(tmpdir(), 'wicket-policy-'));
  const keyFile = join(dir, 'key');
  writeFileSync(keyFile, KEY, { mode: 0o600 });
  ledger = UsageLedger.open(join(dir, 'usage.db'), { retentionDays: 1, logger, flushMs: 10 });
  limits = GatewayLimits.open(join(dir, 'limits.db'), []);
  pool = new BackendPool([{ name: 'b', url: standin.url, priority: 0, weight: 1, auth: { kind: 'api-key', file: keyFile } }], (b) => createBackendCredential(b.auth, { logger }));
});

afterAll(async () => {
  for (const server of servers) server.close();
  await pool?.close();
  limits?.close();
  ledger?.close();
  await standin?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('gateway deployment policies', () => {
  it('serves a reserved deployment to a caller its policy admits, by path and by body model', async () => {
    const base = await serveAs(researcher, reserved);
    expect((await post(base, '/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21', chat)).status).toBe(200);
    expect((await post(base, '/openai/v1/chat/completions', { model: 'gpt-4o', ...chat })).status).toBe(200);
  });

  it('refuses it to anyone else with 403 WICKET_ERR_GATEWAY_DENIED, whatever the letter case or path form', async () => {
    const base = await serveAs(clinician, reserved);
    const before = standin.requests.length;
    for (const path of ['/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21', '/openai/deployments/GPT-4o/chat/completions?api-version=2024-10-21', '/openai/deployments/x/../gpt-4o/chat/completions?api-version=2024-10-21']) {
      expect(await post(base, path, chat), path).toEqual({ status: 403, code: 'WICKET_ERR_GATEWAY_DENIED' });
    }
    expect(await post(base, '/openai/v1/chat/completions', { model: 'GPT-4O', ...chat })).toEqual({ status: 403, code: 'WICKET_ERR_GATEWAY_DENIED' });
    // Not one of them reached the backend.
    expect(standin.requests.length).toBe(before);
    // Unreserved deployments are the outlet's allow alone.
    expect((await post(base, '/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21', chat)).status).toBe(200);
  });

  it('refuses a request whose deployment cannot be read while any deployment is reserved', async () => {
    const base = await serveAs(clinician, reserved);
    expect(await post(base, '/openai/v1/audio/transcriptions', '--boundary\r\nmodel: gpt-4o\r\n', 'multipart/form-data; boundary=boundary')).toEqual({ status: 403, code: 'WICKET_ERR_GATEWAY_DENIED' });
    // Without reserved deployments the backend answers it itself.
    const open = await serveAs(clinician, new Map());
    expect((await post(open, '/openai/v1/audio/transcriptions', '--boundary\r\nmodel: gpt-4o\r\n', 'multipart/form-data; boundary=boundary')).status).not.toBe(403);
  });

  it('records every refusal in the ledger under the caller', () => {
    ledger.flush();
    const rows = usageTotals(join(dir, 'usage.db'), { by: 'identity' });
    const clinicianRow = rows.find((r) => r.key === clinician.identifier);
    expect(clinicianRow?.errors).toBeGreaterThanOrEqual(5);
  });
});
