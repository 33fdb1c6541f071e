// The gateway's backend credential with real parts: the managed identity stand-in behind the
// real @azure/identity chain (managed identity first, then environment, workload identity, az,
// azd, PowerShell), real timers and a real pino logger captured to a buffer. A few timing rules
// (the library serving a token it already gave, "refresh after", a hung chain) are driven with an
// injected TokenCredential and clock instead, where waiting for real would take minutes.
//
// MSAL fixes its identity source once per process, so the whole file shares one stand-in.
// Nothing may leave the machine: the environment is scrubbed of every Azure variable that could
// point the chain elsewhere, az/azd get empty config folders, and every HTTP request this process
// makes is recorded and must go to loopback.

import diagnostics from 'node:diagnostics_channel';
import type { ClientRequest } from 'node:http';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AccessToken, TokenCredential } from '@azure/identity';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { createBackendCredential, type BackendCredential } from '../../../agent/gateway/backend-credential.js';
import { isWicketError, type WicketError } from '../../../protocol/errors.js';
import { startManagedIdentityStandin, type ManagedIdentityStandin } from '../../../examples/managed-identity-standin.js';

const AZURE_ENV = [
  'AZURE_CLIENT_ID', 'AZURE_TENANT_ID', 'AZURE_CLIENT_SECRET', 'AZURE_CLIENT_CERTIFICATE_PATH', 'AZURE_CLIENT_CERTIFICATE_PASSWORD',
  'AZURE_USERNAME', 'AZURE_PASSWORD', 'AZURE_FEDERATED_TOKEN_FILE', 'AZURE_AUTHORITY_HOST', 'AZURE_TOKEN_CREDENTIALS',
  'AZURE_POD_IDENTITY_AUTHORITY_HOST', 'MSI_ENDPOINT', 'MSI_SECRET', 'IDENTITY_SERVER_THUMBPRINT', 'IMDS_ENDPOINT',
];
const savedEnv = new Map<string, string | undefined>();
function setEnv(name: string, value: string | undefined): void {
  if (!savedEnv.has(name)) savedEnv.set(name, process.env[name]);
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
}

/** Every host this process sends HTTP to (the stand-in, and nothing else). */
const httpHosts: string[] = [];
function onRequest(message: unknown): void {
  httpHosts.push((message as { request: ClientRequest }).request.host);
}

/** The log, as pino wrote it. */
let logText = '';
const logger = pino(
  { level: 'debug' },
  new Writable({
    write(chunk: Buffer, _encoding, done) {
      logText += chunk.toString('utf8');
      done();
    },
  }),
);
/** Every token and key handed out in this file: none may ever appear in the log. */
const secrets = new Set<string>();

let standin: ManagedIdentityStandin;
let dir: string;
const open: BackendCredential[] = [];

function entra(options: { clientId?: string; fetchTimeoutMs?: number } = {}): BackendCredential {
  const credential = createBackendCredential(
    options.clientId === undefined ? { kind: 'entra' } : { kind: 'entra', clientId: options.clientId },
    { logger, fetchTimeoutMs: options.fetchTimeoutMs },
  );
  open.push(credential);
  return credential;
}

async function bearer(credential: BackendCredential): Promise<string> {
  const header = await credential.authorize();
  expect(header?.name).toBe('authorization');
  expect(header?.value).toMatch(/^Bearer \S+$/);
  const token = header!.value.slice('Bearer '.length);
  secrets.add(token);
  return token;
}

async function rejection(promise: Promise<unknown>): Promise<WicketError> {
  try {
    await promise;
  } catch (err) {
    if (isWicketError(err)) return err;
    throw err;
  }
  throw new Error('expected a rejection');
}

function warnings(msg: RegExp): number {
  return logText.split('\n').filter((line) => line.includes('"level":40') && msg.test(line)).length;
}

