import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { type ErrorCode, isWicketError } from '../../protocol/errors.js';
import { GATEWAY_DEFAULT_RETRY_AFTER_MS, GATEWAY_MAX_REQUEST_BODY_BYTES } from '../../protocol/limits.js';
import type { Policy } from '../../protocol/policy.js';
import { relayAnswer, type RelayOutcome } from './answer-relay.js';
import { type Backend, type BackendAnswer, retryAfterMs } from './backend.js';
import type { BackendPool } from './backend-pool.js';
import type { ContentLog } from './content-log.js';
import { type GatewayErrorAnswer, sendGatewayError, withFix } from './gateway-errors.js';
import { backendRequestHeaders } from './gateway-headers.js';
import type { Caller, GatewayLimits, Remaining, Reservation } from './gateway-limits.js';
import type { GatewayMetrics } from './gateway-metrics.js';
import { backendRequest, classifyRequest, type OpenAiRoute, prepareBody, type PreparedBody } from './openai-request.js';
import { estimateTokens } from './prompt-estimate.js';
import { readRequestBody } from './request-body.js';
import type { UsageLedger } from './usage-ledger.js';
import type { UsageRow } from './usage-row.js';

// One app request through the gateway, in order:
//   1. read the body (≤ GATEWAY_MAX_REQUEST_BODY_BYTES, within the front's deadline)
//   2. deployment policy: a deployment listed in gateway.deployments needs its policy  → 403
//   3. limits: estimated tokens and one request against every matching rule            → 429 / 403
//   4. backends in the pool's order; a connection failure, 5xx or 429 moves to the next
//      (429 cools that backend for its retry-after) — all before the first byte to the app;
//      none left → 502 (unreachable / failing) or 503 (all cooling, with retry-after)
//   5. the answer to the app, read on the way for usage; then the real tokens are charged
//      and one ledger row is queued — for every request, refused ones included.

export interface GatewayParts {
  outlet: string;
  pool: BackendPool;
  limits: GatewayLimits;
  /** Deployment name (lower case) → the policy its callers must satisfy. */
  deploymentPolicies: ReadonlyMap<string, Policy>;
  ledger: UsageLedger;
  contentLog: ContentLog | undefined;
  metrics: GatewayMetrics | undefined;
  logger: Logger;
}

/** The status an app that left before its answer is recorded with (nginx's "client closed request"). */
const APP_LEFT = 499;

interface Exchange {
  row: UsageRow;
  startedAt: number;
  reservation: Reservation | undefined;
  estimate: number;
  prepared: PreparedBody | undefined;
  responseText: string;
}

export async function serveGatewayRequest(parts: GatewayParts, req: IncomingMessage, res: ServerResponse, caller: Caller, deadline: AbortSignal): Promise<void> {
  const route = classifyRequest(req.method, req.url ?? '/');
  const exchange: Exchange = {
    row: {
      at: Date.now(), outlet: parts.outlet, identity: caller.identifier, attributes: { ...caller.attributes },
      deployment: route.pathDeployment, model: null, operation: route.operation, stream: false, status: 0, code: null,
      promptTokens: null, completionTokens: null, totalTokens: null, latencyMs: 0, ttftMs: null, backend: null, requestId: null,
    },
    startedAt: performance.now(),
    reservation: undefined,
    estimate: 0,
    prepared: undefined,
    responseText: '',
  };
  try {
    await answer(parts, req, res, caller, deadline, route, exchange);
  } catch (err) {
    parts.logger.error({ err: err instanceof Error ? err.message : String(err), code: 'WICKET_ERR_INTERNAL' }, 'gateway request failed');
    refuse(exchange, res, { status: 500, code: 'WICKET_ERR_INTERNAL', message: withFix('WICKET_ERR_INTERNAL', 'WICKET_ERR_INTERNAL: the gateway failed on this request.') });
  } finally {
    record(parts, exchange);
  }
}

