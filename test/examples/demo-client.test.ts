// The demo client, run as the demo runs it (a child process, official SDK inside) against the
// stand-in directly over plain HTTP, the way the inlet serves the app; and askQuestion() in-process
// over HTTPS. Every failure must be one clear line and a non-zero exit, never the API key.

import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OCKHAMS_RAZOR_ANSWER, startStandin, type RunningStandin } from '../../examples/azure-openai-standin/index.js';
import { askQuestion, describeFailure } from '../../examples/demo-client.js';
import { TEST_API_KEY, makeTempCa, runTsx, type TempCa } from './fixtures.js';

const CLIENT = 'examples/demo-client.ts';

let ca: TempCa;
let plain: RunningStandin;
let keyFile: string;

/** The environment of the child, without anything of ours that the SDK would read. */
function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of ['AZURE_OPENAI_API_KEY', 'AZURE_OPENAI_ENDPOINT', 'OPENAI_BASE_URL', 'OPENAI_API_VERSION', 'OPENAI_API_KEY']) delete env[name];
  return { ...env, ...extra };
}

beforeAll(async () => {
  ca = await makeTempCa();
  plain = await startStandin({ apiKey: TEST_API_KEY });
  keyFile = join(ca.dir, 'api-key');
  await writeFile(keyFile, `${TEST_API_KEY}\n`, { mode: 0o600 });
});

afterAll(async () => {
  await plain?.close();
  await ca?.cleanup();
});

describe('demo client as a child process', () => {
  it('prints the answer to the default question, with the key from the environment', async () => {
    const result = await runTsx(CLIENT, ['--endpoint', plain.url], { env: childEnv({ AZURE_OPENAI_API_KEY: TEST_API_KEY }) });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(`${OCKHAMS_RAZOR_ANSWER}\n`);
  });

  it('prints the streamed answer as it arrives, identical to the non-streamed one', async () => {
    const result = await runTsx(CLIENT, ['--endpoint', plain.url, '--stream', '--api-key-file', keyFile], { env: childEnv() });
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(`${OCKHAMS_RAZOR_ANSWER}\n`);
  });

  it('prints one JSON object with usage, chunk count and the request id under --json', async () => {
    const result = await runTsx(CLIENT, ['--endpoint', plain.url, '--stream', '--json', '--api-key-file', keyFile, '--question', 'Say hello'], { env: childEnv() });
    expect(result.code).toBe(0);
    const answer = JSON.parse(result.stdout) as Record<string, unknown> & { usage: { total_tokens: number } };
    expect(answer).toMatchObject({ streamed: true, model: 'gpt-4o-mini-2024-07-18', finishReason: 'stop' });
    expect(answer.text).toContain('Say hello');
    expect(answer.chunks).toBeGreaterThan(5);
    expect(answer.usage.total_tokens).toBeGreaterThan(0);
    expect(answer.requestId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('fails with a 401 line and exit 1 on a wrong key, printing neither key', async () => {
    const wrongKey = 'wrong-key-should-never-be-printed';
    const result = await runTsx(CLIENT, ['--endpoint', plain.url], { env: childEnv({ AZURE_OPENAI_API_KEY: wrongKey }) });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^demo-client: 401 unauthorized: the service refused the API key \(Access denied/);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stdout + result.stderr).not.toContain(wrongKey);
    expect(result.stdout + result.stderr).not.toContain(TEST_API_KEY);
  });

  it('fails with a 404 DeploymentNotFound line on an unknown deployment', async () => {
    const result = await runTsx(CLIENT, ['--endpoint', plain.url, '--deployment', 'gpt-99', '--api-key-file', keyFile], { env: childEnv() });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^demo-client: 404 not found \(DeploymentNotFound\): The API deployment/);
  });

  it('says the portal is closed when nothing listens at the endpoint', async () => {
    const closedPort = await new Promise<number>((resolve) => {
      const probe = net.createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as net.AddressInfo;
        probe.close(() => resolve(port));
      });
    });
    const result = await runTsx(CLIENT, ['--endpoint', `http://127.0.0.1:${closedPort}`, '--api-key-file', keyFile], { env: childEnv() });
    expect(result.code).toBe(1);
    expect(result.stderr).toBe('demo-client: the portal is closed: connection refused\n');
  });

  it('says the portal is closed when the connection dies mid-stream, after printing what arrived', async () => {
    const cutting = await startStandin({ apiKey: TEST_API_KEY, abortAfterBytes: 3_000 });
    try {
      const result = await runTsx(CLIENT, ['--endpoint', cutting.url, '--stream', '--api-key-file', keyFile], { env: childEnv() });
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/^demo-client: the portal is closed: /);
      expect(OCKHAMS_RAZOR_ANSWER.startsWith(result.stdout.trim())).toBe(true);
      expect(result.stdout.trim().length).toBeLessThan(OCKHAMS_RAZOR_ANSWER.length);
    } finally {
      await cutting.close();
    }
  });

  it('refuses to run without an API key (exit 2)', async () => {
    const result = await runTsx(CLIENT, ['--endpoint', plain.url], { env: childEnv() });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('no API key');
  });
});

