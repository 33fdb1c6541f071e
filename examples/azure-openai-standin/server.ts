// The Azure OpenAI stand-in: an HTTPS server that answers like the Azure OpenAI data plane of one
// resource reached through its private endpoint. It plays "the private service" of the demo.
//
//   POST /openai/deployments/{deployment}/chat/completions?api-version=YYYY-MM-DD[-preview]
//   auth: `api-key: KEY` or `Authorization: Bearer KEY`
//
// Checked in Azure's order: route and api-version (404 / 400), credentials (401), deployment
// (404 DeploymentNotFound), quota (429), then the body (400). Error bodies: see azure-errors.ts.
// Answers and stream chunks: see completion.ts. Deliberate failures (truncate and reset mid-body,
// stream slowly): see fault-injection.ts. Every response carries `x-request-id` and
// `apim-request-id`, as Azure's do.
//
// Plain HTTP (no `tls`) is for tests that stand the service directly behind a plain client; the
// demo always serves HTTPS with a certificate from examples/test-ca.ts.

import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { Secret } from '../../protocol/secret.js';
import * as azure from './azure-errors.js';
import { chatCompletion, chatCompletionChunks, planCompletion, type ChatMessage } from './completion.js';
import { FaultyBodyWriter, faultsFor } from './fault-injection.js';
import { DeploymentRateLimiter, type RateLimit } from './rate-limiter.js';

/** Azure's GA and preview data-plane versions for chat completions; others get 400. */
export const SUPPORTED_API_VERSIONS: ReadonlySet<string> = new Set([
  '2022-12-01', '2023-05-15', '2024-02-01', '2024-06-01', '2024-10-21',
  '2023-03-15-preview', '2023-06-01-preview', '2023-07-01-preview', '2023-08-01-preview',
  '2023-09-01-preview', '2023-12-01-preview', '2024-02-15-preview', '2024-03-01-preview',
  '2024-04-01-preview', '2024-05-01-preview', '2024-07-01-preview', '2024-08-01-preview',
  '2024-09-01-preview', '2024-10-01-preview', '2024-12-01-preview', '2025-01-01-preview',
  '2025-02-01-preview', '2025-03-01-preview', '2025-04-01-preview',
]);

/** Deployment name → the model version it reports, as an Azure resource would. */
export const DEFAULT_DEPLOYMENTS: Readonly<Record<string, string>> = {
  'gpt-4o-mini': 'gpt-4o-mini-2024-07-18',
  'gpt-4o': 'gpt-4o-2024-08-06',
};

/** Requests larger than this are refused before they are buffered (chat prompts are small). */
export const MAX_REQUEST_BODY_BYTES = 1024 * 1024;

const VALID_ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool', 'function']);
const ROUTE = /^\/openai\/deployments\/([^/]+)\/chat\/completions$/;

export interface StandinOptions {
  /** API key clients must present. Never logged or echoed. */
  readonly apiKey: string | Secret<string>;
  readonly host?: string;
  /** 0 (the default) picks a free port. */
  readonly port?: number;
  /** PEM certificate chain and key; without it the stand-in speaks plain HTTP. */
  readonly tls?: { readonly cert: string | Buffer; readonly key: string | Buffer };
  readonly deployments?: Readonly<Record<string, string>>;
  /** Off by default. */
  readonly rateLimit?: RateLimit;
  /** Applies x-standin-abort-after-bytes to every response. */
  readonly abortAfterBytes?: number;
  /** Applies x-standin-chunk-delay-ms to every stream. */
  readonly chunkDelayMs?: number;
  readonly now?: () => number;
}

export interface RunningStandin {
  /** `https://HOST:PORT` (or `http://` without TLS), no trailing slash. */
  readonly url: string;
  readonly port: number;
  /** Stops listening and drops open connections. */
  close(): Promise<void>;
}

