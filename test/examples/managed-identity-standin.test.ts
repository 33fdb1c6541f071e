// The managed identity stand-in against the real @azure/identity (and the msal-node under it):
// if the library takes its answers, refuses its errors the way it refuses Azure's, and caches its
// tokens the way it caches Azure's, the stand-in is faithful enough to test the gateway's Entra
// credential. The protocol details the library does not exercise are checked with raw HTTP.
//
// MSAL fixes its identity source (endpoint and header) once per process, so every library call in
// this file goes to the one stand-in made in beforeAll; raw-HTTP checks may use their own.

import { ManagedIdentityCredential } from '@azure/identity';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { APP_SERVICE_MSI_API_VERSION, startManagedIdentityStandin, type ManagedIdentityStandin } from '../../examples/managed-identity-standin.js';
import { rawRequest } from './fixtures.js';

const SCOPE = 'https://cognitiveservices.azure.com/.default';
const RESOURCE = 'https://cognitiveservices.azure.com';

/** Variables that would send @azure/identity anywhere but the stand-in (IMDS, Arc, Service Fabric, Cloud Shell, AKS). */
const FOREIGN_ENV = ['MSI_ENDPOINT', 'MSI_SECRET', 'IDENTITY_SERVER_THUMBPRINT', 'IMDS_ENDPOINT', 'AZURE_FEDERATED_TOKEN_FILE', 'AZURE_CLIENT_ID', 'AZURE_TENANT_ID', 'AZURE_POD_IDENTITY_AUTHORITY_HOST'];
const savedEnv = new Map<string, string | undefined>();

function setEnv(name: string, value: string | undefined): void {
  if (!savedEnv.has(name)) savedEnv.set(name, process.env[name]);
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
}

let standin: ManagedIdentityStandin;

beforeAll(async () => {
  standin = await startManagedIdentityStandin({ tokenLifetimeMs: 10_000 });
  for (const name of FOREIGN_ENV) setEnv(name, undefined);
  setEnv('IDENTITY_ENDPOINT', standin.env.IDENTITY_ENDPOINT);
  setEnv('IDENTITY_HEADER', standin.env.IDENTITY_HEADER);
});

afterAll(async () => {
  for (const [name, value] of savedEnv) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  await standin.close();
});

beforeEach(() => {
  standin.setFailing(false);
  standin.setTokenLifetimeMs(10_000);
});

describe('managed identity stand-in, through @azure/identity', () => {
  it('hands ManagedIdentityCredential a token it accepts, with the expiry it announced', async () => {
    const before = standin.issued.length;
    const token = await new ManagedIdentityCredential().getToken(SCOPE);
    expect(token).not.toBeNull();
    expect(standin.isValid(token!.token)).toBe(true);
    const record = standin.lookup(token!.token)!;
    expect(record.resource).toBe(RESOURCE);
    // expires_on travels in whole seconds; MSAL may lose one more to its own rounding.
    expect(token!.expiresOnTimestamp).toBeLessThanOrEqual(record.expiresAt);
    expect(token!.expiresOnTimestamp).toBeGreaterThanOrEqual(record.expiresAt - 1_000);
    expect(token!.tokenType).toBe('Bearer');
    expect(standin.issued.length).toBe(before + 1);
  });

  it('passes a user-assigned client id through as client_id', async () => {
    const clientId = '7d1c9d4e-1b2a-4c3d-9e8f-0a1b2c3d4e5f';
    const token = await new ManagedIdentityCredential({ clientId }).getToken(SCOPE);
    expect(standin.lookup(token!.token)?.clientId).toBe(clientId);
  });

  it('is asked again on every getToken for short tokens (MSAL serves from cache only with > 5 min left)', async () => {
    const credential = new ManagedIdentityCredential();
    const first = await credential.getToken(SCOPE);
    const second = await credential.getToken(SCOPE);
    expect(second!.token).not.toBe(first!.token);
  });

  it('is not asked again for a day-long token: MSAL serves it from its cache', async () => {
    standin.setTokenLifetimeMs(24 * 60 * 60_000);
    // Its own client id: MSAL's cache is process-wide, and this token must not serve the other tests.
    const credential = new ManagedIdentityCredential({ clientId: 'c0ffee00-0000-4000-8000-000000000001' });
    const before = standin.issued.length;
    const first = await credential.getToken(SCOPE);
    const second = await credential.getToken(SCOPE);
    expect(second!.token).toBe(first!.token);
    expect(standin.issued.length).toBe(before + 1);
    // A day-long token tells the caller to refresh at half its life, as Azure's do.
    expect(first!.refreshAfterTimestamp).toBeDefined();
  });

  it('fails getToken with Azure\'s message when failing, after the library\'s own retries of a 5xx', async () => {
    standin.setFailing(500);
    const before = standin.requests;
    const credential = new ManagedIdentityCredential();
    await expect(credential.getToken(SCOPE)).rejects.toThrow(/An unexpected error occured while fetching the AAD Token/);
    // How often depends on the retry options of the first ManagedIdentityCredential of the
    // process (MSAL keeps that one's HTTP client with the source); more than once in any case.
    expect(standin.requests - before).toBeGreaterThan(1);
    standin.setFailing(400);
    const before400 = standin.requests;
    await expect(credential.getToken(SCOPE)).rejects.toThrow(/Unable to load the proper Managed Identity/);
    expect(standin.requests - before400).toBe(1);
  });
});

