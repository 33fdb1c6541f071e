import { GATEWAY_RATE_WINDOW_MS } from '../../protocol/limits.js';
import { type Bucket, BUCKET_MS, type ScopeUsage, type UtcPeriods, WINDOW_SECONDS } from './limit-counters.js';

// One scope's counters checked against its limits, and the refusal that results: status, code,
// when a retry can succeed, and a message worded the way Azure words its own (the openai SDK
// shows it to the developer as is, so it says what happened and what to do). Pure: no I/O, the
// clock passed in.

/** A refusal's retry-after is never under this: a client told "0 s" spins. */
export const MIN_RETRY_AFTER_MS = 1_000;

/** All limit rules of one scope, merged (two rules for one identity: the lower limit of each kind applies). */
export interface ScopeLimits {
  /** limitScope(rule): `identity:I…` or `attribute:team=cardiology`; the counters' key. */
  readonly scope: string;
  /** `team=cardiology` for an attribute scope (its callers share one budget); undefined for an identity. */
  readonly attribute: string | undefined;
  tokensPerMinute: number | undefined;
  requestsPerMinute: number | undefined;
  tokensPerDay: number | undefined;
  tokensPerMonth: number | undefined;
}

export interface Refusal {
  status: 429 | 403;
  code: 'WICKET_ERR_GATEWAY_RATE_LIMITED' | 'WICKET_ERR_GATEWAY_QUOTA_EXCEEDED';
  retryAfterMs: number;
  message: string;
  scope: string;
}

/** The caller as messages name it: `identity I3f5c… (team=cardiology)`. */
function who(identifier: string, limits: ScopeLimits): string {
  const short = identifier.length > 5 ? `${identifier.slice(0, 5)}…` : identifier;
  return `identity ${short}${limits.attribute === undefined ? '' : ` (${limits.attribute})`}`;
}

function setBy(limits: ScopeLimits): string {
  return limits.attribute === undefined ? 'set by the outlet' : `set by the outlet for all callers with ${limits.attribute}`;
}

function plural(n: number, unit: string): string {
  return `${n} ${unit}${n === 1 ? '' : 's'}`;
}

/** A wait in words, coarse enough to read: "3 days 4 hours", "5 hours 3 minutes", "12 seconds". */
export function humanDuration(ms: number): string {
  const seconds = Math.ceil(ms / 1_000);
  const days = Math.floor(seconds / 86_400);
  const hours = Math.floor((seconds % 86_400) / 3_600);
  const minutes = Math.floor((seconds % 3_600) / 60);
  if (days > 0) return hours > 0 ? `${plural(days, 'day')} ${plural(hours, 'hour')}` : plural(days, 'day');
  if (hours > 0) return minutes > 0 ? `${plural(hours, 'hour')} ${plural(minutes, 'minute')}` : plural(hours, 'hour');
  if (minutes > 0) return plural(Math.ceil(seconds / 60), 'minute');
  return plural(seconds, 'second');
}

/**
 * The per-minute limits: refused when requests-in-window + 1 > requestsPerMinute or
 * tokens-in-window + estimate > tokensPerMinute. The retry time is when enough of the oldest
 * buckets have aged out for this request to fit; `buckets` is called only on a refusal (the
 * admitted path reads sums only).
 */
