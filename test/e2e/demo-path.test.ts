import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { askQuestion, describeFailure } from '../../examples/demo-client.js';
import { OCKHAMS_RAZOR_ANSWER, startStandin, type RunningStandin } from '../../examples/azure-openai-standin/index.js';
import { makeTestCa } from '../../examples/test-ca.js';
import { Secret } from '../../protocol/secret.js';
import { stopAll, tempDir } from '../../scripts/lib/local-processes.js';
import { revoke, startPortal, type Portal } from './portal-fixture.js';

// The demo path as a test: the official `openai` SDK (AzureOpenAI) talks only to the inlet's
// localhost address; the outlet opens TLS to the Azure OpenAI stand-in, verified against the
// demo's test CA under the stand-in's private DNS name; then the admin revokes the inlet.

const SERVERNAME = 'aoai-standin.internal';
const apiKey = new Secret('e2e-demo-key-0123456789');
let standin: RunningStandin;
let portal: Portal;
let endpoint: string;

beforeAll(async () => {
  const ca = await makeTestCa(join(tempDir('wicket-e2e-ca-'), 'ca'), { serverNames: [SERVERNAME] });
  standin = await startStandin({ apiKey, host: '127.0.0.1', tls: { cert: readFileSync(ca.certPath), key: readFileSync(ca.keyPath) } });
  portal = await startPortal({ target: `127.0.0.1:${standin.port}`, relayName: 'openai', tls: { ca: ca.caCertPath, servername: SERVERNAME } });
  endpoint = `http://${portal.inletAddress}`;
});

afterAll(async () => {
  await stopAll();
  await standin?.close();
});

describe('demo path: official openai SDK through the portal', () => {
  it('answers a chat completion through the inlet on localhost', async () => {
    const answer = await askQuestion({ endpoint, apiKey, deployment: 'gpt-4o-mini' });
    expect(answer.text).toBe(OCKHAMS_RAZOR_ANSWER);
    expect(answer.usage?.total_tokens).toBeGreaterThan(0);
    expect(answer.requestId).toMatch(/[0-9a-f-]{36}/);
  });

  it('streams the same answer chunk by chunk', async () => {
    const pieces: string[] = [];
    const answer = await askQuestion({ endpoint, apiKey, deployment: 'gpt-4o-mini', stream: true, onText: (t) => pieces.push(t) });
    expect(answer.streamed).toBe(true);
    expect(pieces.length).toBeGreaterThan(1);
    expect(pieces.join('')).toBe(OCKHAMS_RAZOR_ANSWER);
  });

  it('passes Azure errors through unchanged (unknown deployment is DeploymentNotFound)', async () => {
    await expect(askQuestion({ endpoint, apiKey, deployment: 'no-such-deployment' })).rejects.toMatchObject({ status: 404, code: 'DeploymentNotFound' });
  });

  it("after the admin revokes the inlet's identity the next call fails with a clear message", async () => {
    await revoke(portal, portal.inletHome.identifier);
    const failure = await askQuestion({ endpoint, apiKey, deployment: 'gpt-4o-mini', timeoutMs: 10_000 }).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(failure, 'a call through a revoked inlet must fail').toBeDefined();
    const message = describeFailure(failure);
    console.log(`after revoke the app sees: ${message}`);
    expect(message).toMatch(/portal is closed|reset|refused/i);
  });
});
