// The stand-in's deliberate failures (truncate-and-reset, slow streams), its answers to hostile
// requests, and its command line. Other engineers' portal tests rely on the failures being real:
// a truncated response must never look complete to a client.

import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AzureOpenAI } from 'openai';
import {
  ABORT_AFTER_BYTES_HEADER,
  CHUNK_DELAY_HEADER,
  MAX_REQUEST_BODY_BYTES,
  OCKHAMS_RAZOR_ANSWER,
  startStandin,
  type RunningStandin,
} from '../../examples/azure-openai-standin/index.js';
import { ASK, QUESTION, REPO_ROOT, TEST_API_KEY, chatUrl, makeTempCa, rawRequest, runTsx, type TempCa } from './fixtures.js';

const ASK_STREAM = JSON.stringify({ messages: [{ role: 'user', content: QUESTION }], stream: true });

let ca: TempCa;
let plain: RunningStandin;

beforeAll(async () => {
  ca = await makeTempCa();
  plain = await startStandin({ apiKey: TEST_API_KEY });
});

afterAll(async () => {
  await plain?.close();
  await ca?.cleanup();
});

/** Sends raw bytes and collects everything until the server closes or resets the connection. */
function rawExchange(port: number, request: string | Buffer): Promise<{ received: Buffer; error: string | null }> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.end(request));
    const parts: Buffer[] = [];
    let error: string | null = null;
    socket.on('data', (chunk: Buffer) => parts.push(chunk));
    socket.on('error', (err: NodeJS.ErrnoException) => (error = err.code ?? err.message));
    socket.on('close', () => resolve({ received: Buffer.concat(parts), error }));
    socket.setTimeout(10_000, () => socket.destroy(new Error('test timeout')));
  });
}

function httpRequestText(path: string, body: string, extraHeaders: Record<string, string> = {}): string {
  const headers = { host: '127.0.0.1', 'api-key': TEST_API_KEY, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), connection: 'close', ...extraHeaders };
  return `POST ${path} HTTP/1.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n${body}`;
}

const CHAT_PATH = '/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21';