describe('askQuestion in-process', () => {
  it('asks over HTTPS trusting the test CA and hands each streamed piece to onText', async () => {
    const standin = await startStandin({ apiKey: TEST_API_KEY, tls: { cert: ca.certPem, key: ca.keyPem } });
    try {
      const pieces: string[] = [];
      const answer = await askQuestion({ endpoint: standin.url, apiKey: TEST_API_KEY, caCertPem: ca.caPem, stream: true, onText: (p) => pieces.push(p) });
      expect(pieces.join('')).toBe(OCKHAMS_RAZOR_ANSWER);
      expect(answer).toMatchObject({ text: OCKHAMS_RAZOR_ANSWER, streamed: true, chunks: pieces.length });
      const plainAnswer = await askQuestion({ endpoint: standin.url, apiKey: TEST_API_KEY, caCertPem: ca.caPem });
      expect(plainAnswer).toMatchObject({ text: OCKHAMS_RAZOR_ANSWER, streamed: false, finishReason: 'stop' });
      expect(plainAnswer.usage?.completion_tokens).toBeGreaterThan(0);
    } finally {
      await standin.close();
    }
  });

  it('fails (the SDK alone would hang) when a non-streamed HTTPS answer is cut mid-body', async () => {
    const standin = await startStandin({ apiKey: TEST_API_KEY, tls: { cert: ca.certPem, key: ca.keyPem }, abortAfterBytes: 300 });
    try {
      const error = await askQuestion({ endpoint: standin.url, apiKey: TEST_API_KEY, caCertPem: ca.caPem, timeoutMs: 20_000 }).catch((err: unknown) => err);
      expect(describeFailure(error)).toMatch(/^the portal is closed: /);
    } finally {
      await standin.close();
    }
  });

  it('fails fast with a 429 line instead of retrying when the deployment is rate limited', async () => {
    const limited = await startStandin({ apiKey: TEST_API_KEY, rateLimit: { requests: 1, windowMs: 60_000 } });
    try {
      await askQuestion({ endpoint: limited.url, apiKey: TEST_API_KEY });
      const error = await askQuestion({ endpoint: limited.url, apiKey: TEST_API_KEY }).catch((err: unknown) => err);
      expect(describeFailure(error)).toMatch(/^429 rate limited, retry after \d+ s: Requests to the ChatCompletions_Create Operation/);
    } finally {
      await limited.close();
    }
  });

  it('gives up with a timeout line when the answer does not finish in time', async () => {
    const error = await askQuestion({
      endpoint: plain.url,
      apiKey: TEST_API_KEY,
      stream: true,
      timeoutMs: 300,
      headers: { 'x-standin-chunk-delay-ms': '10000' },
    }).catch((err: unknown) => err);
    expect(describeFailure(error)).toBe('timed out waiting for the service');
  });
});
