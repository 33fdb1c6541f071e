import { wicketError } from '../../protocol/errors.js';
import { GATEWAY_MAX_TOKENS_PER_REQUEST } from '../../protocol/limits.js';
import { type LimitRuleSpec, limitScope } from './gateway-spec.js';
import { checkPerMinute, checkQuotas, decisive, type Refusal, type ScopeLimits } from './limit-checks.js';
import { bucketSecond, COUNTERS_ERROR, countersFailure, LimitCounters, type UtcPeriods, utcPeriods, WINDOW_SECONDS } from './limit-counters.js';

// The gateway's per-caller limits (DESIGN.md "The Azure OpenAI gateway"): rules match an identity
// or an attribute value (every caller with team=cardiology shares ONE budget); all matching rules
// apply. admit() checks every matched scope and reserves 1 request and the estimated tokens in
// each, atomically across the outlet processes sharing the counters file; settle() charges the
// difference once the real usage is known.
//
// Latency: a caller no rule matches costs two Map look-ups and no SQLite work. A matched caller
// costs one BEGIN IMMEDIATE transaction of three prepared statements per matched scope (read sums,
// add to the bucket, add to the day and month), plus a prune once per second per scope.

export interface Caller {
  identifier: string;
  attributes: Readonly<Record<string, string>>;
}

/** What admit() reserved; hand it back to settle() once. */
export interface Reservation {
  readonly scopes: readonly string[];
  /** The bucket (unix second) the request was counted in. */
  readonly second: number;
  readonly day: string;
  readonly month: string;
  readonly estimatedTokens: number;
}

/** Remaining of the tightest matched per-minute rule (x-ratelimit-remaining-*); undefined when no rule limits it. */
export interface Remaining {
  tokens?: number;
  requests?: number;
}

export type Admission =
  | { allowed: true; reservation: Reservation; remaining: Remaining }
  | (Refusal & { allowed: false; remaining: Remaining });

export interface ScopeUsageReport {
  scope: string;
  tokensLastMinute: number;
  requestsLastMinute: number;
  tokensToday: number;
  tokensThisMonth: number;
}

/**
 * A token count from the tokenizer or the backend's usage, made safe to store: NaN, negative or
 * non-numbers count as 0 (a broken count must not refund other requests' tokens), fractions round
 * up, and an absurd count (Infinity) is clamped, so it is refused as larger than any limit.
 */
export function normalizeTokens(value: number): number {
  if (typeof value !== 'number' || Number.isNaN(value) || value <= 0) return 0;
  return Math.min(GATEWAY_MAX_TOKENS_PER_REQUEST, Math.ceil(value));
}

const RATE_FIELDS = ['tokensPerMinute', 'requestsPerMinute', 'tokensPerDay', 'tokensPerMonth'] as const;

/** The rules merged by scope (two rules for one identity: the lower limit of each kind applies), keyed for matching. */
function mergeRules(rules: readonly LimitRuleSpec[]): { byIdentity: Map<string, ScopeLimits>; byAttribute: Map<string, Map<string, ScopeLimits>>; count: number } {
  const byScope = new Map<string, ScopeLimits>();
  const byIdentity = new Map<string, ScopeLimits>();
  const byAttribute = new Map<string, Map<string, ScopeLimits>>();
  rules.forEach((rule, i) => {
    const scope = limitScope(rule);
    let limits = byScope.get(scope);
    if (limits === undefined) {
      const attribute = 'identity' in rule ? undefined : `${rule.attribute}=${rule.value}`;
      limits = { scope, attribute, tokensPerMinute: undefined, requestsPerMinute: undefined, tokensPerDay: undefined, tokensPerMonth: undefined };
      byScope.set(scope, limits);
      if ('identity' in rule) {
        byIdentity.set(rule.identity, limits);
      } else {
        let values = byAttribute.get(rule.attribute);
        if (values === undefined) byAttribute.set(rule.attribute, (values = new Map()));
        values.set(rule.value, limits);
      }
    }
    for (const field of RATE_FIELDS) {
      const value = rule[field];
      if (value === undefined) continue;
      // The schema validated these; a rule built in code gets the same guard.
      if (!Number.isSafeInteger(value) || value < 1) throw wicketError('WICKET_ERR_ARGUMENT', `gateway limit rule ${i} (${scope}): ${field} must be a whole number >= 1`);
      const current = limits[field];
      limits[field] = current === undefined ? value : Math.min(current, value);
    }
  });
  return { byIdentity, byAttribute, count: byScope.size };
}