beforeAll(async () => {
  diagnostics.subscribe('http.client.request.start', onRequest);
  dir = await mkdtemp(join(tmpdir(), 'wicket-backend-credential-'));
  standin = await startManagedIdentityStandin();
  for (const name of AZURE_ENV) setEnv(name, undefined);
  setEnv('IDENTITY_ENDPOINT', standin.env.IDENTITY_ENDPOINT);
  setEnv('IDENTITY_HEADER', standin.env.IDENTITY_HEADER);
  // A developer's own `az login` / `azd auth login` must not answer for the stand-in.
  await mkdir(join(dir, 'az'));
  await mkdir(join(dir, 'azd'));
  setEnv('AZURE_CONFIG_DIR', join(dir, 'az'));
  setEnv('AZD_CONFIG_DIR', join(dir, 'azd'));
});

afterAll(async () => {
  diagnostics.unsubscribe('http.client.request.start', onRequest);
  for (const [name, value] of savedEnv) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  await standin.close();
  await rm(dir, { recursive: true, force: true });
  expect(httpHosts.filter((host) => host !== '127.0.0.1')).toEqual([]);
});

beforeEach(() => {
  standin.setFailing(false);
  logText = '';
});

afterEach(() => {
  for (const credential of open.splice(0)) credential.close();
  for (const secret of secrets) expect(logText).not.toContain(secret);
});