describe('managed identity stand-in, raw protocol', () => {
  const url = (query: string): string => `${standin.endpoint}?${query}`;
  const good = `api-version=${APP_SERVICE_MSI_API_VERSION}&resource=${encodeURIComponent(RESOURCE)}`;

  it('listens on loopback and answers App Service\'s JSON with expires_on as a string of epoch seconds', async () => {
    expect(new URL(standin.endpoint).hostname).toBe('127.0.0.1');
    const res = await rawRequest(url(good), { method: 'GET', headers: { 'x-identity-header': standin.header } });
    expect(res.status).toBe(200);
    const body = JSON.parse(res.body) as Record<string, unknown>;
    expect(Object.keys(body).sort()).toEqual(['access_token', 'client_id', 'expires_on', 'resource', 'token_type']);
    expect(body.expires_on).toMatch(/^\d{10}$/);
    expect(body.token_type).toBe('Bearer');
    expect(body.resource).toBe(RESOURCE);
  });

  it('refuses a missing header, another api-version, no resource, other methods and paths', async () => {
    const header = { 'x-identity-header': standin.header };
    expect((await rawRequest(url(good), { method: 'GET' })).status).toBe(401);
    expect((await rawRequest(url(good), { method: 'GET', headers: { 'x-identity-header': 'wrong' } })).status).toBe(401);
    expect((await rawRequest(url(`api-version=2017-09-01&resource=${RESOURCE}`), { method: 'GET', headers: header })).status).toBe(400);
    expect((await rawRequest(url(`api-version=${APP_SERVICE_MSI_API_VERSION}`), { method: 'GET', headers: header })).status).toBe(400);
    expect((await rawRequest(url(good), { method: 'POST', headers: header })).status).toBe(405);
    expect((await rawRequest(standin.endpoint.replace('/msi/token', '/other'), { method: 'GET', headers: header })).status).toBe(404);
  });

  it('answers errors as {statusCode, message, correlationId} while failing, and counts every request', async () => {
    const before = standin.requests;
    standin.setFailing(503);
    const res = await rawRequest(url(good), { method: 'GET', headers: { 'x-identity-header': standin.header } });
    expect(res.status).toBe(503);
    const body = JSON.parse(res.body) as Record<string, unknown>;
    expect(body).toMatchObject({ statusCode: 503, message: expect.any(String), correlationId: expect.any(String) });
    expect(standin.requests).toBe(before + 1);
    expect(() => standin.setFailing(200)).toThrow(/400-599/);
  });

  it('refuses a client_id the host does not have, when told which it has', async () => {
    const own = await startManagedIdentityStandin({ userAssignedClientIds: ['known-client'] });
    try {
      const headers = { 'x-identity-header': own.header };
      expect((await rawRequest(`${own.endpoint}?${good}&client_id=known-client`, { method: 'GET', headers })).status).toBe(200);
      const refused = await rawRequest(`${own.endpoint}?${good}&client_id=other`, { method: 'GET', headers });
      expect(refused.status).toBe(400);
      expect(own.issued.map((t) => t.clientId)).toEqual(['known-client']);
    } finally {
      await own.close();
    }
  });

  it('isValid: only its own tokens, only until the whole second it announced', async () => {
    let clock = 1_700_000_000_250;
    const own = await startManagedIdentityStandin({ tokenLifetimeMs: 3_000, now: () => clock });
    try {
      const res = await rawRequest(`${own.endpoint}?${good}`, { method: 'GET', headers: { 'x-identity-header': own.header } });
      const body = JSON.parse(res.body) as { access_token: string; expires_on: string };
      expect(body.expires_on).toBe('1700000003');
      expect(own.isValid(body.access_token)).toBe(true);
      expect(own.isValid('not-a-token')).toBe(false);
      clock = 1_700_000_002_999;
      expect(own.isValid(body.access_token)).toBe(true);
      clock = 1_700_000_003_000;
      expect(own.isValid(body.access_token)).toBe(false);
      expect(own.issued).toHaveLength(1);
      expect(own.issued[0]!.id).not.toContain(body.access_token);
      expect(() => own.setTokenLifetimeMs(500)).toThrow(/at least 1000/);
    } finally {
      await own.close();
    }
  });
});