async function answer(parts: GatewayParts, req: IncomingMessage, res: ServerResponse, caller: Caller, deadline: AbortSignal, route: OpenAiRoute, exchange: Exchange): Promise<void> {
  const { row } = exchange;
  const read = await readRequestBody(req, GATEWAY_MAX_REQUEST_BODY_BYTES, deadline);
  if (read.kind === 'aborted') {
    row.status = APP_LEFT;
    return;
  }
  if (read.kind !== 'body') {
    // The rest of the body is not read: the connection cannot carry another request.
    res.shouldKeepAlive = false;
    const tooLarge = read.kind === 'too-large';
    refuse(exchange, res, {
      status: tooLarge ? 413 : 408,
      code: 'WICKET_ERR_HTTP_REQUEST',
      message: tooLarge
        ? `WICKET_ERR_HTTP_REQUEST: the request body is larger than the gateway's ${GATEWAY_MAX_REQUEST_BODY_BYTES} bytes.`
        : 'WICKET_ERR_HTTP_REQUEST: the request body did not arrive in time; the stream is closed.',
    });
    return;
  }
  const raw = read.body;
  const prepared = prepareBody(route, raw);
  exchange.prepared = prepared;
  row.deployment = prepared.deployment;
  row.stream = prepared.stream;

  // A request that names its deployment in a body the gateway cannot read (not JSON: a multipart
  // upload, say) could name a reserved one unseen: with reserved deployments, it is refused.
  if (route.deploymentIn === 'body' && prepared.deployment === null && parts.deploymentPolicies.size > 0) {
    refuse(exchange, res, {
      status: 403,
      code: 'WICKET_ERR_GATEWAY_DENIED',
      message: withFix('WICKET_ERR_GATEWAY_DENIED', 'WICKET_ERR_GATEWAY_DENIED: this outlet reserves some deployments, and the deployment this request names (the JSON body\'s "model") cannot be read; send a JSON body with a "model" string.'),
    });
    return;
  }
  const policy = prepared.deployment === null ? undefined : parts.deploymentPolicies.get(prepared.deployment.toLowerCase());
  if (policy !== undefined && !policy.allows(caller)) {
    refuse(exchange, res, {
      status: 403,
      code: 'WICKET_ERR_GATEWAY_DENIED',
      message: withFix('WICKET_ERR_GATEWAY_DENIED', `WICKET_ERR_GATEWAY_DENIED: identity ${caller.identifier} (${describeAttributes(caller)}) may not use deployment ${prepared.deployment}: it needs ${JSON.stringify(policy.source)}.`),
    });
    return;
  }

  exchange.estimate = estimateTokens(route.operation, prepared.json);
  let admission;
  try {
    admission = parts.limits.admit(caller, exchange.estimate);
  } catch (err) {
    // Budgets cannot be checked: refuse (closed) rather than let a caller spend without a count.
    parts.logger.error({ code: 'WICKET_ERR_GATEWAY_COUNTERS', reason: err instanceof Error ? err.message : String(err) }, 'gateway limit counters failed');
    refuse(exchange, res, { status: 503, code: 'WICKET_ERR_GATEWAY_COUNTERS', message: withFix('WICKET_ERR_GATEWAY_COUNTERS', 'WICKET_ERR_GATEWAY_COUNTERS: the gateway could not check its limit counters. Please retry after 1 second.'), headers: retryHeaders(1_000) });
    return;
  }
  if (!admission.allowed) {
    refuse(exchange, res, {
      status: admission.status,
      code: admission.code,
      message: `${admission.code}: ${admission.message}`,
      headers: { ...retryHeaders(admission.retryAfterMs), ...remainingHeaders(admission.remaining) },
    });
    return;
  }
  exchange.reservation = admission.reservation;
  await forward(parts, req, res, route, raw, exchange, admission.remaining);
}

async function forward(parts: GatewayParts, req: IncomingMessage, res: ServerResponse, route: OpenAiRoute, raw: Buffer, exchange: Exchange, remaining: Remaining): Promise<void> {
  const prepared = exchange.prepared!;
  const plan = parts.pool.plan();
  if (plan.length === 0) {
    refuse(exchange, res, cooling(parts.pool));
    return;
  }
  // The app leaving aborts the backend request (and the answer being relayed).
  const appLeft = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) appLeft.abort();
  });
  const headers = backendRequestHeaders(req.headers);
  const seen = { unreachable: 0, failing: 0, throttled: 0, auth: 0 };
  let index = 0;
  try {
    for (; index < plan.length && !appLeft.signal.aborted; index++) {
      const backend = plan[index]!;
      const answer = await attempt(parts, backend, req.method ?? 'POST', route, prepared, raw, headers, appLeft.signal, seen);
      if (answer === undefined) continue;
      index++;
      await deliver(parts, res, backend, answer, exchange, remaining);
      return;
    }
  } finally {
    // Backends planned but not tried give back the trial slot a half-open breaker lent them.
    for (; index < plan.length; index++) plan[index]!.breaker.abandon();
  }
  if (appLeft.signal.aborted) {
    exchange.row.status = APP_LEFT;
    return;
  }
  refuse(exchange, res, exhausted(parts.pool, seen));
}