describe('deliberate failures', () => {
  it('cuts a non-streamed response after N body bytes so it never looks complete', async () => {
    const { received } = await rawExchange(plain.port, httpRequestText(CHAT_PATH, ASK, { [ABORT_AFTER_BYTES_HEADER]: '50' }));
    const text = received.toString('utf8');
    // The RST may discard bytes still in our receive buffer; whatever did arrive is a strict
    // prefix of the body, never the whole of what content-length declares.
    const [head = '', body = ''] = text.split('\r\n\r\n', 2);
    const declared = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? Number.NaN);
    const complete = Number.isFinite(declared) && Buffer.byteLength(body) >= declared;
    expect(complete).toBe(false);
    expect(Buffer.byteLength(body)).toBeLessThanOrEqual(50);
    if (head.length > 0) expect(declared).toBeGreaterThan(50);
  });

  it('makes node\'s HTTPS client fail, not succeed, when a non-streamed response is cut', async () => {
    // (The openai SDK alone would hang here: see examples/watched-agent.ts. The demo client's
    // handling of the same cut is tested in demo-client.test.ts.)
    const standin = await startStandin({ apiKey: TEST_API_KEY, tls: { cert: ca.certPem, key: ca.keyPem } });
    try {
      const outcome = await rawRequest(chatUrl(standin.url), {
        ca: ca.caPem,
        headers: { 'api-key': TEST_API_KEY, [ABORT_AFTER_BYTES_HEADER]: '200' },
        body: ASK,
      }).then(() => 'completed', (err: unknown) => err);
      expect(outcome).toBeInstanceOf(Error);
    } finally {
      await standin.close();
    }
  });

  it('cuts a stream mid-way when the stand-in is told to abort every response', async () => {
    const standin = await startStandin({ apiKey: TEST_API_KEY, abortAfterBytes: 2_000 });
    try {
      const sdk = new AzureOpenAI({ baseURL: `${standin.url}/openai`, apiKey: TEST_API_KEY, apiVersion: '2024-10-21', maxRetries: 0 });
      let text = '';
      const outcome = await (async () => {
        const stream = await sdk.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: QUESTION }], stream: true });
        for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
        return 'completed';
      })().catch((err: unknown) => err);
      expect(outcome).toBeInstanceOf(Error);
      expect(OCKHAMS_RAZOR_ANSWER.startsWith(text)).toBe(true);
      expect(text.length).toBeLessThan(OCKHAMS_RAZOR_ANSWER.length);
    } finally {
      await standin.close();
    }
  });

  it('streams the same answer when told to stream slowly', async () => {
    const res = await rawRequest(chatUrl(plain.url), { headers: { 'api-key': TEST_API_KEY, [CHUNK_DELAY_HEADER]: '1' }, body: ASK_STREAM });
    expect(res.status).toBe(200);
    const pieces = res.body
      .split('\n\n')
      .filter((e) => e.startsWith('data: {'))
      .map((e) => (JSON.parse(e.slice(6)) as { choices: { delta?: { content?: string } }[] }).choices[0]?.delta?.content ?? '');
    expect(pieces.join('')).toBe(OCKHAMS_RAZOR_ANSWER);
  });

  it('refuses malformed fault headers with 400 instead of guessing', async () => {
    for (const [header, value] of [[ABORT_AFTER_BYTES_HEADER, '-1'], [CHUNK_DELAY_HEADER, '99999999'], [CHUNK_DELAY_HEADER, 'soon']] as const) {
      const res = await rawRequest(chatUrl(plain.url), { headers: { 'api-key': TEST_API_KEY, [header]: value }, body: ASK });
      expect(res.status).toBe(400);
      expect(JSON.parse(res.body)).toMatchObject({ error: { type: 'invalid_request_error' } });
    }
  });

  it('keeps serving after a client hangs up in the middle of a slow stream', async () => {
    const { received } = await new Promise<{ received: Buffer }>((resolve) => {
      const socket = net.connect(plain.port, '127.0.0.1', () => socket.write(httpRequestText(CHAT_PATH, ASK_STREAM, { [CHUNK_DELAY_HEADER]: '50' })));
      socket.once('data', (chunk: Buffer) => {
        socket.destroy();
        resolve({ received: chunk });
      });
    });
    expect(received.toString('utf8')).toMatch(/^HTTP\/1\.1 200/);
    const res = await rawRequest(chatUrl(plain.url), { headers: { 'api-key': TEST_API_KEY }, body: ASK });
    expect(res.status).toBe(200);
  });
});