export class GatewayLimits {
  readonly #now: () => number;
  /** Absent when no rule is configured: nothing to count, and no file is created. */
  readonly #counters: LimitCounters | undefined;
  readonly #byIdentity: Map<string, ScopeLimits>;
  /** attribute name → value → scope; looked up by the configured names, so a caller's odd keys cost nothing. */
  readonly #byAttribute: Map<string, Map<string, ScopeLimits>>;
  /** Reservations admitted and not yet settled: settling twice, or someone else's, is a no-op. */
  readonly #pending = new WeakSet<Reservation>();
  /** Per scope, the second its old buckets were last pruned (bounded by the number of rules). */
  readonly #prunedAt = new Map<string, number>();
  #prunedDay = '';
  #periods: UtcPeriods | undefined;
  #closed = false;
  readonly #admitTx: ((caller: Caller, matched: ScopeLimits[], estimate: number, now: number) => Admission) | undefined;
  readonly #settleTx: ((reservation: Reservation, delta: number, inWindow: boolean) => void) | undefined;

  private constructor(path: string, rules: readonly LimitRuleSpec[], now: () => number) {
    this.#now = now;
    const { byIdentity, byAttribute, count } = mergeRules(rules);
    this.#byIdentity = byIdentity;
    this.#byAttribute = byAttribute;
    if (count === 0) return;
    const counters = LimitCounters.open(path);
    this.#counters = counters;
    this.#admitTx = counters.immediateTransaction((caller: Caller, matched: ScopeLimits[], estimate: number, at: number) => this.#admitLocked(counters, caller, matched, estimate, at));
    this.#settleTx = counters.immediateTransaction((reservation: Reservation, delta: number, inWindow: boolean) => {
      for (const scope of reservation.scopes) {
        if (inWindow) counters.correctBucket(scope, reservation.second, delta);
        // The periods the estimate went into: a request admitted on yesterday's budget is settled there.
        counters.correctPeriod(scope, reservation.day, delta);
        counters.correctPeriod(scope, reservation.month, delta);
      }
    });
  }

  /** Opens the counters at `path` (created 0600; shared with every outlet process that opens the same file). */
  static open(path: string, rules: readonly LimitRuleSpec[], options: { now?: () => number } = {}): GatewayLimits {
    return new GatewayLimits(path, rules, options.now ?? Date.now);
  }

  /** The scopes whose rules match the caller, identity first then attributes in configured order. */
  #match(caller: Caller): ScopeLimits[] | undefined {
    let matched: ScopeLimits[] | undefined;
    const identity = typeof caller.identifier === 'string' ? this.#byIdentity.get(caller.identifier) : undefined;
    if (identity !== undefined) matched = [identity];
    const attributes: unknown = caller.attributes;
    if (this.#byAttribute.size === 0 || typeof attributes !== 'object' || attributes === null) return matched;
    for (const [name, values] of this.#byAttribute) {
      if (!Object.hasOwn(attributes, name)) continue;
      const value: unknown = (attributes as Record<string, unknown>)[name];
      const limits = typeof value === 'string' ? values.get(value) : undefined;
      if (limits !== undefined) (matched ??= []).push(limits);
    }
    return matched;
  }

  /** Periods for `now`, recomputed only when the UTC day changes (or the clock steps back). */
  #periodsAt(now: number): UtcPeriods {
    const cached = this.#periods;
    if (cached !== undefined && now >= cached.dayStartsAt && now < cached.dayEndsAt) return cached;
    return (this.#periods = utcPeriods(now));
  }

  /**
   * Atomically (across processes sharing the file) checks every matched rule and, if all admit,
   * reserves 1 request and `estimatedTokens` in each. Throws WicketError (COUNTERS_ERROR) when
   * the counters cannot be read or written; the gateway decides whether that fails open or closed.
   */
  admit(caller: Caller, estimatedTokens: number): Admission {
    const estimate = normalizeTokens(estimatedTokens);
    const matched = this.#match(caller);
    const now = this.#now();
    if (matched === undefined) {
      return { allowed: true, reservation: { scopes: [], second: bucketSecond(now), day: '', month: '', estimatedTokens: estimate }, remaining: {} };
    }
    if (this.#closed || this.#admitTx === undefined) throw wicketError(COUNTERS_ERROR, 'limit counters are closed');
    try {
      return this.#admitTx(caller, matched, estimate, now);
    } catch (err) {
      throw countersFailure('admit', err);
    }
  }

  /** Inside BEGIN IMMEDIATE: read every scope, decide, and reserve in all or none. */
  #admitLocked(counters: LimitCounters, caller: Caller, matched: ScopeLimits[], estimate: number, now: number): Admission {
    const periods = this.#periodsAt(now);
    const second = bucketSecond(now);
    const from = second - WINDOW_SECONDS;
    if (this.#prunedDay !== periods.day) {
      counters.pruneAll(from, utcPeriods(periods.dayStartsAt - 1).day, utcPeriods(periods.monthStartsAt - 1).month);
      this.#prunedDay = periods.day;
    }
    let refusal: Refusal | undefined;
    let tokensLeft: number | undefined;
    let requestsLeft: number | undefined;
    for (const limits of matched) {
      const usage = counters.read(limits.scope, from, periods);
      refusal = decisive(refusal, checkPerMinute(caller.identifier, limits, usage, estimate, now, () => counters.buckets(limits.scope, from)));
      refusal = decisive(refusal, checkQuotas(caller.identifier, limits, usage, estimate, now, periods));
      // After this request if admitted; as it stands if refused (filled in below).
      if (limits.tokensPerMinute !== undefined) tokensLeft = Math.min(tokensLeft ?? Infinity, limits.tokensPerMinute - usage.windowTokens);
      if (limits.requestsPerMinute !== undefined) requestsLeft = Math.min(requestsLeft ?? Infinity, limits.requestsPerMinute - usage.windowRequests);
    }
    if (refusal !== undefined) {
      const remaining: Remaining = {};
      if (tokensLeft !== undefined) remaining.tokens = Math.max(0, tokensLeft);
      if (requestsLeft !== undefined) remaining.requests = Math.max(0, requestsLeft);
      return { ...refusal, allowed: false, remaining };
    }
    const scopes: string[] = [];
    for (const limits of matched) {
      counters.reserve(limits.scope, second, estimate, periods);
      if (this.#prunedAt.get(limits.scope) !== second) {
        counters.pruneScope(limits.scope, from);
        this.#prunedAt.set(limits.scope, second);
      }
      scopes.push(limits.scope);
    }
    const reservation: Reservation = Object.freeze({ scopes: Object.freeze(scopes), second, day: periods.day, month: periods.month, estimatedTokens: estimate });
    this.#pending.add(reservation);
    const remaining: Remaining = {};
    if (tokensLeft !== undefined) remaining.tokens = Math.max(0, tokensLeft - estimate);
    if (requestsLeft !== undefined) remaining.requests = Math.max(0, requestsLeft - 1);
    return { allowed: true, reservation, remaining };
  }

  /**
   * After the answer: charges actual - estimated (negative refunds; 0 actual for a failed request
   * refunds the whole estimate). A bucket already out of the window is left alone (only the
   * quotas move); a second settle of one reservation, or after close(), does nothing.
   */
  settle(reservation: Reservation, actualTokens: number): void {
    if (!this.#pending.delete(reservation)) return;
    const delta = normalizeTokens(actualTokens) - reservation.estimatedTokens;
    if (delta === 0 || this.#closed || this.#settleTx === undefined) return;
    const inWindow = reservation.second > bucketSecond(this.#now()) - WINDOW_SECONDS;
    try {
      this.#settleTx(reservation, delta, inWindow);
    } catch (err) {
      throw countersFailure('settle', err);
    }
  }

  /** For metrics and `agent status`: the matched scopes' current usage (each scope read on its own). */
  usage(caller: Caller): ScopeUsageReport[] {
    const matched = this.#match(caller);
    if (matched === undefined || this.#counters === undefined) return [];
    if (this.#closed) throw wicketError(COUNTERS_ERROR, 'limit counters are closed');
    const now = this.#now();
    const periods = this.#periodsAt(now);
    const from = bucketSecond(now) - WINDOW_SECONDS;
    try {
      return matched.map((limits) => {
        const usage = this.#counters!.read(limits.scope, from, periods);
        return { scope: limits.scope, tokensLastMinute: usage.windowTokens, requestsLastMinute: usage.windowRequests, tokensToday: usage.dayTokens, tokensThisMonth: usage.monthTokens };
      });
    } catch (err) {
      throw countersFailure('usage', err);
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#counters?.close();
  }
}