export async function startStandin(options: StandinOptions): Promise<RunningStandin> {
  const apiKey = typeof options.apiKey === 'string' ? new Secret(options.apiKey) : options.apiKey;
  if (apiKey.reveal().length === 0) throw new Error('the stand-in needs a non-empty API key');
  const keyDigest = sha256(apiKey.reveal());
  const deployments = options.deployments ?? DEFAULT_DEPLOYMENTS;
  const now = options.now ?? Date.now;
  const limiter = options.rateLimit ? new DeploymentRateLimiter(options.rateLimit, now) : undefined;
  const host = options.host ?? '127.0.0.1';

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
    const ids = { 'x-request-id': randomUUID(), 'apim-request-id': randomUUID() };
    const commonHeaders: Record<string, string> = {
      ...ids,
      'x-ms-region': 'Stand-in Region',
      'x-content-type-options': 'nosniff',
      ...(options.tls ? { 'strict-transport-security': 'max-age=31536000; includeSubDomains; preload' } : {}),
    };
    const fail = (answer: azure.AzureErrorAnswer, extra: Record<string, string> = {}): void => {
      const body = JSON.stringify(answer.body);
      res.writeHead(answer.status, {
        ...commonHeaders,
        ...answer.headers,
        ...extra,
        'content-type': 'application/json',
        'content-length': String(Buffer.byteLength(body)),
      });
      res.end(body);
    };

    const url = new URL(req.url ?? '/', 'http://standin.invalid');
    const route = ROUTE.exec(url.pathname);
    if (req.method !== 'POST' || !route) return fail(azure.resourceNotFound());
    const apiVersion = url.searchParams.get('api-version');
    if (!apiVersion) return fail(azure.resourceNotFound());
    if (!SUPPORTED_API_VERSIONS.has(apiVersion)) return fail(azure.apiVersionNotSupported());

    const auth = authenticate(req.headers, keyDigest);
    if (auth !== 'ok') return fail(auth === 'bearer' ? azure.invalidBearerToken() : azure.invalidSubscriptionKey());

    let deployment: string;
    try {
      deployment = decodeURIComponent(route[1] ?? '');
    } catch {
      return fail(azure.deploymentNotFound());
    }
    const model = Object.hasOwn(deployments, deployment) ? deployments[deployment] : undefined;
    if (model === undefined) return fail(azure.deploymentNotFound());

    if (limiter) {
      const decision = limiter.take(deployment);
      if (!decision.allowed) return fail(azure.rateLimited(apiVersion, decision.retryAfterSeconds));
      commonHeaders['x-ratelimit-remaining-requests'] = String(decision.remaining);
    }

    const raw = await readBody(req, MAX_REQUEST_BODY_BYTES);
    if (raw === 'too-large') return fail(azure.bodyTooLarge(MAX_REQUEST_BODY_BYTES), { connection: 'close' });
    if (raw === 'aborted') return;
    const request = parseChatRequest(raw);
    if ('error' in request) return fail(request.error);

    const faults = faultsFor(req.headers, options);
    if ('error' in faults) return fail(azure.invalidRequest(faults.error));

    const plan = planCompletion(request.messages, deployment, model, request.maxTokens, now());
    const writer = new FaultyBodyWriter(res, rawSocketOf(req.socket), faults.abortAfterBytes);

    if (!request.stream) {
      const body = JSON.stringify(chatCompletion(plan));
      res.writeHead(200, {
        ...commonHeaders,
        'content-type': 'application/json',
        'content-length': String(Buffer.byteLength(body)),
      });
      if (await writer.write(body)) writer.end();
      return;
    }

    res.writeHead(200, { ...commonHeaders, 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
    const events = chatCompletionChunks(plan, request.includeUsage).map((chunk) => JSON.stringify(chunk));
    events.push('[DONE]');
    for (const [index, event] of events.entries()) {
      if (index > 0) await writer.pause(faults.chunkDelayMs);
      if (!(await writer.write(`data: ${event}\n\n`))) return;
    }
    writer.end();
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
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

function peerKey(socket: Socket): string {
  return `${socket.remoteAddress}|${socket.remotePort}`;
}

/** 'ok', or which credential was missing or wrong ('key' covers "none at all", as Azure does). */
function authenticate(headers: http.IncomingHttpHeaders, keyDigest: Buffer): 'ok' | 'key' | 'bearer' {
  const apiKeyHeader = headers['api-key'];
  if (typeof apiKeyHeader === 'string' && apiKeyHeader.length > 0) {
    // Compare digests in constant time so the comparison leaks nothing about the key.
    return timingSafeEqual(sha256(apiKeyHeader), keyDigest) ? 'ok' : 'key';
  }
  const authorization = headers.authorization;
  if (typeof authorization === 'string' && /^bearer\s+/i.test(authorization)) {
    const token = authorization.replace(/^bearer\s+/i, '').trim();
    return timingSafeEqual(sha256(token), keyDigest) ? 'ok' : 'bearer';
  }
  return 'key';
}

function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer | 'too-large' | 'aborted'> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();
    return Promise.resolve('too-large');
  }
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    let size = 0;
    let settled = false;
    const settle = (value: Buffer | 'too-large' | 'aborted'): void => {
      if (!settled) {
        settled = true;
        resolve(value);
      }
    };
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.pause();
        settle('too-large');
        return;
      }
      parts.push(chunk);
    });
    req.on('end', () => settle(Buffer.concat(parts, size)));
    req.on('error', () => settle('aborted'));
    req.on('close', () => settle('aborted'));
  });
}

