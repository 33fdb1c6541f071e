import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { GATEWAY_MAX_REQUEST_BODY_BYTES } from '../../protocol/limits.js';
import type { Policy } from '../../protocol/policy.js';
import { relayAnswer, type RelayOutcome } from './answer-relay.js';
import type { Backend, BackendAnswer } from './backend.js';
import { type AttemptTally, attemptBackend, coolingError, exhaustedError } from './backend-attempt.js';
import type { BackendPool } from './backend-pool.js';
import type { ByteBudget } from './byte-budget.js';
import type { ContentLog } from './content-log.js';
import { type GatewayErrorAnswer, retryHeaders, sendGatewayError, withFix } from './gateway-errors.js';
import { backendRequestHeaders } from './gateway-headers.js';
import type { Caller, GatewayLimits, Remaining, Reservation } from './gateway-limits.js';
import type { GatewayMetrics } from './gateway-metrics.js';
import { classifyRequest, type OpenAiRoute, prepareBody, type PreparedBody } from './openai-request.js';
import { estimateTokens } from './prompt-estimate.js';
import { readRequestBody } from './request-body.js';
import type { UsageLedger } from './usage-ledger.js';
import type { UsageRow } from './usage-row.js';

// One app request through the gateway, in order:
//   1. read the body (≤ GATEWAY_MAX_REQUEST_BODY_BYTES, within the front's deadline)
//   2. deployment policy: a deployment listed in gateway.deployments needs its policy  → 403
//   3. limits: estimated tokens and one request against every matching rule            → 429 / 403
//   4. backends in the pool's order (backend-attempt.ts says which failures move to the next) —
//      all before the first byte to the app; none left → 502 / 503 (all cooling, retry-after)
//   5. the answer to the app, read on the way for usage; then the real tokens are charged
//      and one ledger row is queued — for every request, refused ones included.
// An answer the backend gave is charged even when the app leaves before its end or the backend
// cuts it: its real usage when the gateway saw it, else the estimate. Hanging up early must not
// make a stream free.

export interface GatewayParts {
  outlet: string;
  pool: BackendPool;
  limits: GatewayLimits;
  /**
   * Deployment name (lower case) → the policy its callers must satisfy; the backends' own names
   * for a reserved deployment (their `deployments` maps) carry its policy too.
   */
  deploymentPolicies: ReadonlyMap<string, Policy>;
  /** Request bodies held at once by this gateway's requests: past it a request is 503 (memory stays bounded). */
  bodyBudget: ByteBudget;
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
  /** The status the backend answered with (the row's status is the app's: 499 when it left). */
  backendStatus: number | undefined;
  /** Body bytes taken from the gateway's budget, given back when the request is recorded. */
  bodyBytes: number;
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
    backendStatus: undefined,
    bodyBytes: 0,
  };
  try {
    await handle(parts, req, res, caller, deadline, route, exchange);
  } catch (err) {
    parts.logger.error({ err: err instanceof Error ? err.message : String(err), code: 'WICKET_ERR_INTERNAL' }, 'gateway request failed');
    refuse(exchange, res, { status: 500, code: 'WICKET_ERR_INTERNAL', message: withFix('WICKET_ERR_INTERNAL', 'WICKET_ERR_INTERNAL: the gateway failed on this request.') });
  } finally {
    record(parts, exchange);
  }
}

async function handle(parts: GatewayParts, req: IncomingMessage, res: ServerResponse, caller: Caller, deadline: AbortSignal, route: OpenAiRoute, exchange: Exchange): Promise<void> {
  const { row } = exchange;
  if (route.operation !== 'other' && !identityEncoded(req.headers['content-encoding'])) {
    // A compressed body cannot be read for its tokens or deployment, yet the backend would inflate it.
    // It is not read at all, so the connection cannot carry another request.
    res.shouldKeepAlive = false;
    refuse(exchange, res, { status: 415, code: 'WICKET_ERR_HTTP_REQUEST', message: 'WICKET_ERR_HTTP_REQUEST: the gateway reads request bodies to count and limit them; send it without Content-Encoding.' });
    return;
  }
  const read = await readRequestBody(req, GATEWAY_MAX_REQUEST_BODY_BYTES, deadline, parts.bodyBudget);
  exchange.bodyBytes = read.held;
  if (read.kind === 'busy') {
    res.shouldKeepAlive = false;
    refuse(exchange, res, { status: 503, code: 'WICKET_ERR_TARGET_BUSY', message: withFix('WICKET_ERR_TARGET_BUSY', 'WICKET_ERR_TARGET_BUSY: the gateway holds as many request bodies as its memory budget allows. Please retry after 1 second.'), headers: retryHeaders(1_000) });
    return;
  }
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
  const plan = parts.pool.plan();
  if (plan.length === 0) {
    refuse(exchange, res, coolingError(parts.pool));
    return;
  }
  // The app leaving aborts the backend request (and the answer being relayed).
  const appLeft = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) appLeft.abort();
  });
  const request = { method: req.method ?? 'POST', route, prepared: exchange.prepared!, raw, headers: backendRequestHeaders(req.headers), signal: appLeft.signal };
  const tally: AttemptTally = { unreachable: 0, failing: 0, throttled: 0, auth: 0 };
  let chosen: { backend: Backend; answer: BackendAnswer } | undefined;
  let index = 0;
  for (; index < plan.length && chosen === undefined && !appLeft.signal.aborted; index++) {
    const result = await attemptBackend(plan[index]!, request, tally, parts.logger);
    if (result.kind === 'answer') chosen = { backend: plan[index]!, answer: result.answer };
    else if (result.kind === 'stop') {
      index++;
      for (; index < plan.length; index++) plan[index]!.breaker.abandon();
      refuse(exchange, res, result.error);
      return;
    }
  }
  // Backends planned but not tried give back the trial slot a half-open breaker lent them now,
  // not after a minutes-long answer: meanwhile other requests may try them.
  for (; index < plan.length; index++) plan[index]!.breaker.abandon();
  if (chosen !== undefined) {
    await deliver(parts, res, chosen.backend, chosen.answer, exchange, remaining);
    return;
  }
  if (appLeft.signal.aborted) {
    exchange.row.status = APP_LEFT;
    return;
  }
  refuse(exchange, res, exhaustedError(parts.pool, tally));
}