export function checkPerMinute(identifier: string, limits: ScopeLimits, usage: ScopeUsage, estimate: number, now: number, buckets: () => Bucket[]): Refusal | undefined {
  const tpm = limits.tokensPerMinute;
  const rpm = limits.requestsPerMinute;
  const tokensOver = tpm !== undefined && usage.windowTokens + estimate > tpm;
  const requestsOver = rpm !== undefined && usage.windowRequests + 1 > rpm;
  if (!tokensOver && !requestsOver) return undefined;

  if (tpm !== undefined && estimate > tpm) {
    // No amount of waiting fits it; the whole window is the honest retry-after (the limit may be
    // raised meanwhile), and the message says to make the request smaller.
    return {
      status: 429,
      code: 'WICKET_ERR_GATEWAY_RATE_LIMITED',
      retryAfterMs: GATEWAY_RATE_WINDOW_MS,
      scope: limits.scope,
      message:
        `A request to this deployment from ${who(identifier, limits)} needs about ${estimate} tokens, more than the token rate limit ` +
        `of ${tpm} tokens per minute ${setBy(limits)}, so it cannot be admitted as it is. Shorten the prompt or lower max_tokens, ` +
        `or ask the outlet's operator to raise tokensPerMinute.`,
    };
  }

  // Oldest first: bucket s stops counting at the instant (s + WINDOW_SECONDS) seconds.
  let tokens = usage.windowTokens;
  let requests = usage.windowRequests;
  let fitsAt = now + GATEWAY_RATE_WINDOW_MS;
  for (const bucket of buckets()) {
    tokens -= bucket.tokens;
    requests -= bucket.requests;
    if ((tpm === undefined || tokens + estimate <= tpm) && (rpm === undefined || requests + 1 <= rpm)) {
      fitsAt = (bucket.second + WINDOW_SECONDS) * BUCKET_MS;
      break;
    }
  }
  const retryAfterMs = Math.max(MIN_RETRY_AFTER_MS, fitsAt - now);
  const exceeded = [
    ...(requestsOver ? [`request rate limit of ${rpm} requests per minute`] : []),
    ...(tokensOver ? [`token rate limit of ${tpm} tokens per minute`] : []),
  ].join(' and the ');
  return {
    status: 429,
    code: 'WICKET_ERR_GATEWAY_RATE_LIMITED',
    retryAfterMs,
    scope: limits.scope,
    message:
      `Requests to this deployment from ${who(identifier, limits)} have exceeded the ${exceeded} ${setBy(limits)}. ` +
      `Please retry after ${plural(Math.ceil(retryAfterMs / 1_000), 'second')}.`,
  };
}

function quotaRefusal(identifier: string, limits: ScopeLimits, kind: 'daily' | 'monthly', quota: number, used: number, estimate: number, endsAt: number, now: number): Refusal {
  const field = kind === 'daily' ? 'tokensPerDay' : 'tokensPerMonth';
  const resetsAt = new Date(endsAt).toISOString().replace('.000Z', 'Z');
  const retryAfterMs = Math.max(MIN_RETRY_AFTER_MS, endsAt - now);
  const what =
    estimate > quota
      ? `A request to this deployment from ${who(identifier, limits)} needs about ${estimate} tokens, more than the whole ${kind} token quota of ${quota} tokens ${setBy(limits)}.`
      : `Requests to this deployment from ${who(identifier, limits)} have used the ${kind} token quota of ${quota} tokens ${setBy(limits)} ` +
        `(${used} used${estimate > 0 ? `, this request needs about ${estimate} more` : ''}).`;
  return {
    status: 403,
    code: 'WICKET_ERR_GATEWAY_QUOTA_EXCEEDED',
    retryAfterMs,
    scope: limits.scope,
    message: `${what} The quota resets at ${resetsAt} (in ${humanDuration(retryAfterMs)}); retry after that, or ask the outlet's operator to raise ${field}.`,
  };
}

/** The UTC day and month quotas: refused (403) when period tokens + estimate > quota; the month wins a tie (it lasts longer). */
export function checkQuotas(identifier: string, limits: ScopeLimits, usage: ScopeUsage, estimate: number, now: number, periods: UtcPeriods): Refusal | undefined {
  const { tokensPerDay, tokensPerMonth } = limits;
  if (tokensPerMonth !== undefined && usage.monthTokens + estimate > tokensPerMonth) {
    return quotaRefusal(identifier, limits, 'monthly', tokensPerMonth, usage.monthTokens, estimate, periods.monthEndsAt, now);
  }
  if (tokensPerDay !== undefined && usage.dayTokens + estimate > tokensPerDay) {
    return quotaRefusal(identifier, limits, 'daily', tokensPerDay, usage.dayTokens, estimate, periods.dayEndsAt, now);
  }
  return undefined;
}

/** Of two refusals, the one that decides when a retry can succeed: the longer wait (a quota on a tie). */
export function decisive(a: Refusal | undefined, b: Refusal | undefined): Refusal | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  if (a.retryAfterMs !== b.retryAfterMs) return a.retryAfterMs > b.retryAfterMs ? a : b;
  return b.status === 403 && a.status !== 403 ? b : a;
}