interface ChatRequest {
  readonly messages: ChatMessage[];
  readonly stream: boolean;
  readonly includeUsage: boolean;
  readonly maxTokens: number | undefined;
}

/** Validates the fields the stand-in uses; messages mirror the OpenAI backend's wording. */
export function parseChatRequest(raw: Buffer): ChatRequest | { error: azure.AzureErrorAnswer } {
  let body: unknown;
  try {
    body = JSON.parse(raw.toString('utf8'));
  } catch {
    return { error: azure.unparsableJsonBody() };
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return { error: azure.invalidRequest('Invalid type for request body: expected an object.') };
  }
  const fields = body as Record<string, unknown>;
  if (fields.messages === undefined) {
    return { error: azure.invalidRequest("Missing required parameter: 'messages'.", 'messages') };
  }
  if (!Array.isArray(fields.messages) || fields.messages.length === 0) {
    return { error: azure.invalidRequest("Invalid 'messages': expected a non-empty array.", 'messages') };
  }
  const messages: ChatMessage[] = [];
  for (const [index, message] of fields.messages.entries()) {
    const role = typeof message === 'object' && message !== null ? (message as { role?: unknown }).role : undefined;
    if (typeof role !== 'string' || !VALID_ROLES.has(role)) {
      return { error: azure.invalidRequest(`Invalid value for 'messages[${index}].role'.`, `messages[${index}].role`) };
    }
    messages.push({ role, content: (message as { content?: unknown }).content });
  }
  if (fields.stream !== undefined && fields.stream !== null && typeof fields.stream !== 'boolean') {
    return { error: azure.invalidRequest("Invalid type for 'stream': expected a boolean.", 'stream') };
  }
  const stream = fields.stream === true;
  const streamOptions = fields.stream_options;
  if (streamOptions !== undefined && streamOptions !== null && !stream) {
    return { error: azure.invalidRequest('The \'stream_options\' parameter is only allowed when \'stream\' is enabled.', 'stream_options') };
  }
  const includeUsage =
    typeof streamOptions === 'object' && streamOptions !== null && (streamOptions as { include_usage?: unknown }).include_usage === true;
  const maxTokensField = fields.max_completion_tokens ?? fields.max_tokens;
  if (maxTokensField !== undefined && maxTokensField !== null && !(Number.isInteger(maxTokensField) && (maxTokensField as number) >= 1)) {
    return { error: azure.invalidRequest("Invalid 'max_tokens': expected an integer of at least 1.", 'max_tokens') };
  }
  return { messages, stream, includeUsage, maxTokens: (maxTokensField as number | null | undefined) ?? undefined };
}