/** One backend: its answer to pass on, or undefined to try the next (and why, counted in `seen`). */
async function attempt(
  parts: GatewayParts, backend: Backend, method: string, route: OpenAiRoute, prepared: PreparedBody, raw: Buffer,
  headers: Record<string, string>, signal: AbortSignal, seen: { unreachable: number; failing: number; throttled: number; auth: number },
): Promise<BackendAnswer | undefined> {
  const log = parts.logger;
  let authorization;
  try {
    authorization = await backend.credential.authorize();
  } catch (err) {
    seen.auth++;
    backend.breaker.abandon();
    backend.noteFailure(err instanceof Error ? err.message : String(err), 'failure');
    log.warn({ backend: backend.spec.name, code: isWicketError(err) ? err.code : 'WICKET_ERR_BACKEND_AUTH' }, 'no backend credential; trying the next backend');
    return undefined;
  }
  const { target, body } = backendRequest(route, prepared, raw, backend.spec.deployments);
  const sent: Record<string, string> = { ...headers, 'content-length': String(body.length) };
  if (authorization !== undefined) sent[authorization.name] = authorization.value;
  let answer: BackendAnswer;
  try {
    answer = await backend.send(method, target, sent, body, signal);
  } catch (err) {
    if (signal.aborted) {
      backend.breaker.abandon();
      return undefined;
    }
    seen.unreachable++;
    backend.breaker.failure();
    const reason = err instanceof Error ? `${(err as NodeJS.ErrnoException).code ?? ''} ${err.message}`.trim() : String(err);
    backend.noteFailure(`unreachable: ${reason}`, 'failure');
    log.warn({ backend: backend.spec.name, code: 'WICKET_ERR_BACKEND_UNREACHABLE', reason }, 'backend unreachable; trying the next backend');
    return undefined;
  }
  if (answer.status === 429) {
    const wait = retryAfterMs(answer.headers) ?? GATEWAY_DEFAULT_RETRY_AFTER_MS;
    seen.throttled++;
    backend.breaker.throttled(wait);
    backend.noteFailure(`429: cooling for ${wait} ms`, 'throttled');
    log.info({ backend: backend.spec.name, retryAfterMs: wait }, 'backend answered 429; cooling it and trying the next backend');
    answer.body.resume();
    return undefined;
  }
  if (answer.status >= 500 && answer.status !== 501) {
    seen.failing++;
    backend.breaker.failure();
    backend.noteFailure(`HTTP ${answer.status}`, 'failure');
    log.warn({ backend: backend.spec.name, status: answer.status, code: 'WICKET_ERR_BACKEND_FAILED' }, 'backend failed; trying the next backend');
    answer.body.resume();
    return undefined;
  }
  backend.breaker.success();
  return answer;
}

async function deliver(parts: GatewayParts, res: ServerResponse, backend: Backend, answer: BackendAnswer, exchange: Exchange, remaining: Remaining): Promise<void> {
  const { row } = exchange;
  row.backend = backend.spec.name;
  const requestId = answer.headers['x-request-id'] ?? answer.headers['apim-request-id'];
  row.requestId = typeof requestId === 'string' ? requestId.slice(0, 128) : null;
  row.status = answer.status;
  const outcome: RelayOutcome = await relayAnswer(answer, res, {
    hideStreamUsage: exchange.prepared?.usageInjected ?? false,
    extraHeaders: remainingHeaders(remaining),
    startedAt: exchange.startedAt,
    keepText: parts.contentLog?.maxEntryBytes ?? 0,
  });
  row.model = outcome.model;
  row.ttftMs = outcome.ttftMs;
  exchange.responseText = outcome.text;
  if (outcome.usage !== undefined) {
    row.promptTokens = outcome.usage.promptTokens;
    row.completionTokens = outcome.usage.completionTokens;
    row.totalTokens = outcome.usage.totalTokens;
  }
  if (outcome.appGone) row.status = APP_LEFT;
  if (outcome.cut) {
    row.code = 'WICKET_ERR_BACKEND_FAILED';
    backend.noteFailure('the answer broke off mid-body (the app\'s stream was reset, not retried)', 'failure');
    parts.logger.warn({ backend: backend.spec.name, code: 'WICKET_ERR_BACKEND_FAILED' }, 'backend answer broke off after the first byte reached the app; stream reset, not retried');
  }
}

