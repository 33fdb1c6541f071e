import { chmodSync } from 'node:fs';
import { AzureOpenAI } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStandin, type RunningStandin } from '../../examples/azure-openai-standin/index.js';
import { enrollAgent, runAgent, startNodeProcess, startRelayProcess, stopAll, type AgentHome } from '../../scripts/lib/local-processes.js';
import { API_VERSION, CALLER_PLACEHOLDER_KEY, writeKeyFile } from './gateway-fixture.js';

// The one-line way in: `agent outlet create --gateway azure-openai --to HOST:PORT --api-key-file F`
// on a running node makes a gateway outlet with one backend, and the official SDK is served
// through it with a placeholder key. Mistakes in those flags fail before the node is asked.

const BACKEND_KEY = 'cli-backend-key-0123456789';
let standin: RunningStandin;
let outletHome: AgentHome;
let inletAddress: string;

beforeAll(async () => {
  standin = await startStandin({ apiKey: BACKEND_KEY });
  const relay = await startRelayProcess({});
  outletHome = await enrollAgent(relay, { attributes: ['openai-outlet'], relayNames: ['openai'] });
  const inletHome = await enrollAgent(relay, { attributes: ['openai-inlet'] });
  await startNodeProcess(outletHome);
  const inlet = await startNodeProcess(inletHome, { inlets: [{ name: 'openai', from: '127.0.0.1:0', via: 'openai', allow: 'openai-outlet' }] });
  inletAddress = inlet.inlets.openai!;
}, 60_000);

afterAll(async () => {
  await stopAll();
  await standin?.close();
});

describe('agent outlet create --gateway azure-openai', () => {
  it('refuses bad gateway flags before asking the node', async () => {
    const bad = await runAgent(outletHome.home, ['outlet', 'create', '--gateway', 'litellm', '--to', `127.0.0.1:${standin.port}`, '--relay', 'openai', '--allow', 'openai-inlet']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/WICKET_ERR_ARGUMENT.*--gateway "litellm": the one gateway is azure-openai/);
    const keyWithoutGateway = await runAgent(outletHome.home, ['outlet', 'create', '--api-key-file', '/nonexistent', '--to', `127.0.0.1:${standin.port}`, '--relay', 'openai', '--allow', 'openai-inlet']);
    expect(keyWithoutGateway.stderr).toMatch(/--api-key-file needs --gateway azure-openai/);
  });

  it('refuses an api-key file others can read, naming the fix', async () => {
    const file = writeKeyFile(BACKEND_KEY);
    chmodSync(file, 0o644);
    const result = await runAgent(outletHome.home, ['outlet', 'create', '--gateway', 'azure-openai', '--to', `127.0.0.1:${standin.port}`, '--api-key-file', file, '--relay', 'openai', '--allow', 'openai-inlet']);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/WICKET_ERR_CONFIG.*chmod 600/);
  });

  it('creates a gateway outlet whose backend key only it holds, and serves the SDK through it', async () => {
    const created = await runAgent(outletHome.home, ['outlet', 'create', '--gateway', 'azure-openai', '--to', `127.0.0.1:${standin.port}`, '--api-key-file', writeKeyFile(BACKEND_KEY), '--relay', 'openai', '--allow', 'openai-inlet', '--json']);
    expect(created.code, created.stderr).toBe(0);
    expect(JSON.parse(created.stdout)).toMatchObject({ name: 'openai', relay: 'openai' });
    const client = new AzureOpenAI({ endpoint: `http://${inletAddress}`, apiKey: CALLER_PLACEHOLDER_KEY, apiVersion: API_VERSION, deployment: 'gpt-4o-mini', maxRetries: 0 });
    const answer = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello' }] });
    expect(answer.choices[0]?.message.content).toBeTruthy();
    expect(standin.requests.at(-1)?.headers['api-key']).toBe(BACKEND_KEY);
    const list = await runAgent(outletHome.home, ['outlet', 'list']);
    expect(list.stdout).toMatch(/openai\s+openai\s+gateway: primary/);
  });
});
