// A stand-in for Azure's managed identity endpoint, App Service flavour: what @azure/identity
// (through @azure/msal-node) calls when IDENTITY_ENDPOINT and IDENTITY_HEADER are set, the way
// App Service, Functions and Container Apps expose a host's identity. Tests point the real
// library at it and the Azure OpenAI stand-in accepts its tokens through isValid().
//
//   GET ${IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=https://cognitiveservices.azure.com[&client_id=…]
//   X-IDENTITY-HEADER: ${IDENTITY_HEADER}
//   → 200 {"access_token":"…","expires_on":"1717171717","resource":"…","token_type":"Bearer","client_id":"…"}
//   → 4xx/5xx {"statusCode":500,"message":"…","correlationId":"…"}
//
// What the library makes of the answer (msal-node BaseManagedIdentitySource, ResponseHandler):
// - `expires_on` is epoch seconds, sent as a string (App Service does; an ISO-8601 string is
//   accepted too). MSAL turns it into expires_in against its own clock, so expiry has whole-second
//   precision: a token "of 3 s" lives between 2 and 3 s. isValid() uses the same whole second.
// - An error body's `message` becomes the error's description; the library retries 5xx and 429
//   itself before giving up, so a failing stand-in sees a few requests per getToken.
// - MSAL caches tokens but serves a cached one only while it has more than 5 minutes left; the
//   short tokens tests use are therefore fetched again on every getToken. Long ones (the default,
//   24 h like Azure) are served from MSAL's cache until 5 minutes before expiry.
// - MSAL picks its identity source once per process and keeps the endpoint and header it read
//   then: a process talks to one stand-in. Tests share one per file and steer it with the controls.
//
// Tokens are opaque random strings (real ones are JWTs; nothing here reads them). Only their
// SHA-256 is kept. Listens on 127.0.0.1 only.

