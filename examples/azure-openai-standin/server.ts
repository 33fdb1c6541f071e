// The Azure OpenAI stand-in: an HTTPS server that answers like the Azure OpenAI data plane of one
// resource reached through its private endpoint. It plays "the private service" of the demo, and
// the backend (or, started several times, the backend pool) behind the outlet's gateway mode.
//
//   POST /openai/deployments/{d}/chat/completions | completions | embeddings ?api-version=DATED
//   POST /openai/responses?api-version=2025-03-01-preview (or a later preview)
//   POST /openai/v1/chat/completions | completions | embeddings | responses [?api-version=preview]
//   auth: `api-key: KEY`, or `Authorization: Bearer KEY-or-Entra-token` (see auth.ts)
//
// Checked in Azure's order: route and api-version (404 / 400, see routes.ts), credentials
// (401 / 403), an outage switched on by the test (429 / 5xx, see outage.ts), deployment
// (404 DeploymentNotFound), quota (429), then the body (400). Error bodies: see azure-errors.ts.
// Answers: chat-operation.ts, text-completions.ts, embeddings.ts, responses-api.ts. Deliberate
// failures (a slow start, slow streams, truncate and reset mid-body): fault-injection.ts and
// reply.ts. Every response carries `x-request-id`, `apim-request-id` and `x-ms-region`, as
// Azure's do; every request is recorded and every status counted (recording.ts).

import { randomUUID } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Secret } from '../../protocol/secret.js';
import { Authenticator, type BearerCheck } from './auth.js';
import * as azure from './azure-errors.js';
import { FaultyBodyWriter, faultsFor } from './fault-injection.js';
import { answerOperation, rateLimitName } from './operations.js';
import { checkOutage, outageAnswer, type Outage } from './outage.js';
import { DeploymentRateLimiter, type RateLimit } from './rate-limiter.js';
import { RequestLog, StatusCounter, type RecordedRequest } from './recording.js';
import { sendReply } from './reply.js';
import { isRefusal, modelField, parseJsonObject, readBody, type JsonObject } from './request-body.js';
import { checkApiVersion, matchRoute } from './routes.js';

export { SUPPORTED_API_VERSIONS } from './routes.js';
export { parseChatRequest } from './chat-operation.js';

/** Deployment name → the model version it reports, as an Azure resource would. */
export const DEFAULT_DEPLOYMENTS: Readonly<Record<string, string>> = {
  'gpt-4o-mini': 'gpt-4o-mini-2024-07-18',
  'gpt-4o': 'gpt-4o-2024-08-06',
  'text-embedding-3-small': 'text-embedding-3-small',
};

/** Requests larger than this are refused before they are buffered (prompts here are small). */
export const MAX_REQUEST_BODY_BYTES = 1024 * 1024;

/** What `x-ms-region` says unless the stand-in is given a `region`. */
export const DEFAULT_REGION = 'Stand-in Region';

export interface StandinOptions {
  /**
   * API key clients may present (as `api-key`, or as a bearer token). Never logged or echoed.
   * Without it, local auth is disabled: an `api-key` gets 403 AuthenticationTypeDisabled, and
   * `acceptBearer` is then required.
   */
  readonly apiKey?: string | Secret<string>;
  /** Accepts an Entra token sent as `Authorization: Bearer …` (e.g. one a test's IMDS stand-in issued). */
  readonly acceptBearer?: BearerCheck;
  readonly host?: string;
  /** 0 (the default) picks a free port. */
  readonly port?: number;
  /** PEM certificate chain and key; without it the stand-in speaks plain HTTP. */
  readonly tls?: { readonly cert: string | Buffer; readonly key: string | Buffer };
  /** Deployment name → model; a model whose name contains "embedding" only does embeddings. */
  readonly deployments?: Readonly<Record<string, string>>;
  /** Off by default. */
  readonly rateLimit?: RateLimit;
  /** Applies x-standin-abort-after-bytes to every response. */
  readonly abortAfterBytes?: number;
  /** Applies x-standin-chunk-delay-ms to every stream. */
  readonly chunkDelayMs?: number;
  /** Applies x-standin-first-token-delay-ms to every successful answer. */
  readonly firstTokenDelayMs?: number;
  /** Shown in every answer's `x-ms-region` header, so a test sees which backend answered. */
  readonly region?: string;
  readonly now?: () => number;
}

export interface RunningStandin {
  /** `https://HOST:PORT` (or `http://` without TLS), no trailing slash. */
  readonly url: string;
  readonly port: number;
  /**
   * The last 1,000 requests as received, oldest first (a copy). Bytes node cannot parse as HTTP
   * are answered 400 on the socket and neither recorded nor counted.
   */
  readonly requests: readonly RecordedRequest[];
  /** How many answers went out with each status, e.g. `{ 200: 3, 429: 2 }` (a copy). */
  readonly answered: Readonly<Record<number, number>>;
  /** Switches an outage on or off for every later request; takes effect immediately. */
  setOutage(outage: Outage): void;
  /** Stops listening and drops open connections. */
  close(): Promise<void>;
}