describe('entra, through @azure/identity and the managed identity stand-in', () => {
  it('fetches a token at creation and reuses it, without asking again, while it is fresh', async () => {
    standin.setTokenLifetimeMs(60_000);
    const before = standin.issued.length;
    const credential = entra();
    await vi.waitFor(() => expect(credential.status().state).toBe('ready'), { timeout: 5_000 });
    const token = await bearer(credential);
    expect(standin.isValid(token)).toBe(true);
    for (let i = 0; i < 20; i++) expect(await bearer(credential)).toBe(token);
    expect(standin.issued.length).toBe(before + 1);
    const status = credential.status();
    expect(status).toMatchObject({ kind: 'entra', state: 'ready', refreshes: 0 });
    expect(Date.parse(status.expiresAt!)).toBeLessThanOrEqual(standin.lookup(token)!.expiresAt);
    expect(logText).toContain('Entra token obtained');
    // The guard sees the library's requests (so an empty list of foreign hosts means something).
    expect(httpHosts).toContain('127.0.0.1');
  });

  it('asks for the user-assigned identity named by clientId', async () => {
    standin.setTokenLifetimeMs(60_000);
    const clientId = '3b9f6a52-8c1d-4e7f-a0b2-c4d6e8f0a1b3';
    const token = await bearer(entra({ clientId }));
    expect(standin.lookup(token)?.clientId).toBe(clientId);
  });

  it('refreshes before expiry while a request every 50 ms keeps getting a valid token', async () => {
    standin.setTokenLifetimeMs(4_000);
    const credential = entra();
    const first = await bearer(credential);
    const firstRecord = standin.lookup(first)!;
    const seen = new Set<string>();
    let failures = 0;
    let invalid = 0;
    while (Date.now() < firstRecord.expiresAt + 300) {
      try {
        const token = await bearer(credential);
        seen.add(token);
        if (!standin.isValid(token)) invalid++;
      } catch {
        failures++;
      }
      await sleep(50);
    }
    expect(failures).toBe(0);
    expect(invalid).toBe(0);
    expect(seen.size).toBeGreaterThanOrEqual(2);
    const second = standin.issued.find((t) => t.issuedAt > firstRecord.issuedAt && t.id !== firstRecord.id)!;
    expect(second.issuedAt).toBeLessThan(firstRecord.expiresAt);
    expect(credential.status().refreshes).toBeGreaterThanOrEqual(1);
  });

  it('keeps serving the current token while refreshes fail, warns once, and recovers', async () => {
    standin.setTokenLifetimeMs(8_000);
    const credential = entra();
    const first = await bearer(credential);
    const expiresAt = standin.lookup(first)!.expiresAt;
    standin.setFailing(400);
    // The refresh is due at half the token's life; it fails and is retried with backoff.
    await vi.waitFor(() => expect(credential.status().state).toBe('failing'), { timeout: 6_000, interval: 50 });
    expect(credential.status().lastError).toMatchObject({ code: 'WICKET_ERR_BACKEND_AUTH', message: expect.stringMatching(/Unable to load the proper Managed Identity/) });
    const until = Date.now() + 700;
    while (Date.now() < until) {
      expect(await bearer(credential)).toBe(first);
      await sleep(50);
    }
    standin.setFailing(false);
    await vi.waitFor(() => expect(credential.status()).toMatchObject({ state: 'ready', refreshes: 1 }), { timeout: 5_000, interval: 50 });
    const second = await bearer(credential);
    expect(second).not.toBe(first);
    expect(standin.lookup(second)!.issuedAt).toBeLessThan(expiresAt);
    expect(warnings(/Entra token refresh failed/)).toBe(1);
    expect(logText).toContain('Entra token obtained again after failures');
  });

  it('fails with WICKET_ERR_BACKEND_AUTH, promptly, once the token expired and the endpoint keeps failing', async () => {
    standin.setTokenLifetimeMs(3_000);
    const credential = entra();
    const first = await bearer(credential);
    standin.setFailing(500);
    await vi.waitFor(() => expect(standin.isValid(first)).toBe(false), { timeout: 5_000, interval: 50 });
    const started = Date.now();
    const err = await rejection(credential.authorize());
    expect(Date.now() - started).toBeLessThan(8_000);
    expect(err.code).toBe('WICKET_ERR_BACKEND_AUTH');
    expect(err.message).toMatch(/An unexpected error occured while fetching the AAD Token/);
    expect(err.message).toMatch(/IDENTITY_ENDPOINT or IMDS/);
    expect(err.message).not.toContain(first);
    expect(['unavailable', 'fetching']).toContain(credential.status().state);
  });

  it('reports unavailable when no token was ever had, warning once however many requests fail', async () => {
    standin.setFailing(403);
    const credential = entra();
    for (let i = 0; i < 5; i++) expect((await rejection(credential.authorize())).code).toBe('WICKET_ERR_BACKEND_AUTH');
    await vi.waitFor(() => expect(credential.status().state).toBe('unavailable'), { timeout: 5_000, interval: 20 });
    expect(credential.status().expiresAt).toBeUndefined();
    expect(warnings(/no Entra token for the backend/)).toBe(1);
    standin.setFailing(false);
    // The background retry (1 s, then backoff) picks the endpoint up again without a request.
    await vi.waitFor(() => expect(credential.status().state).toBe('ready'), { timeout: 6_000, interval: 50 });
  });

  it('honours AZURE_TOKEN_CREDENTIALS by narrowing the chain the way DefaultAzureCredential does', async () => {
    standin.setTokenLifetimeMs(60_000);
    setEnv('AZURE_TOKEN_CREDENTIALS', 'ManagedIdentityCredential');
    try {
      expect(standin.isValid(await bearer(entra()))).toBe(true);
    } finally {
      delete process.env.AZURE_TOKEN_CREDENTIALS;
    }
  });
});

/** A TokenCredential whose answers the test scripts, counting calls. */
function scripted(answers: Array<() => Promise<AccessToken | null>>): TokenCredential & { calls: number } {
  const credential = {
    calls: 0,
    async getToken(): Promise<AccessToken | null> {
      const answer = answers[Math.min(credential.calls, answers.length - 1)]!;
      credential.calls++;
      return answer();
    },
  };
  return credential;
}

