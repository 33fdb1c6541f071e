import { APIError } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStandin, type RunningStandin } from '../../examples/azure-openai-standin/index.js';
import { startManagedIdentityStandin, type ManagedIdentityStandin } from '../../examples/managed-identity-standin.js';
import { runAgent } from '../../scripts/lib/local-processes.js';
import { CALLER_PLACEHOLDER_KEY, ledgerRows, startGatewayPortal, stopPortal, type GatewayPortal } from './gateway-fixture.js';

// Keyless all the way: the Azure OpenAI stand-in has key auth disabled and accepts only Entra
// tokens its managed identity stand-in issued; the outlet (a real `agent node start` process) gets
// them through the real @azure/identity from the App Service identity endpoint
// (IDENTITY_ENDPOINT / IDENTITY_HEADER, nothing else Azure in its environment). The app is the
// official openai SDK with a placeholder key. Tokens live 10 s, so refreshes happen under traffic.

const TOKEN_LIFETIME_MS = 10_000;
const messages = [{ role: 'user' as const, content: 'What is Ockham\'s razor?' }];
/** Printed by the outlet (through the --import below) if anything in it connects to a link-local address such as IMDS. */
const LINK_LOCAL_MARK = 'LINK-LOCAL-CONNECT';
// Wraps net.Socket#connect in the outlet process: http.request reaches it with [options, cb].
const WATCH_LINK_LOCAL = `data:text/javascript,${encodeURIComponent(`
import net from 'node:net';
const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (...args) {
  let o = args[0];
  if (Array.isArray(o)) o = o[0];
  const host = o !== null && typeof o === 'object' ? o.host : args[1];
  if (typeof host === 'string' && host.startsWith('169.254.')) process.stderr.write('${LINK_LOCAL_MARK} ' + host + '\\n');
  return connect.apply(this, args);
};`)}`;

let mi: ManagedIdentityStandin;
let standin: RunningStandin;
let portal: GatewayPortal;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The bearer tokens the backend received, in order (one per request). */
function bearersSeen(from = 0): string[] {
  return standin.requests.slice(from).map((r) => {
    const value = r.headers.authorization;
    expect(typeof value, 'one Authorization header per backend request').toBe('string');
    expect(value).toMatch(/^Bearer \S+$/);
    return (value as string).slice('Bearer '.length);
  });
}

interface CredentialStatusJson {
  kind: string;
  state: string;
  expiresAt?: string;
  refreshes: number;
  lastError?: { code: string; message: string; at: string };
}

async function credentialStatus(): Promise<{ credential: CredentialStatusJson; lastError?: { message: string } }> {
  const result = await runAgent(portal.outletHome.home, ['status', '--json']);
  expect(result.code, result.stderr).toBe(0);
  const status = JSON.parse(result.stdout) as { outlets: { gateway?: { backends: { credential: CredentialStatusJson; lastError?: { message: string } }[] } }[] };
  return status.outlets[0]!.gateway!.backends[0]!;
}

function chat() {
  return portal.callers[0]!.client({ deployment: 'gpt-4o-mini', maxRetries: 0 }).chat.completions.create({ model: 'gpt-4o-mini', messages });
}

beforeAll(async () => {
  mi = await startManagedIdentityStandin({ tokenLifetimeMs: TOKEN_LIFETIME_MS });
  // No apiKey: the resource has local (key) auth disabled, as a keyless deployment does.
  standin = await startStandin({ acceptBearer: (token) => mi.isValid(token), region: 'eastus' });
  portal = await startGatewayPortal({
    gateway: { kind: 'azure-openai', backends: [{ name: 'eastus', url: standin.url, auth: { kind: 'entra' } }] },
    callers: [['team=cardiology']],
    // debug: the refresh lines are logged too, so the no-token-in-output check covers them.
    outletEnv: { ...mi.env, WICKET_LOG_LEVEL: 'debug' },
    outletNodeArgs: [`--import=${WATCH_LINK_LOCAL}`],
  });
}, 60_000);