async function deliver(parts: GatewayParts, res: ServerResponse, backend: Backend, answer: BackendAnswer, exchange: Exchange, remaining: Remaining): Promise<void> {
  const { row } = exchange;
  row.backend = backend.spec.name;
  const requestId = answer.headers['x-request-id'] ?? answer.headers['apim-request-id'];
  row.requestId = typeof requestId === 'string' ? requestId.slice(0, 128) : null;
  row.status = answer.status;
  exchange.backendStatus = answer.status;
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

function remainingHeaders(remaining: Remaining): Record<string, string> {
  const headers: Record<string, string> = {};
  if (remaining.tokens !== undefined) headers['x-ratelimit-remaining-tokens'] = String(Math.max(0, remaining.tokens));
  if (remaining.requests !== undefined) headers['x-ratelimit-remaining-requests'] = String(Math.max(0, remaining.requests));
  return headers;
}

function identityEncoded(encoding: string | undefined): boolean {
  return encoding === undefined || encoding.trim() === '' || encoding.trim().toLowerCase() === 'identity';
}

function describeAttributes(caller: Caller): string {
  const entries = Object.entries(caller.attributes);
  return entries.length === 0 ? 'no attributes' : entries.map(([k, v]) => (v === '' || v === 'true' ? k : `${k}=${v}`)).join(', ');
}

/** Codes of requests the gateway refused by its own limits or policy (the refusals metric). */
const REFUSAL_CODES: ReadonlySet<string> = new Set(['WICKET_ERR_GATEWAY_RATE_LIMITED', 'WICKET_ERR_GATEWAY_QUOTA_EXCEEDED', 'WICKET_ERR_GATEWAY_DENIED']);

/** The answer is over: charge the real tokens, queue the ledger row, count the metrics, log the content. */
function record(parts: GatewayParts, exchange: Exchange): void {
  const { row } = exchange;
  row.latencyMs = Math.round(performance.now() - exchange.startedAt);
  if (row.status === 0) row.status = APP_LEFT;
  parts.bodyBudget.give(exchange.bodyBytes);
  if (exchange.reservation !== undefined) {
    // Known usage is charged; unknown usage of an answer the backend gave keeps the estimate
    // (the app may have left, or the backend cut the stream: the tokens were spent); a request no
    // backend answered is refunded.
    const answered = exchange.backendStatus !== undefined && exchange.backendStatus < 400;
    const charged = row.totalTokens ?? (answered ? exchange.estimate : 0);
    try {
      parts.limits.settle(exchange.reservation, charged);
    } catch (err) {
      // The request is over; a counter that cannot be corrected now costs the caller at most this estimate.
      parts.logger.error({ code: 'WICKET_ERR_GATEWAY_COUNTERS', reason: err instanceof Error ? err.message : String(err) }, 'gateway could not charge a request to its limit counters');
    }
  }
  parts.ledger.record(row);
  parts.metrics?.request(parts.outlet, row);
  if (row.code !== null && REFUSAL_CODES.has(row.code)) parts.metrics?.refused(parts.outlet, row.code);
  parts.contentLog?.write({
    at: row.at, outlet: row.outlet, identity: row.identity, attributes: row.attributes, deployment: row.deployment,
    operation: row.operation, status: row.status, requestBody: exchange.prepared?.json ?? null, responseText: exchange.responseText,
  });
}