describe('entra timing rules, with an injected credential and clock', () => {
  const MINUTE = 60_000;

  it('shares one fetch among concurrent requests', async () => {
    const credential = scripted([
      async () => {
        await sleep(100);
        return { token: 'shared-token', expiresOnTimestamp: Date.now() + 60 * MINUTE };
      },
    ]);
    const backend = createBackendCredential({ kind: 'entra' }, { logger, tokenCredential: credential });
    open.push(backend);
    expect(backend.status().state).toBe('fetching');
    const headers = await Promise.all(Array.from({ length: 20 }, () => backend.authorize()));
    expect(new Set(headers.map((h) => h?.value))).toEqual(new Set(['Bearer shared-token']));
    expect(credential.calls).toBe(1);
    secrets.add('shared-token');
  });

  it('takes the same token handed back (a library cache) as no refresh, and asks again later', async () => {
    let clock = 1_000_000;
    const expires = clock + 10 * MINUTE;
    const credential = scripted([
      async () => ({ token: 'token-one', expiresOnTimestamp: expires }),
      async () => ({ token: 'token-one', expiresOnTimestamp: expires }),
      async () => ({ token: 'token-two', expiresOnTimestamp: expires + 10 * MINUTE }),
    ]);
    secrets.add('token-one').add('token-two');
    const backend = createBackendCredential({ kind: 'entra' }, { logger, tokenCredential: credential, now: () => clock });
    open.push(backend);
    expect(await backend.authorize()).toEqual({ name: 'authorization', value: 'Bearer token-one' });
    // 5 minutes before expiry the refresh is due; the request still gets the current token.
    clock = expires - 5 * MINUTE;
    expect((await backend.authorize())?.value).toBe('Bearer token-one');
    await vi.waitFor(() => expect(logText).toContain('returned the current token again'));
    expect(credential.calls).toBe(2);
    expect(backend.status()).toMatchObject({ state: 'refreshing', refreshes: 0 });
    // Not before the retry delay…
    expect((await backend.authorize())?.value).toBe('Bearer token-one');
    expect(credential.calls).toBe(2);
    // …then the newer token.
    clock += 1_000;
    await backend.authorize();
    await vi.waitFor(() => expect(backend.status()).toMatchObject({ state: 'ready', refreshes: 1 }));
    expect((await backend.authorize())?.value).toBe('Bearer token-two');
    expect(credential.calls).toBe(3);
    expect(warnings(/./)).toBe(0);
  });

  it('takes the same token handed back again and again as a failing refresh', async () => {
    let clock = 2_000_000;
    const credential = scripted([async () => ({ token: 'only-token', expiresOnTimestamp: 2_000_000 + 60 * MINUTE })]);
    secrets.add('only-token');
    const backend = createBackendCredential({ kind: 'entra' }, { logger, tokenCredential: credential, now: () => clock });
    open.push(backend);
    await backend.authorize();
    clock += 55 * MINUTE;
    for (let answers = 2; answers <= 4; answers++) {
      await backend.authorize();
      await vi.waitFor(() => expect(credential.calls).toBe(answers));
      await sleep(10);
      clock += 30_000;
    }
    expect(backend.status()).toMatchObject({ state: 'failing', refreshes: 0, lastError: { message: expect.stringMatching(/instead of a new one/) } });
    expect(warnings(/Entra token refresh failed/)).toBe(1);
    expect((await backend.authorize())?.value).toBe('Bearer only-token');
  });

  it('refreshes at the token\'s "refresh after" when that comes first', async () => {
    let clock = 5_000_000;
    const day = 24 * 60 * MINUTE;
    const credential = scripted([
      async () => ({ token: 'day-token', expiresOnTimestamp: clock + day, refreshAfterTimestamp: clock + day / 2 }),
      async () => ({ token: 'next-day-token', expiresOnTimestamp: clock + day }),
    ]);
    secrets.add('day-token').add('next-day-token');
    const backend = createBackendCredential({ kind: 'entra' }, { logger, tokenCredential: credential, now: () => clock });
    open.push(backend);
    await backend.authorize();
    clock += day / 2 - 1_000;
    await backend.authorize();
    expect(credential.calls).toBe(1);
    clock += 1_000;
    await backend.authorize();
    await vi.waitFor(() => expect(backend.status().refreshes).toBe(1));
    expect((await backend.authorize())?.value).toBe('Bearer next-day-token');
  });

  it('bounds a fetch that never answers by the fetch timeout', async () => {
    const credential = scripted([() => new Promise<never>(() => {})]);
    const backend = createBackendCredential({ kind: 'entra', clientId: 'abc' }, { logger, tokenCredential: credential, fetchTimeoutMs: 300 });
    open.push(backend);
    const started = Date.now();
    const err = await rejection(backend.authorize());
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(err.code).toBe('WICKET_ERR_BACKEND_AUTH');
    expect(err.message).toMatch(/within 300 ms/);
    expect(err.message).toMatch(/client id abc/);
    expect(backend.status().state).toBe('unavailable');
  });

  it('refuses a token that expires on arrival, and any request after close', async () => {
    const credential = scripted([async () => ({ token: 'stale-token', expiresOnTimestamp: Date.now() + 500 })]);
    secrets.add('stale-token');
    const backend = createBackendCredential({ kind: 'entra' }, { logger, tokenCredential: credential });
    const err = await rejection(backend.authorize());
    expect(err.message).toMatch(/expires in/);
    backend.close();
    expect((await rejection(backend.authorize())).message).toMatch(/closed/);
    expect(backend.status().state).toBe('unavailable');
  });
});

