import type { Logger } from 'pino';
import { type ErrorCode, isWicketError } from '../../protocol/errors.js';
import { GATEWAY_DEFAULT_RETRY_AFTER_MS } from '../../protocol/limits.js';
import { type Backend, type BackendAnswer, retryAfterMs } from './backend.js';
import type { BackendPool } from './backend-pool.js';
import { type GatewayErrorAnswer, retryHeaders, withFix } from './gateway-errors.js';
import { backendRequest, type OpenAiRoute, type PreparedBody } from './openai-request.js';

// One try of one backend for one request, and what the pool's failures add up to when no backend
// answered. Before the first byte reaches the app, a backend that cannot serve is left for the
// next: a connection that fails to open, a 5xx, a 429 (cooling it for its retry-after), a 401/403
// (the backend refused the OUTLET's credential: the app's key never reaches it, so passing Azure's
// "invalid subscription key" on would send the app hunting for the wrong mistake). A backend that
// took the request and then said nothing within the head timeout may be working on it: trying
// another would run (and bill) it twice, so that is a 504, not a failover.

/** Why the backends tried did not answer. */
export interface AttemptTally {
  unreachable: number;
  failing: number;
  throttled: number;
  auth: number;
}

export type AttemptResult = { kind: 'answer'; answer: BackendAnswer } | { kind: 'next' } | { kind: 'stop'; error: GatewayErrorAnswer };

/** undici's codes for "the request was sent and no answer head came in time". */
const ANSWER_TIMEOUTS = new Set(['UND_ERR_HEADERS_TIMEOUT']);

export interface AttemptRequest {
  method: string;
  route: OpenAiRoute;
  prepared: PreparedBody;
  raw: Buffer;
  headers: Record<string, string>;
  signal: AbortSignal;
}

export async function attemptBackend(backend: Backend, request: AttemptRequest, tally: AttemptTally, log: Logger): Promise<AttemptResult> {
  const name = backend.spec.name;
  let authorization;
  try {
    authorization = await backend.credential.authorize();
  } catch (err) {
    tally.auth++;
    backend.breaker.abandon();
    backend.noteFailure(err instanceof Error ? err.message : String(err), 'failure');
    log.warn({ backend: name, code: isWicketError(err) ? err.code : 'WICKET_ERR_BACKEND_AUTH' }, 'no backend credential; trying the next backend');
    return { kind: 'next' };
  }
  const { target, body } = backendRequest(request.route, request.prepared, request.raw, backend.spec.deployments);
  const sent: Record<string, string> = { ...request.headers, 'content-length': String(body.length) };
  if (authorization !== undefined) sent[authorization.name] = authorization.value;
  let answer: BackendAnswer;
  try {
    answer = await backend.send(request.method, target, sent, body, request.signal);
  } catch (err) {
    if (request.signal.aborted) {
      backend.breaker.abandon();
      return { kind: 'next' };
    }
    const code = (err as NodeJS.ErrnoException).code ?? '';
    const reason = err instanceof Error ? `${code} ${err.message}`.trim() : String(err);
    backend.breaker.failure();
    if (ANSWER_TIMEOUTS.has(code)) {
      backend.noteFailure(`no answer head in time: ${reason}`, 'failure');
      log.warn({ backend: name, code: 'WICKET_ERR_BACKEND_FAILED', reason }, 'backend took the request and did not answer in time; not retried elsewhere');
      return { kind: 'stop', error: { status: 504, code: 'WICKET_ERR_BACKEND_FAILED', message: withFix('WICKET_ERR_BACKEND_FAILED', `WICKET_ERR_BACKEND_FAILED: backend ${name} took the request and did not answer in time; it was not sent to another backend, which would run it twice.`) } };
    }
    tally.unreachable++;
    backend.noteFailure(`unreachable: ${reason}`, 'failure');
    log.warn({ backend: name, code: 'WICKET_ERR_BACKEND_UNREACHABLE', reason }, 'backend unreachable; trying the next backend');
    return { kind: 'next' };
  }
  if (answer.status === 429) {
    const wait = retryAfterMs(answer.headers) ?? GATEWAY_DEFAULT_RETRY_AFTER_MS;
    tally.throttled++;
    backend.breaker.throttled(wait);
    backend.noteFailure(`429: cooling for ${wait} ms`, 'throttled');
    log.info({ backend: name, retryAfterMs: wait }, 'backend answered 429; cooling it and trying the next backend');
    answer.body.resume();
    return { kind: 'next' };
  }
  if (answer.status === 401 || answer.status === 403) {
    tally.auth++;
    backend.breaker.failure();
    backend.noteFailure(`HTTP ${answer.status}: the backend refused the outlet's credential (check its role assignment or key)`, 'failure');
    log.warn({ backend: name, status: answer.status, code: 'WICKET_ERR_BACKEND_AUTH' }, 'backend refused the outlet\'s credential; trying the next backend');
    answer.body.resume();
    return { kind: 'next' };
  }
  if (answer.status >= 500 && answer.status !== 501) {
    tally.failing++;
    backend.breaker.failure();
    backend.noteFailure(`HTTP ${answer.status}`, 'failure');
    log.warn({ backend: name, status: answer.status, code: 'WICKET_ERR_BACKEND_FAILED' }, 'backend failed; trying the next backend');
    answer.body.resume();
    return { kind: 'next' };
  }
  backend.breaker.success();
  return { kind: 'answer', answer };
}

/** Every backend cooling: 503 with the retry-after of the first to come back. */
export function coolingError(pool: BackendPool): GatewayErrorAnswer {
  const wait = Math.max(1_000, pool.soonestAvailableAt() - Date.now());
  return {
    status: 503,
    code: 'WICKET_ERR_BACKENDS_COOLING',
    message: `WICKET_ERR_BACKENDS_COOLING: every backend is cooling down after 429s or failures. Please retry after ${Math.ceil(wait / 1000)} seconds.`,
    headers: retryHeaders(wait),
  };
}

/** No backend answered: the error that names the likeliest cause. */
export function exhaustedError(pool: BackendPool, tally: AttemptTally): GatewayErrorAnswer {
  if (tally.failing === 0 && tally.unreachable === 0 && tally.auth === 0) return coolingError(pool);
  let code: ErrorCode = 'WICKET_ERR_BACKEND_FAILED';
  if (tally.failing === 0 && tally.unreachable > 0) code = 'WICKET_ERR_BACKEND_UNREACHABLE';
  if (tally.failing === 0 && tally.unreachable === 0) code = 'WICKET_ERR_BACKEND_AUTH';
  const tried = `tried ${tally.unreachable + tally.failing + tally.throttled + tally.auth} backend(s): ${tally.unreachable} unreachable, ${tally.failing} failing, ${tally.throttled} throttled, ${tally.auth} refused or without a credential`;
  return { status: code === 'WICKET_ERR_BACKEND_AUTH' ? 503 : 502, code, message: withFix(code, `${code}: no backend answered (${tried}).`) };
}