import { createHash, randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** The only protocol version this endpoint speaks (App Service's; MSAL sends it). */
export const APP_SERVICE_MSI_API_VERSION = '2019-08-01';
/** The token path of App Service's local identity endpoint. */
const TOKEN_PATH = '/msi/token';
/** Azure's managed identity tokens live about a day. */
const DEFAULT_TOKEN_LIFETIME_MS = 24 * 60 * 60_000;
/** The client id a system-assigned identity reports when none was asked for. */
const SYSTEM_ASSIGNED_CLIENT_ID = '00000000-5e29-463d-71da-4fe08e69999b';

export interface ManagedIdentityStandinOptions {
  /** How long issued tokens live (default 24 h; at least 1 s, since expiry travels in whole seconds). */
  readonly tokenLifetimeMs?: number;
  readonly now?: () => number;
  /** 0 (the default) picks a free port. */
  readonly port?: number;
  /** User-assigned client ids this host has; a client_id outside them is refused as Azure does. Default: any. */
  readonly userAssignedClientIds?: readonly string[];
}

export interface IssuedToken {
  /** A short digest of the token, safe to print; not the token. */
  readonly id: string;
  readonly issuedAt: number;
  /** Epoch ms, a whole second: the `expires_on` the client was told. */
  readonly expiresAt: number;
  readonly resource: string;
  readonly clientId: string;
}

export interface ManagedIdentityStandin {
  /** The IDENTITY_ENDPOINT value: `http://127.0.0.1:PORT/msi/token`. */
  readonly endpoint: string;
  /** The IDENTITY_HEADER value (the secret MSAL sends back as X-IDENTITY-HEADER). */
  readonly header: string;
  readonly env: { readonly IDENTITY_ENDPOINT: string; readonly IDENTITY_HEADER: string };
  /** Answer every token request with this error status (as Azure words it), or serve again with false. */
  setFailing(status: number | false): void;
  /** For tokens issued from now on. */
  setTokenLifetimeMs(ms: number): void;
  /** Every token issued so far, oldest first. */
  readonly issued: readonly IssuedToken[];
  /** Token requests received (well-formed or not, answered or failed). */
  readonly requests: number;
  /** True when this stand-in issued `token` and it has not expired at `now`. */
  isValid(token: string): boolean;
  /** The issued token `token` is, if this stand-in issued it. */
  lookup(token: string): IssuedToken | undefined;
  close(): Promise<void>;
}

/** App Service's wording for the failures it reports (the library shows `message` to the user). */
function failureMessage(status: number): string {
  if (status === 429) return 'Too many requests. Retry later.';
  if (status >= 500) return 'An unexpected error occured while fetching the AAD Token.';
  return 'Unable to load the proper Managed Identity.';
}

function digest(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

function checkLifetime(ms: number): number {
  if (!Number.isFinite(ms) || ms < 1_000) throw new Error(`tokenLifetimeMs must be at least 1000 (expiry travels in whole seconds), got ${ms}`);
  return ms;
}

export async function startManagedIdentityStandin(options: ManagedIdentityStandinOptions = {}): Promise<ManagedIdentityStandin> {
  const now = options.now ?? Date.now;
  let lifetimeMs = checkLifetime(options.tokenLifetimeMs ?? DEFAULT_TOKEN_LIFETIME_MS);
  const allowedClientIds = options.userAssignedClientIds === undefined ? undefined : new Set(options.userAssignedClientIds);
  const header = randomBytes(24).toString('base64url');
  const byDigest = new Map<string, IssuedToken>();
  const issued: IssuedToken[] = [];
  let failing: number | false = false;
  let requests = 0;

  function send(res: http.ServerResponse, status: number, body: object): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  function fail(res: http.ServerResponse, status: number, message: string): void {
    send(res, status, { statusCode: status, message, correlationId: randomUUID() });
  }

  function handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const path = url.pathname.replace(/\/+$/, '').toLowerCase();
    if (path !== TOKEN_PATH) return fail(res, 404, 'Not found.');
    requests++;
    if (req.method !== 'GET') return fail(res, 405, 'Method not allowed.');
    if (req.headers['x-identity-header'] !== header) return fail(res, 401, 'The X-IDENTITY-HEADER header is missing or wrong.');
    const apiVersion = url.searchParams.get('api-version');
    if (apiVersion !== APP_SERVICE_MSI_API_VERSION) {
      return fail(res, 400, `api-version ${JSON.stringify(apiVersion ?? '')} is not supported; use ${APP_SERVICE_MSI_API_VERSION}.`);
    }
    const resource = url.searchParams.get('resource');
    if (resource === null || resource === '') return fail(res, 400, 'The resource parameter is required.');
    const clientId = url.searchParams.get('client_id');
    if (clientId !== null && allowedClientIds !== undefined && !allowedClientIds.has(clientId)) {
      return fail(res, 400, 'Unable to load the proper Managed Identity.');
    }
    if (failing !== false) return fail(res, failing, failureMessage(failing));

    const token = randomBytes(32).toString('base64url');
    const issuedAt = now();
    // Whole seconds, floored, so the client never believes in a later expiry than isValid() does.
    const expiresOn = Math.floor((issuedAt + lifetimeMs) / 1000);
    const hash = digest(token);
    const record: IssuedToken = { id: hash.slice(0, 16), issuedAt, expiresAt: expiresOn * 1000, resource, clientId: clientId ?? SYSTEM_ASSIGNED_CLIENT_ID };
    byDigest.set(hash, record);
    issued.push(record);
    send(res, 200, { access_token: token, expires_on: String(expiresOn), resource, token_type: 'Bearer', client_id: record.clientId });
  }

  const sockets = new Set<Socket>();
  const server = http.createServer((req, res) => {
    // The endpoint takes no body; drain whatever came so the connection can be reused.
    req.resume();
    req.on('end', () => handle(req, res));
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const endpoint = `http://127.0.0.1:${port}${TOKEN_PATH}`;

  return {
    endpoint,
    header,
    env: { IDENTITY_ENDPOINT: endpoint, IDENTITY_HEADER: header },
    setFailing(status: number | false): void {
      if (status !== false && !(Number.isInteger(status) && status >= 400 && status <= 599)) throw new Error(`setFailing takes an HTTP error status (400-599) or false, got ${status}`);
      failing = status;
    },
    setTokenLifetimeMs(ms: number): void {
      lifetimeMs = checkLifetime(ms);
    },
    get issued(): readonly IssuedToken[] {
      return [...issued];
    },
    get requests(): number {
      return requests;
    },
    isValid(token: string): boolean {
      const record = byDigest.get(digest(token));
      return record !== undefined && now() < record.expiresAt;
    },
    lookup(token: string): IssuedToken | undefined {
      return byDigest.get(digest(token));
    },
    close(): Promise<void> {
      return new Promise((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      });
    },
  };
}