describe('api-key', () => {
  const KEY = '0123456789abcdef0123456789abcdef';

  async function keyFile(name: string, content: string, mode: number): Promise<string> {
    const path = join(dir, name);
    await writeFile(path, content, { mode });
    await chmod(path, mode);
    return path;
  }

  function configError(file: string): WicketError {
    try {
      createBackendCredential({ kind: 'api-key', file }, { logger });
    } catch (err) {
      if (isWicketError(err)) return err;
      throw err;
    }
    throw new Error('expected createBackendCredential to throw');
  }

  it('reads a mode-0600 or 0400 file, trimming one trailing newline', async () => {
    secrets.add(KEY);
    for (const mode of [0o600, 0o400]) {
      const backend = createBackendCredential({ kind: 'api-key', file: await keyFile(`key-${mode.toString(8)}`, `${KEY}\n`, mode) }, { logger });
      expect(await backend.authorize()).toEqual({ name: 'api-key', value: KEY });
      expect(backend.status()).toEqual({ kind: 'api-key', state: 'ready', refreshes: 0 });
      backend.close();
      expect((await rejection(backend.authorize())).code).toBe('WICKET_ERR_BACKEND_AUTH');
    }
  });

  it('refuses a file group or other may read, saying how to fix it', async () => {
    const path = await keyFile('key-0644', KEY, 0o644);
    const err = configError(path);
    expect(err.code).toBe('WICKET_ERR_CONFIG');
    expect(err.message).toContain(path);
    expect(err.message).toContain('0644');
    expect(err.message).toContain(`chmod 600 ${path}`);
    expect(err.message).not.toContain(KEY);
    expect(configError(await keyFile('key-0640', KEY, 0o640)).message).toContain('0640');
  });

  it('refuses a missing, empty, oversized or multi-line file, naming it', async () => {
    const missing = join(dir, 'no-such.key');
    expect(configError(missing)).toMatchObject({ code: 'WICKET_ERR_CONFIG', message: expect.stringContaining(`${missing} does not exist`) });
    expect(configError(await keyFile('empty.key', '\n', 0o600)).message).toMatch(/empty/);
    expect(configError(await keyFile('big.key', 'k'.repeat(4_097), 0o600)).message).toMatch(/more than 4096/);
    expect(configError(await keyFile('two-lines.key', `${KEY}\n${KEY}\n`, 0o600)).message).toMatch(/one line/);
    expect(configError(dir).message).toMatch(/not a regular file/);
  });
});

describe('none', () => {
  it('adds no header', async () => {
    const backend = createBackendCredential({ kind: 'none' }, { logger });
    expect(await backend.authorize()).toBeUndefined();
    expect(backend.status()).toEqual({ kind: 'none', state: 'ready', refreshes: 0 });
  });
});