function refuse(exchange: Exchange, res: ServerResponse, answer: GatewayErrorAnswer): void {
  exchange.row.status = answer.status;
  exchange.row.code = answer.code;
  sendGatewayError(res, answer);
}

function cooling(pool: BackendPool): GatewayErrorAnswer {
  const wait = Math.max(1_000, pool.soonestAvailableAt() - Date.now());
  return {
    status: 503,
    code: 'WICKET_ERR_BACKENDS_COOLING',
    message: `WICKET_ERR_BACKENDS_COOLING: every backend is cooling down after 429s or failures. Please retry after ${Math.ceil(wait / 1000)} seconds.`,
    headers: retryHeaders(wait),
  };
}

function exhausted(pool: BackendPool, seen: { unreachable: number; failing: number; throttled: number; auth: number }): GatewayErrorAnswer {
  if (seen.failing === 0 && seen.unreachable === 0 && seen.auth === 0) return cooling(pool);
  let code: ErrorCode = 'WICKET_ERR_BACKEND_FAILED';
  if (seen.failing === 0 && seen.unreachable > 0) code = 'WICKET_ERR_BACKEND_UNREACHABLE';
  if (seen.failing === 0 && seen.unreachable === 0) code = 'WICKET_ERR_BACKEND_AUTH';
  const tried = `tried ${seen.unreachable + seen.failing + seen.throttled + seen.auth} backend(s): ${seen.unreachable} unreachable, ${seen.failing} failing, ${seen.throttled} throttled, ${seen.auth} without a credential`;
  return { status: code === 'WICKET_ERR_BACKEND_AUTH' ? 503 : 502, code, message: withFix(code, `${code}: no backend answered (${tried}).`) };
}

function retryHeaders(ms: number): Record<string, string> {
  const wait = Math.max(0, Math.ceil(ms));
  return { 'retry-after': String(Math.max(1, Math.ceil(wait / 1000))), 'retry-after-ms': String(wait) };
}

function remainingHeaders(remaining: Remaining): Record<string, string> {
  const headers: Record<string, string> = {};
  if (remaining.tokens !== undefined) headers['x-ratelimit-remaining-tokens'] = String(Math.max(0, remaining.tokens));
  if (remaining.requests !== undefined) headers['x-ratelimit-remaining-requests'] = String(Math.max(0, remaining.requests));
  return headers;
}

function describeAttributes(caller: Caller): string {
  const entries = Object.entries(caller.attributes);
  return entries.length === 0 ? 'no attributes' : entries.map(([k, v]) => (v === '' || v === 'true' ? k : `${k}=${v}`)).join(', ');
}

/** The answer is over: charge the real tokens, queue the ledger row, count the metrics, log the content. */
function record(parts: GatewayParts, exchange: Exchange): void {
  const { row } = exchange;
  row.latencyMs = Math.round(performance.now() - exchange.startedAt);
  if (exchange.reservation !== undefined) {
    // Unknown usage: an answered request keeps its estimate; a failed one is refunded.
    const charged = row.totalTokens ?? (row.status < 400 && row.code === null ? exchange.estimate : 0);
    parts.limits.settle(exchange.reservation, charged);
  }
  if (row.status === 0) row.status = APP_LEFT;
  parts.ledger.record(row);
  parts.metrics?.request(parts.outlet, row);
  if (row.code !== null && row.status !== 500) parts.metrics?.refused(parts.outlet, row.code);
  parts.contentLog?.write({
    at: row.at, outlet: row.outlet, identity: row.identity, attributes: row.attributes, deployment: row.deployment,
    operation: row.operation, status: row.status, requestBody: exchange.prepared?.json ?? null, responseText: exchange.responseText,
  });
}
