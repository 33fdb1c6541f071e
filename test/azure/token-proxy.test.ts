import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer as createHttpServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import { Agent, createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { makeTestCa } from '../../examples/test-ca.js';
import { isWicketError } from '../../protocol/errors.js';
import { startTokenProxy, type RunningProxy } from '../../scripts/azure/vm/aoai-token-proxy.js';

// The loopback proxy on AI Corp's VM: it swaps whatever credential a client sends for the VM's
// managed-identity token, so no API key exists anywhere on the path. A fake IMDS (plain HTTP, as
// the real one) and a fake Azure OpenAI endpoint (HTTPS with a test CA) stand on either side.

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface Seen {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

let dir: string;
let caPath: string;
let upstream: ReturnType<typeof createHttpsServer>;
let upstreamUrl: string;
let imds: Server;
let imdsUrl: string;
let imdsHits: Array<{ url: string; metadata: string | undefined }>;
let imdsExpiresInS = 3600;
let upstreamSeen: Seen[];
let agent: Agent;

function listen(server: Server | ReturnType<typeof createHttpsServer>): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

function call(port: number, method: string, path: string, headers: Record<string, string>, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'wicket-token-proxy-'));
  const ca = await makeTestCa(join(dir, 'tls'), { serverNames: ['127.0.0.1'] });
  caPath = ca.caCertPath;
  agent = new Agent({ ca: readFileSync(ca.caCertPath) });
  upstream = createHttpsServer({ cert: readFileSync(ca.certPath), key: readFileSync(ca.keyPath) }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      upstreamSeen.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(200, { 'content-type': 'application/json', 'x-upstream': 'aoai' });
      res.end(JSON.stringify({ choices: [{ message: { content: 'the simplest explanation' } }] }));
    });
  });
  upstreamUrl = `https://127.0.0.1:${await listen(upstream)}`;
  imds = createHttpServer((req, res) => {
    imdsHits.push({ url: req.url ?? '', metadata: req.headers.metadata as string | undefined });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ access_token: `imds-token-${imdsHits.length}`, expires_on: String(Math.floor(Date.now() / 1000) + imdsExpiresInS), token_type: 'Bearer' }));
  });
  imdsUrl = `http://127.0.0.1:${await listen(imds)}/metadata/identity/oauth2/token`;
});

beforeEach(() => {
  imdsHits = [];
  upstreamSeen = [];
  imdsExpiresInS = 3600;
});

afterAll(async () => {
  agent?.destroy();
  upstream?.closeAllConnections();
  await new Promise((r) => upstream?.close(r));
  imds?.closeAllConnections();
  await new Promise((r) => imds?.close(r));
  await rm(dir, { recursive: true, force: true });
});

async function withProxy<T>(fn: (p: RunningProxy) => Promise<T>, imdsOverride?: string): Promise<T> {
  const proxy = await startTokenProxy({ upstream: upstreamUrl, listen: '127.0.0.1:0', imdsUrl: imdsOverride ?? imdsUrl, agent });
  try {
    return await fn(proxy);
  } finally {
    await proxy.close();
  }
}

const CHAT = '/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21';

describe('Azure OpenAI token proxy', () => {
  it("replaces the client's key with the VM's managed-identity token and forwards the request unchanged", async () => {
    await withProxy(async (p) => {
      const body = JSON.stringify({ messages: [{ role: 'user', content: "What is Ockham's Razor?" }] });
      const res = await call(p.port, 'POST', CHAT, { 'content-type': 'application/json', 'api-key': 'client-key', authorization: 'Bearer client-token' }, body);
      expect(res.status).toBe(200);
      expect(JSON.parse(res.body)).toEqual({ choices: [{ message: { content: 'the simplest explanation' } }] });
      expect(upstreamSeen).toHaveLength(1);
      const seen = upstreamSeen[0]!;
      expect(seen).toMatchObject({ method: 'POST', path: CHAT, body });
      expect(seen.headers.authorization).toBe('Bearer imds-token-1');
      expect(seen.headers['api-key']).toBeUndefined();
      expect(seen.headers.host).toBe(new URL(upstreamUrl).host);
      expect(imdsHits).toEqual([
        { url: expect.stringContaining('resource=https%3A%2F%2Fcognitiveservices.azure.com') as unknown as string, metadata: 'true' },
      ]);
    });
  });

  it('asks IMDS once while the token is fresh, and again when it is about to expire', async () => {
    await withProxy(async (p) => {
      await call(p.port, 'GET', CHAT, {});
      await call(p.port, 'GET', CHAT, {});
      expect(imdsHits).toHaveLength(1);
    });
    imdsHits = [];
    imdsExpiresInS = 60; // inside the five-minute refresh margin
    await withProxy(async (p) => {
      await call(p.port, 'GET', CHAT, {});
      await call(p.port, 'GET', CHAT, {});
      expect(imdsHits).toHaveLength(2);
    });
  });

  it('forwards nothing outside /openai/: the token is not a key to anything else', async () => {
    await withProxy(async (p) => {
      const res = await call(p.port, 'GET', '/subscriptions/x/providers', {});
      expect(res.status).toBe(404);
      expect(upstreamSeen).toEqual([]);
      expect(imdsHits).toEqual([]);
    });
  });

  it('answers 502 with a JSON error when the managed identity is unavailable, and keeps serving', async () => {
    await withProxy(async (p) => {
      const res = await call(p.port, 'GET', CHAT, {});
      expect(res.status).toBe(502);
      expect(JSON.parse(res.body)).toMatchObject({ error: { code: 'ManagedIdentityUnavailable' } });
      expect((await call(p.port, 'GET', CHAT, {})).status).toBe(502);
    }, 'http://127.0.0.1:1/metadata/identity/oauth2/token');
  });

  it('refuses to listen anywhere but loopback', async () => {
    let caught: unknown;
    try {
      await startTokenProxy({ upstream: upstreamUrl, listen: '0.0.0.0:0', imdsUrl });
    } catch (err) {
      caught = err;
    }
    expect(isWicketError(caught, 'WICKET_ERR_AZURE_CONFIG')).toBe(true);
  });

  it('runs as the systemd unit starts it: node --import tsx, configured by environment', async () => {
    const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'scripts/azure/vm/aoai-token-proxy.ts'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, AOAI_UPSTREAM: upstreamUrl, PROXY_LISTEN: '127.0.0.1:0', IMDS_TOKEN_URL: imdsUrl, NODE_EXTRA_CA_CERTS: caPath },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      const port = await new Promise<number>((resolve, reject) => {
        let out = '';
        const timer = setTimeout(() => reject(new Error(`proxy did not start: ${out}`)), 20_000);
        child.stdout?.on('data', (c: Buffer) => {
          out += c.toString('utf8');
          const m = /"listen":"127\.0\.0\.1:(\d+)"/.exec(out);
          if (m) {
            clearTimeout(timer);
            resolve(Number(m[1]));
          }
        });
        child.once('exit', (code) => reject(new Error(`proxy exited ${code}: ${out}`)));
      });
      const res = await call(port, 'POST', CHAT, { 'api-key': 'client-key' }, '{}');
      expect(res.status).toBe(200);
      expect(upstreamSeen[0]?.headers.authorization).toBe('Bearer imds-token-1');
    } finally {
      child.kill('SIGTERM');
    }
  });
});
