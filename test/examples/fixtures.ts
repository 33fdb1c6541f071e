// Shared set-up for the examples' tests: a throwaway CA in a temp folder, raw HTTP(S) requests
// (for what the SDK will not send: no api-version, broken JSON), and running an example script
// as a child process with a hard time limit.

import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { makeTestCa, type TestCaFiles } from '../../examples/test-ca.js';

export const REPO_ROOT = resolve(import.meta.dirname, '../..');
export const TEST_API_KEY = 'test-key-0123456789abcdef';
export const STANDIN_NAME = 'aoai-standin.internal';
/** The question every stand-in test asks: the stand-in answers it with OCKHAMS_RAZOR_ANSWER. */
export const QUESTION = "What is Ockham's Razor?";
/** A chat request body asking QUESTION, for raw requests. */
export const ASK = JSON.stringify({ messages: [{ role: 'user', content: QUESTION }] });

export interface TempCa extends TestCaFiles {
  readonly dir: string;
  readonly caPem: Buffer;
  readonly certPem: Buffer;
  readonly keyPem: Buffer;
  cleanup(): Promise<void>;
}

export async function makeTempCa(serverNames: readonly string[] = [STANDIN_NAME, '127.0.0.1']): Promise<TempCa> {
  const dir = await mkdtemp(join(tmpdir(), 'wicket-examples-'));
  const files = await makeTestCa(join(dir, 'ca'), { serverNames });
  return {
    ...files,
    dir,
    caPem: await readFile(files.caCertPath),
    certPem: await readFile(files.certPath),
    keyPem: await readFile(files.keyPath),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

export interface RawResponse {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

/** One request with node's own client; `ca` makes it HTTPS-trusting the test CA. */
export function rawRequest(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: string | Buffer; ca?: Buffer; servername?: string },
): Promise<RawResponse> {
  return new Promise((resolvePromise, reject) => {
    const target = new URL(url);
    const requestOptions: https.RequestOptions = {
      method: options.method ?? 'POST',
      headers: { 'content-type': 'application/json', ...options.headers },
      agent: false,
      ...(options.ca ? { ca: options.ca } : {}),
      ...(options.servername ? { servername: options.servername } : {}),
    };
    const req = (target.protocol === 'https:' ? https : http).request(target, requestOptions, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (chunk: Buffer) => parts.push(chunk));
      res.on('end', () => resolvePromise({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

export function chatUrl(base: string, deployment = 'gpt-4o-mini', apiVersion: string | null = '2024-10-21'): string {
  const path = `${base}/openai/deployments/${encodeURIComponent(deployment)}/chat/completions`;
  return apiVersion === null ? path : `${path}?api-version=${encodeURIComponent(apiVersion)}`;
}

export interface ChildResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a TypeScript file under tsx (node --import tsx), killing it after `timeoutMs`. */
export function runTsx(
  script: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<ChildResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
      cwd: REPO_ROOT,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, stdout, stderr });
    });
  });
}

/** Parses `data: …` events of a text/event-stream body. */
export function sseEvents(body: string): string[] {
  return body
    .split('\n\n')
    .map((block) => block.trim())
    .filter((block) => block.length > 0)
    .map((block) => {
      if (!block.startsWith('data: ')) throw new Error(`not an SSE data event: ${block.slice(0, 80)}`);
      return block.slice('data: '.length);
    });
}