export async function startStandin(options: StandinOptions): Promise<RunningStandin> {
  const auth = new Authenticator(options.apiKey, options.acceptBearer);
  const deployments = options.deployments ?? DEFAULT_DEPLOYMENTS;
  const now = options.now ?? Date.now;
  const limiter = options.rateLimit ? new DeploymentRateLimiter(options.rateLimit, now) : undefined;
  const host = options.host ?? '127.0.0.1';
  const region = options.region ?? DEFAULT_REGION;
  // A region node cannot put in a header would fail every request later; refuse it up front.
  if (!/^[\x20-\x7e]+$/.test(region)) throw new Error('region must be non-empty printable ASCII');
  const requestLog = new RequestLog();
  const answered = new StatusCounter();
  let outage: Outage = { kind: 'none' };

  // Under TLS the request's socket is a TLSSocket; fault injection resets the TCP socket under it.
  const rawSockets = new Map<string, Socket>();
  const rawSocketOf = (socket: Socket): Socket | undefined =>
    options.tls ? rawSockets.get(peerKey(socket)) : socket;

  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    handle(req, res).catch(() => {
      // A handler bug must not take the process down; the client sees the connection drop.
      res.destroy();
    });
  };

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const requestId = randomUUID();
    const commonHeaders: Record<string, string> = {
      'x-request-id': requestId,
      'apim-request-id': randomUUID(),
      'x-ms-region': region,
      'x-content-type-options': 'nosniff',
      ...(options.tls ? { 'strict-transport-security': 'max-age=31536000; includeSubDomains; preload' } : {}),
    };
    const writeHead = (status: number, headers: http.OutgoingHttpHeaders): boolean => {
      if (res.destroyed) return false;
      answered.count(status);
      res.writeHead(status, { ...commonHeaders, ...headers });
      return true;
    };
    const fail = (answer: azure.AzureErrorAnswer, extra: Record<string, string> = {}): void => {
      const body = JSON.stringify(answer.body);
      const headers = { ...answer.headers, ...extra, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) };
      if (writeHead(answer.status, headers)) res.end(body);
    };

    // Read (and record) the body first, so the log holds every request, refused ones included.
    const recorded = requestLog.record(req, now());
    const raw = await readBody(req, MAX_REQUEST_BODY_BYTES);
    if (raw === 'too-large') return fail(azure.bodyTooLarge(MAX_REQUEST_BODY_BYTES), { connection: 'close' });
    if (raw === 'aborted') return;
    recorded.setBody(raw);

    const url = new URL(req.url ?? '/', 'http://standin.invalid');
    const route = matchRoute(req.method, url.pathname);
    if (!route) return fail(azure.resourceNotFound());
    const version = checkApiVersion(route, url.searchParams.get('api-version'));
    if ('error' in version) return fail(version.error);
    const refusal = auth.refusal(req.headers);
    if (refusal) return fail(refusal);
    const down = outageAnswer(outage, { rateLimitOperation: rateLimitName(route.operation), apiVersion: version.version, requestId });
    if (down) return fail(down);

    // The deployment is in the path, or (v1 and Responses routes) the body's `model`.
    let fields: JsonObject | undefined;
    let deployment: string;
    if (route.encodedDeployment !== undefined) {
      try {
        deployment = decodeURIComponent(route.encodedDeployment);
      } catch {
        return fail(azure.deploymentNotFound());
      }
    } else {
      const body = parseJsonObject(raw);
      if (isRefusal(body)) return fail(body.error);
      const named = modelField(body.fields);
      if (isRefusal(named)) return fail(named.error);
      fields = body.fields;
      deployment = named.model;
    }
    const model = Object.hasOwn(deployments, deployment) ? deployments[deployment] : undefined;
    if (model === undefined) return fail(azure.deploymentNotFound());

    if (limiter) {
      const decision = limiter.take(deployment);
      if (!decision.allowed) {
        return fail(azure.rateLimited(rateLimitName(route.operation), version.version, decision.retryAfterSeconds * 1000));
      }
      commonHeaders['x-ratelimit-remaining-requests'] = String(decision.remaining);
    }

    if (fields === undefined) {
      const body = parseJsonObject(raw);
      if (isRefusal(body)) return fail(body.error);
      fields = body.fields;
    }
    // Azure rejects stream_options on data-plane versions older than 2024-09-01-preview.
    if (fields.stream_options !== undefined && /^\d{4}-\d{2}-\d{2}/.test(version.version) && version.version.slice(0, 10) < '2024-09-01') {
      return fail(azure.invalidRequest('Unrecognized request argument supplied: stream_options', 'stream_options'));
    }
    const faults = faultsFor(req.headers, options);
    if ('error' in faults) return fail(azure.invalidRequest(faults.error));
    const reply = answerOperation(route.operation, fields, { deployment, model, nowMs: now() });
    if (isRefusal(reply)) return fail(reply.error);
    await sendReply(reply, new FaultyBodyWriter(res, rawSocketOf(req.socket), faults.abortAfterBytes), faults, writeHead);
  }

  const server = options.tls
    ? https.createServer({ cert: options.tls.cert, key: options.tls.key }, handler)
    : http.createServer(handler);
  server.on('connection', (socket: Socket) => {
    const key = peerKey(socket);
    rawSockets.set(key, socket);
    socket.once('close', () => rawSockets.delete(key));
  });
  // A client that breaks TLS or HTTP gets its socket closed; the server goes on.
  server.on('tlsClientError', (_err: Error, socket: Socket) => socket.destroy());
  server.on('clientError', (_err: Error, socket: Socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    else socket.destroy();
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const hostInUrl = host.includes(':') ? `[${host}]` : host;
  return {
    url: `${options.tls ? 'https' : 'http'}://${hostInUrl}:${port}`,
    port,
    get requests() {
      return requestLog.snapshot();
    },
    get answered() {
      return answered.snapshot();
    },
    setOutage: (next: Outage) => {
      outage = checkOutage(next);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function peerKey(socket: Socket): string {
  return `${socket.remoteAddress}|${socket.remotePort}`;
}