describe('hostile requests get an answer, never a crash', () => {
  it('answers garbage on the wire with 400 and keeps serving', async () => {
    const { received } = await rawExchange(plain.port, Buffer.from('\x16\x03\x01 this is not http\r\n\r\n'));
    expect(received.toString('latin1')).toMatch(/^HTTP\/1\.1 400/);
    const res = await rawRequest(chatUrl(plain.url), { headers: { 'api-key': TEST_API_KEY }, body: ASK });
    expect(res.status).toBe(200);
  });

  it('refuses an oversized body with 413 before buffering it', async () => {
    const declaredOnly = await rawExchange(
      plain.port,
      `POST ${CHAT_PATH} HTTP/1.1\r\nhost: x\r\napi-key: ${TEST_API_KEY}\r\ncontent-length: ${MAX_REQUEST_BODY_BYTES * 100}\r\n\r\n{`,
    );
    expect(declaredOnly.received.toString('utf8')).toMatch(/^HTTP\/1\.1 413/);
    const big = await rawRequest(chatUrl(plain.url), {
      headers: { 'api-key': TEST_API_KEY, 'transfer-encoding': 'chunked' },
      body: Buffer.alloc(MAX_REQUEST_BODY_BYTES + 1, 0x20),
    }).catch((err: NodeJS.ErrnoException) => ({ status: -1, body: err.code ?? '' }));
    // Either the 413 arrives, or the server closed the connection while we were still sending.
    expect([413, -1]).toContain(big.status);
  });

  it('answers wrong shapes the way the OpenAI backend does', async () => {
    const cases: [string, number, string | null][] = [
      ['[]', 400, null],
      ['{}', 400, 'messages'],
      ['{"messages":[]}', 400, 'messages'],
      ['{"messages":[{"role":"wizard","content":"x"}]}', 400, 'messages[0].role'],
      ['{"messages":[{"role":"user","content":"x"}],"stream":"yes"}', 400, 'stream'],
      ['{"messages":[{"role":"user","content":"x"}],"max_tokens":0}', 400, 'max_tokens'],
    ];
    for (const [body, status, param] of cases) {
      const res = await rawRequest(chatUrl(plain.url), { headers: { 'api-key': TEST_API_KEY }, body });
      expect(res.status, body).toBe(status);
      expect(JSON.parse(res.body), body).toMatchObject({ error: { type: 'invalid_request_error', param } });
    }
  });

  it('answers unknown routes, methods and undecodable deployment names with 404', async () => {
    const wrongPath = await rawRequest(`${plain.url}/openai/deployments/gpt-4o-mini/images/generations?api-version=2024-10-21`, { headers: { 'api-key': TEST_API_KEY }, body: ASK });
    expect(wrongPath.status).toBe(404);
    const wrongMethod = await rawRequest(chatUrl(plain.url), { method: 'GET', headers: { 'api-key': TEST_API_KEY } });
    expect(wrongMethod.status).toBe(404);
    const badEscape = await rawRequest(`${plain.url}/openai/deployments/%E0%A4%A/chat/completions?api-version=2024-10-21`, { headers: { 'api-key': TEST_API_KEY }, body: ASK });
    expect(badEscape.status).toBe(404);
    expect(JSON.parse(badEscape.body)).toMatchObject({ error: { code: 'DeploymentNotFound' } });
  });

  it('honours max_tokens by cutting the answer and reporting finish_reason length', async () => {
    const res = await rawRequest(chatUrl(plain.url), {
      headers: { 'api-key': TEST_API_KEY },
      body: JSON.stringify({ messages: [{ role: 'user', content: QUESTION }], max_tokens: 3 }),
    });
    const body = JSON.parse(res.body) as { choices: { finish_reason: string; message: { content: string } }[]; usage: { completion_tokens: number } };
    expect(body.choices[0]?.finish_reason).toBe('length');
    expect(body.usage.completion_tokens).toBe(3);
    expect(OCKHAMS_RAZOR_ANSWER.startsWith(body.choices[0]?.message.content ?? 'x')).toBe(true);
  });
});

describe('the stand-in command line', () => {
  it('prints its URL as one JSON line, serves HTTPS, and exits 0 on SIGTERM', async () => {
    const keyFile = join(ca.dir, 'api-key');
    await writeFile(keyFile, `${TEST_API_KEY}\n`, { mode: 0o600 });
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'examples/azure-openai-standin/main.ts', '--listen', '127.0.0.1:0', '--cert', ca.certPath, '--key', ca.keyPath, '--api-key-file', keyFile, '--region', 'CLI Region'],
      { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const killTimer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    try {
      let stdout = '';
      const firstLine = await new Promise<string>((resolve, reject) => {
        child.stdout.setEncoding('utf8').on('data', (d: string) => {
          stdout += d;
          if (stdout.includes('\n')) resolve(stdout.split('\n')[0] ?? '');
        });
        child.once('exit', (code) => reject(new Error(`stand-in exited early with ${code}`)));
      });
      const { url } = JSON.parse(firstLine) as { url: string };
      expect(url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const res = await rawRequest(chatUrl(url), { ca: ca.caPem, servername: 'aoai-standin.internal', headers: { 'api-key': TEST_API_KEY }, body: ASK });
      expect(res.status).toBe(200);
      expect(res.headers['x-ms-region']).toBe('CLI Region');
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(stdout.trim().split('\n')).toHaveLength(1);
      expect(stdout).not.toContain(TEST_API_KEY);
    } finally {
      clearTimeout(killTimer);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  it('refuses to start without a certificate unless --plain-http is given', async () => {
    const keyFile = join(ca.dir, 'api-key-2');
    await writeFile(keyFile, TEST_API_KEY, { mode: 0o600 });
    const result = await runTsx('examples/azure-openai-standin/main.ts', ['--listen', '127.0.0.1:0', '--api-key-file', keyFile]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--plain-http');
    expect(result.stdout).toBe('');
  });
});