afterAll(() => stopPortal(standin, mi));

describe('gateway with an Entra token from a managed identity: keyless callers, keyless backend', () => {
  it('chat through the SDK reaches a key-disabled backend with a token the managed identity issued, never the caller\'s key', async () => {
    const answer = await chat();
    expect(answer.choices[0]?.message.content).toBeTruthy();
    const seen = standin.requests;
    expect(seen.length).toBeGreaterThanOrEqual(1);
    for (const request of seen) {
      expect(request.headers['api-key']).toBeUndefined();
      expect(JSON.stringify(request.headers)).not.toContain(CALLER_PLACEHOLDER_KEY);
    }
    for (const token of bearersSeen()) {
      const issued = mi.lookup(token);
      expect(issued, 'the bearer is a token the managed identity stand-in issued').toBeDefined();
      expect(issued!.resource).toBe('https://cognitiveservices.azure.com');
    }
    expect(standin.answered).toEqual({ 200: seen.length });
    const [row] = await ledgerRows(portal.outletHome, 1);
    expect(row).toMatchObject({ identity: portal.callers[0]!.home.identifier, status: 200, backend: 'eastus', code: null });
    expect((await credentialStatus()).credential).toMatchObject({ kind: 'entra', state: expect.stringMatching(/^(ready|refreshing)$/) });
  });

  it('refreshes the token before it expires while requests keep flowing: none fails', async () => {
    const from = standin.requests.length;
    const issuedBefore = mi.issued.length;
    const startedAt = Date.now();
    const runFor = TOKEN_LIFETIME_MS + 4_000;
    const pending: Promise<unknown>[] = [];
    while (Date.now() - startedAt < runFor) {
      pending.push(chat());
      await sleep(250);
    }
    const results = await Promise.allSettled(pending);
    const failed = results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason));
    expect(failed, 'requests that failed across the refresh').toEqual([]);
    expect(results.length).toBeGreaterThanOrEqual(50);

    const tokens = bearersSeen(from);
    expect(tokens).toHaveLength(results.length);
    const used = [...new Set(tokens)].map((t) => mi.lookup(t)!);
    expect(used.every((t) => t !== undefined)).toBe(true);
    expect(used.length, 'distinct tokens used over more than one lifetime').toBeGreaterThanOrEqual(2);
    // Each token in use was replaced by a newer one before it expired: no gap in which requests wait or fail.
    for (let i = 1; i < used.length; i++) {
      expect(used[i]!.issuedAt).toBeLessThan(used[i - 1]!.expiresAt);
      expect(used[i]!.expiresAt).toBeGreaterThan(used[i - 1]!.expiresAt);
    }
    // The token held when traffic started was replaced before it expired.
    const first = used[0]!;
    expect(mi.issued.slice(issuedBefore).some((t) => t.issuedAt < first.expiresAt)).toBe(true);
    // A refresh is not a fetch per request.
    expect(mi.issued.length - issuedBefore).toBeLessThanOrEqual(6);
    expect((await credentialStatus()).credential.refreshes).toBeGreaterThanOrEqual(2);
  }, 60_000);

  it('a failed refresh that outlives the token is a clear 503 WICKET_ERR_BACKEND_AUTH, shown in status, and heals without a restart', async () => {
    const outletPid = portal.outlet.proc.pid;
    mi.setFailing(500);
    // The token held now is the last one issued; once it is past its expiry nothing valid is left.
    const held = mi.issued.at(-1)!;
    const waitMs = held.expiresAt - Date.now() + 200;
    expect(waitMs).toBeLessThan(TOKEN_LIFETIME_MS + 1_000);
    await sleep(Math.max(0, waitMs));
    expect(mi.issued.at(-1)).toEqual(held);

    const backendRequestsBefore = standin.requests.length;
    let refused: unknown;
    const askedAt = Date.now();
    try {
      await chat();
    } catch (err) {
      refused = err;
    }
    const tookMs = Date.now() - askedAt;
    expect(refused).toBeInstanceOf(APIError);
    const error = refused as APIError;
    expect(error.status).toBe(503);
    expect(error.code).toBe('WICKET_ERR_BACKEND_AUTH');
    expect(error.message).toMatch(/managed identity/);
    expect(error.headers?.['x-wicket-error-code']).toBe('WICKET_ERR_BACKEND_AUTH');
    // Bounded by the fetch timeout (15 s), not the SDK's 30 s.
    expect(tookMs).toBeLessThan(16_000);
    // No expired token went to the backend.
    expect(standin.requests.length).toBe(backendRequestsBefore);

    // `agent status` says the credential has no token and why (a fetch may be under way: poll, bounded).
    let backend = await credentialStatus();
    for (const deadline = Date.now() + 10_000; !/^(failing|unavailable)$/.test(backend.credential.state) && Date.now() < deadline; ) {
      await sleep(300);
      backend = await credentialStatus();
    }
    expect(backend.credential.state).toMatch(/^(failing|unavailable)$/);
    expect(backend.credential.lastError?.code).toBe('WICKET_ERR_BACKEND_AUTH');
    expect(backend.credential.lastError?.message.length).toBeGreaterThan(0);
    expect(backend.lastError?.message).toMatch(/Entra token/);
    const human = await runAgent(portal.outletHome.home, ['status']);
    expect(human.stdout).toMatch(/credential entra (failing|unavailable|fetching)/);

    const rows = await ledgerRows(portal.outletHome, 1);
    expect(rows.at(-1)).toMatchObject({ status: 503, code: 'WICKET_ERR_BACKEND_AUTH', backend: null });

    // The identity endpoint comes back: requests recover in the same outlet process.
    mi.setFailing(false);
    const healedAt = Date.now();
    let answer: Awaited<ReturnType<typeof chat>> | undefined;
    let failuresAfterHeal = 0;
    while (answer === undefined && Date.now() - healedAt < 20_000) {
      try {
        answer = await chat();
      } catch (err) {
        expect(err).toBeInstanceOf(APIError);
        failuresAfterHeal++;
        await sleep(500);
      }
    }
    expect(answer?.choices[0]?.message.content).toBeTruthy();
    // A request within 1 s of a failed fetch is refused without another fetch (no burst of fetches); the next one fetches.
    expect(failuresAfterHeal).toBeLessThanOrEqual(3);
    expect(portal.outlet.proc.alive).toBe(true);
    expect(portal.outlet.proc.pid).toBe(outletPid);
    expect(mi.lookup(bearersSeen().at(-1)!)!.issuedAt).toBeGreaterThanOrEqual(healedAt);
    expect((await credentialStatus()).credential.state).toMatch(/^(ready|refreshing)$/);
    console.log(`503 after ${tookMs} ms; recovered ${Date.now() - healedAt} ms after the endpoint healed (${failuresAfterHeal} failure(s) first)`);
  }, 60_000);

  it('no token ever appears in the outlet\'s output, and nothing in it connected to IMDS', async () => {
    const output = [...portal.outlet.proc.stdoutLines, ...portal.outlet.proc.stderrLines].join('\n');
    // The output is really there (debug level): the token's lifecycle is logged, without the token.
    expect(output).toMatch(/Entra token obtained for the backend/);
    expect(output).toMatch(/Entra token refreshed/);
    expect(output).toMatch(/Entra token obtained again after failures/);
    const tokens = new Set(bearersSeen());
    expect(tokens.size).toBeGreaterThanOrEqual(3);
    for (const token of tokens) expect(output.includes(token), 'a bearer token in the outlet output').toBe(false);
    expect(output).not.toContain(mi.header);
    expect(output).not.toContain(LINK_LOCAL_MARK);
    expect(output).not.toContain('169.254.169.254');
  });
});
