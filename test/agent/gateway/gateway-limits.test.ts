import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Admission, type Caller, GatewayLimits } from '../../../agent/gateway/gateway-limits.js';
import { GATEWAY_MAX_TOKENS_PER_REQUEST as MAX_TOKENS_PER_REQUEST } from '../../../protocol/limits.js';
import type { LimitRuleSpec } from '../../../agent/gateway/gateway-spec.js';
import { isWicketError } from '../../../protocol/errors.js';
import { runJsonWorker } from '../../helpers/json-worker.js';

const WORKER = fileURLToPath(new URL('./fixtures/limits-worker.ts', import.meta.url));
/** One limits-worker process: `admits` admits against `db`, counted as admitted and refused. */
const runWorker = (input: object) => runJsonWorker<{ admitted: number; refused: number }>(WORKER, input);

const ALICE = `I${'a1'.repeat(32)}`;
const BOB = `I${'b2'.repeat(32)}`;
const CAROL = `I${'c3'.repeat(32)}`;
const alice: Caller = { identifier: ALICE, attributes: { team: 'cardiology' } };
const bob: Caller = { identifier: BOB, attributes: { team: 'cardiology' } };
const carol: Caller = { identifier: CAROL, attributes: { team: 'radiology' } };

/** A whole second, so bucket arithmetic in the tests is plain: 2026-12-03T10:00:00Z. */
const T0 = Date.UTC(2026, 11, 3, 10, 0, 0);

let folder: string;
let opened: GatewayLimits[] = [];
let clock = T0;
const now = () => clock;

function open(rules: LimitRuleSpec[], file = 'limits.db'): GatewayLimits {
  const limits = GatewayLimits.open(join(folder, file), rules, { now });
  opened.push(limits);
  return limits;
}

function refused(admission: Admission): Extract<Admission, { allowed: false }> {
  if (admission.allowed) throw new Error('expected a refusal');
  return admission;
}

function allowed(admission: Admission): Extract<Admission, { allowed: true }> {
  if (!admission.allowed) throw new Error(`expected an admission: ${admission.message}`);
  return admission;
}

beforeEach(() => {
  folder = mkdtempSync(join(tmpdir(), 'wicket-limits-'));
  clock = T0;
});

afterEach(() => {
  for (const limits of opened) limits.close();
  opened = [];
  rmSync(folder, { recursive: true, force: true });
});

describe('GatewayLimits: requests per minute', () => {
  it('refuses the request past the limit and admits it again once the oldest has aged out, to the second', () => {
    const limits = open([{ identity: ALICE, requestsPerMinute: 3 }]);
    expect(allowed(limits.admit(alice, 0)).remaining).toEqual({ requests: 2 });
    clock = T0 + 10_000;
    allowed(limits.admit(alice, 0));
    clock = T0 + 20_000;
    expect(allowed(limits.admit(alice, 0)).remaining).toEqual({ requests: 0 });
    clock = T0 + 30_000;
    const no = refused(limits.admit(alice, 0));
    expect(no).toMatchObject({ status: 429, code: 'WICKET_ERR_GATEWAY_RATE_LIMITED', retryAfterMs: 30_000, scope: `identity:${ALICE}`, remaining: { requests: 0 } });
    expect(no.message).toBe(
      'Requests to this deployment from identity Ia1a1… have exceeded the request rate limit of 3 requests per minute set by the outlet. Please retry after 30 seconds.',
    );
    clock = T0 + 59_999;
    expect(refused(limits.admit(alice, 0)).retryAfterMs).toBe(1_000); // never under 1 s
    clock = T0 + 60_000;
    expect(allowed(limits.admit(alice, 0)).remaining).toEqual({ requests: 0 });
    // Refusals reserve nothing: the window holds the three admitted since T0+10 s.
    expect(limits.usage(alice)[0]).toMatchObject({ requestsLastMinute: 3 });
  });
});

describe('GatewayLimits: tokens per minute', () => {
  it('computes the retry from the buckets: the wait until enough of the window ages out for this estimate', () => {
    const limits = open([{ identity: ALICE, tokensPerMinute: 1_000 }]);
    expect(allowed(limits.admit(alice, 400)).remaining).toEqual({ tokens: 600 });
    clock = T0 + 10_000;
    allowed(limits.admit(alice, 400));
    clock = T0 + 20_000;
    // 800 used: 300 more does not fit; dropping T0's 400 makes it fit, at T0 + 60 s.
    const no = refused(limits.admit(alice, 300));
    expect(no).toMatchObject({ status: 429, retryAfterMs: 40_000, remaining: { tokens: 200 } });
    expect(no.message).toContain('exceeded the token rate limit of 1000 tokens per minute set by the outlet. Please retry after 40 seconds.');
    // 700 needs both old buckets gone: T0 + 10 s + 60 s.
    expect(refused(limits.admit(alice, 700)).retryAfterMs).toBe(50_000);
    allowed(limits.admit(alice, 200));
    clock = T0 + 59_999;
    refused(limits.admit(alice, 300));
    clock = T0 + 60_000;
    expect(allowed(limits.admit(alice, 300)).remaining).toEqual({ tokens: 100 });
  });

  it('with requests and tokens both limited, waits until both fit and names both', () => {
    const limits = open([{ identity: ALICE, tokensPerMinute: 1_000, requestsPerMinute: 2 }]);
    allowed(limits.admit(alice, 900));
    clock = T0 + 5_000;
    allowed(limits.admit(alice, 50));
    clock = T0 + 6_000;
    const no = refused(limits.admit(alice, 100));
    expect(no.retryAfterMs).toBe(54_000);
    expect(no.message).toContain('the request rate limit of 2 requests per minute and the token rate limit of 1000 tokens per minute');
    expect(no.remaining).toEqual({ tokens: 50, requests: 0 });
  });

  it('refuses an estimate larger than the limit itself, saying so, with the whole window as retry-after', () => {
    const limits = open([{ identity: ALICE, tokensPerMinute: 1_000 }]);
    const no = refused(limits.admit(alice, 5_000));
    expect(no).toMatchObject({ status: 429, code: 'WICKET_ERR_GATEWAY_RATE_LIMITED', retryAfterMs: 60_000, remaining: { tokens: 1_000 } });
    expect(no.message).toContain('needs about 5000 tokens, more than the token rate limit of 1000 tokens per minute');
    expect(no.message).toContain('Shorten the prompt or lower max_tokens');
    expect(limits.usage(alice)[0]).toMatchObject({ tokensLastMinute: 0, requestsLastMinute: 0 });
  });
});

describe('GatewayLimits: quotas', () => {
  it('a spent daily quota is 403 until the next UTC midnight, and the message names the quota and the reset', () => {
    const limits = open([{ identity: ALICE, tokensPerDay: 1_000 }]);
    clock = Date.UTC(2026, 11, 3, 23, 0, 0);
    allowed(limits.admit(alice, 600));
    const no = refused(limits.admit(alice, 500));
    expect(no).toMatchObject({ status: 403, code: 'WICKET_ERR_GATEWAY_QUOTA_EXCEEDED', retryAfterMs: 3_600_000, remaining: {} });
    expect(no.message).toBe(
      'Requests to this deployment from identity Ia1a1… have used the daily token quota of 1000 tokens set by the outlet (600 used, this request needs about 500 more). ' +
        "The quota resets at 2026-12-04T00:00:00Z (in 1 hour); retry after that, or ask the outlet's operator to raise tokensPerDay.",
    );
    allowed(limits.admit(alice, 400)); // exactly the quota
    clock = Date.UTC(2026, 11, 3, 23, 59, 59, 500);
    expect(refused(limits.admit(alice, 1)).retryAfterMs).toBe(1_000);
    clock = Date.UTC(2026, 11, 4, 0, 0, 0);
    allowed(limits.admit(alice, 1_000));
    expect(limits.usage(alice)[0]).toMatchObject({ tokensToday: 1_000, tokensThisMonth: 2_000 });
  });

  it('a spent monthly quota survives the day change and resets at the first of the next UTC month', () => {
    const limits = open([{ identity: ALICE, tokensPerMonth: 1_000, tokensPerDay: 800 }]);
    clock = Date.UTC(2026, 11, 30, 12, 0, 0);
    allowed(limits.admit(alice, 700));
    clock = Date.UTC(2026, 11, 31, 12, 0, 0);
    const no = refused(limits.admit(alice, 400));
    expect(no).toMatchObject({ status: 403, retryAfterMs: 12 * 3_600_000 });
    expect(no.message).toContain('monthly token quota of 1000 tokens');
    expect(no.message).toContain('resets at 2027-01-01T00:00:00Z (in 12 hours)');
    expect(no.message).toContain('raise tokensPerMonth');
    clock = Date.UTC(2027, 0, 1, 0, 0, 0);
    allowed(limits.admit(alice, 800));
    // The day quota still applies inside the new month.
    expect(refused(limits.admit(alice, 1)).message).toContain('daily token quota of 800 tokens');
  });

  it('an estimate larger than the whole quota says so', () => {
    const limits = open([{ identity: ALICE, tokensPerDay: 100 }]);
    expect(refused(limits.admit(alice, 101)).message).toContain('needs about 101 tokens, more than the whole daily token quota of 100 tokens');
  });

  it('a spent quota wins over a rate refusal: it is the longer wait', () => {
    const limits = open([{ identity: ALICE, tokensPerDay: 100, requestsPerMinute: 1 }]);
    allowed(limits.admit(alice, 100));
    expect(refused(limits.admit(alice, 1)).status).toBe(403);
  });
});

describe('GatewayLimits: identity and attribute rules', () => {
  it('two identities have separate budgets', () => {
    const limits = open([
      { identity: ALICE, requestsPerMinute: 1 },
      { identity: BOB, requestsPerMinute: 1 },
    ]);
    allowed(limits.admit(alice, 0));
    allowed(limits.admit(bob, 0));
    refused(limits.admit(alice, 0));
    refused(limits.admit(bob, 0));
  });

  it('callers with one attribute value share one budget, and the message names the attribute', () => {
    const limits = open([{ attribute: 'team', value: 'cardiology', tokensPerMinute: 1_000 }]);
    allowed(limits.admit(alice, 600));
    const no = refused(limits.admit(bob, 600));
    expect(no.scope).toBe('attribute:team=cardiology');
    expect(no.message).toBe(
      'Requests to this deployment from identity Ib2b2… (team=cardiology) have exceeded the token rate limit of 1000 tokens per minute ' +
        'set by the outlet for all callers with team=cardiology. Please retry after 60 seconds.',
    );
    allowed(limits.admit(carol, 900)); // radiology: no rule
    expect(limits.usage(bob)).toEqual([{ scope: 'attribute:team=cardiology', tokensLastMinute: 600, requestsLastMinute: 1, tokensToday: 600, tokensThisMonth: 600 }]);
  });

  it('every matching rule applies; remaining is the tightest; a refusal reserves in none', () => {
    const limits = open([
      { identity: ALICE, requestsPerMinute: 10, tokensPerMinute: 5_000 },
      { attribute: 'team', value: 'cardiology', requestsPerMinute: 3 },
      { identity: ALICE, requestsPerMinute: 5 }, // same scope: the lower limit applies
    ]);
    expect(allowed(limits.admit(alice, 100)).remaining).toEqual({ tokens: 4_900, requests: 2 });
    allowed(limits.admit(bob, 0));
    allowed(limits.admit(bob, 0));
    const no = refused(limits.admit(alice, 100));
    expect(no.scope).toBe('attribute:team=cardiology');
    expect(limits.usage(alice).map((u) => [u.scope, u.requestsLastMinute])).toEqual([
      [`identity:${ALICE}`, 1],
      ['attribute:team=cardiology', 3],
    ]);
  });
});

describe('GatewayLimits: settle', () => {
  it('charges the difference both ways, a failure refunds the estimate, and settling twice does nothing', () => {
    const limits = open([{ identity: ALICE, tokensPerMinute: 10_000, tokensPerDay: 100_000 }]);
    const a = allowed(limits.admit(alice, 500)).reservation;
    limits.settle(a, 200);
    expect(limits.usage(alice)[0]).toMatchObject({ tokensLastMinute: 200, tokensToday: 200, tokensThisMonth: 200, requestsLastMinute: 1 });
    limits.settle(a, 9_000);
    expect(limits.usage(alice)[0]).toMatchObject({ tokensLastMinute: 200 });
    const b = allowed(limits.admit(alice, 500)).reservation;
    limits.settle(b, 1_300);
    expect(limits.usage(alice)[0]).toMatchObject({ tokensLastMinute: 1_500, tokensToday: 1_500 });
    const c = allowed(limits.admit(alice, 700)).reservation;
    limits.settle(c, 0); // the request failed
    expect(limits.usage(alice)[0]).toMatchObject({ tokensLastMinute: 1_500, tokensToday: 1_500, requestsLastMinute: 3 });
    limits.settle({ ...c }, 50_000); // a copy is not a reservation this instance holds
    expect(limits.usage(alice)[0]).toMatchObject({ tokensToday: 1_500 });
  });

  it('a reservation whose bucket left the window corrects only the quotas; the bucket is not resurrected', () => {
    const limits = open([{ identity: ALICE, tokensPerMinute: 1_000, tokensPerMonth: 100_000 }]);
    const slow = allowed(limits.admit(alice, 100)).reservation;
    clock = T0 + 61_000;
    allowed(limits.admit(alice, 10)); // prunes T0's bucket
    limits.settle(slow, 900);
    expect(limits.usage(alice)[0]).toMatchObject({ tokensLastMinute: 10, tokensToday: 910 });
    const db = new Database(join(folder, 'limits.db'), { readonly: true });
    const seconds = db.prepare('SELECT second FROM window_buckets').pluck().all();
    db.close();
    expect(seconds).toEqual([T0 / 1_000 + 61]);
  });
});

describe('GatewayLimits: fast path', () => {
  it('with no rules no file is created, and an unmatched caller never touches the counters', () => {
    const none = GatewayLimits.open(join(folder, 'none.db'), [], { now });
    allowed(none.admit(alice, 1_000_000));
    expect(none.usage(alice)).toEqual([]);
    none.close();
    expect(existsSync(join(folder, 'none.db'))).toBe(false);

    const limits = open([{ identity: BOB, requestsPerMinute: 1 }, { attribute: 'team', value: 'radiology', requestsPerMinute: 1 }]);
    limits.close(); // a closed database would throw if touched
    const yes = allowed(limits.admit(alice, 50));
    expect(yes.remaining).toEqual({});
    limits.settle(yes.reservation, 10);
    expect(() => limits.admit(bob, 0)).toThrow(/WICKET_ERR_GATEWAY_COUNTERS: limit counters are closed/);
  });
});

describe('GatewayLimits: sharing one file', () => {
  it('two instances on one file share their counts', () => {
    const rules: LimitRuleSpec[] = [{ attribute: 'team', value: 'cardiology', requestsPerMinute: 3, tokensPerDay: 1_000 }];
    const one = open(rules);
    const two = open(rules);
    allowed(one.admit(alice, 300));
    allowed(two.admit(bob, 300));
    const r = allowed(one.admit(alice, 300)).reservation;
    expect(refused(two.admit(bob, 0)).status).toBe(429);
    one.settle(r, 0);
    expect(two.usage(bob)[0]).toMatchObject({ requestsLastMinute: 3, tokensToday: 600 });
  });

  // Both processes spin to one start instant; 1000 admits each take tens of ms, so their
  // transactions usually interleave (the log line shows each one's share). Not asserted: a slow
  // start can serialise them, and the total must be exact either way. With deferred instead of
  // IMMEDIATE transactions this test fails ("database is locked").
  it('two processes hammering one file stay exact: 2 x 1000 admits against requestsPerMinute 1200 admit exactly 1200', async () => {
    const db = join(folder, 'shared.db');
    const rules: LimitRuleSpec[] = [{ attribute: 'team', value: 'cardiology', requestsPerMinute: 1_200, tokensPerMinute: 1_000_000 }];
    GatewayLimits.open(db, rules).close(); // schema created once, before the race
    const startAt = Date.now() + 3_000;
    const results = await Promise.all([
      runWorker({ db, rules, identifier: ALICE, attributes: { team: 'cardiology' }, admits: 1_000, estimate: 10, startAt }),
      runWorker({ db, rules, identifier: BOB, attributes: { team: 'cardiology' }, admits: 1_000, estimate: 10, startAt }),
    ]);
    console.log(`two processes: ${JSON.stringify(results)}`);
    expect(results.reduce((sum, r) => sum + r.admitted, 0)).toBe(1_200);
    expect(results.reduce((sum, r) => sum + r.refused, 0)).toBe(800);
    const check = GatewayLimits.open(db, rules);
    expect(check.usage(alice)[0]).toMatchObject({ requestsLastMinute: 1_200, tokensLastMinute: 12_000 });
    check.close();
  });
});

describe('GatewayLimits: hostile and odd inputs', () => {
  it('a NaN, negative or non-number estimate counts as 0; a fraction rounds up; Infinity is refused as too large', () => {
    const limits = open([{ identity: ALICE, tokensPerMinute: 1_000 }]);
    for (const estimate of [Number.NaN, -500, -Infinity, '7' as unknown as number]) {
      const yes = allowed(limits.admit(alice, estimate));
      expect(yes.reservation.estimatedTokens).toBe(0);
    }
    expect(limits.usage(alice)[0]).toMatchObject({ tokensLastMinute: 0, requestsLastMinute: 4 });
    allowed(limits.admit(alice, 0.2));
    expect(limits.usage(alice)[0]).toMatchObject({ tokensLastMinute: 1 });
    const no = refused(limits.admit(alice, Infinity));
    expect(no.message).toContain(`needs about ${MAX_TOKENS_PER_REQUEST} tokens, more than the token rate limit`);
  });

  it('a NaN or negative actual count in settle refunds the estimate and never goes below zero', () => {
    const limits = open([{ identity: ALICE, tokensPerDay: 1_000 }]);
    limits.settle(allowed(limits.admit(alice, 300)).reservation, Number.NaN);
    limits.settle(allowed(limits.admit(alice, 300)).reservation, -1e9);
    expect(limits.usage(alice)[0]).toMatchObject({ tokensToday: 0 });
  });

  it('odd attributes match nothing and break nothing', () => {
    const limits = open([{ attribute: 'team', value: 'cardiology', requestsPerMinute: 1 }, { attribute: '__proto__', value: 'x', requestsPerMinute: 1 }]);
    const odd: Caller[] = [
      { identifier: ALICE, attributes: null as unknown as Record<string, string> },
      { identifier: 42 as unknown as string, attributes: Object.create({ team: 'cardiology' }) as Record<string, string> }, // inherited, not own
      { identifier: ALICE, attributes: { team: 7 as unknown as string } },
      { identifier: ALICE, attributes: JSON.parse('{"__proto__": "y"}') as Record<string, string> },
    ];
    for (const caller of odd) expect(allowed(limits.admit(caller, 1)).remaining).toEqual({});
    allowed(limits.admit({ identifier: ALICE, attributes: JSON.parse('{"__proto__": "x"}') as Record<string, string> }, 1));
    refused(limits.admit({ identifier: BOB, attributes: JSON.parse('{"__proto__": "x"}') as Record<string, string> }, 1));
  });

  it('a rule built in code with a bad rate is refused at open', () => {
    expect(() => open([{ identity: ALICE, requestsPerMinute: 0 }])).toThrow(/requestsPerMinute must be a whole number >= 1/);
    expect(() => open([{ identity: ALICE, tokensPerDay: Number.NaN }])).toThrow(/WICKET_ERR_ARGUMENT/);
  });

  it('a clock that steps back still counts the newer buckets (conservative, never negative)', () => {
    const limits = open([{ identity: ALICE, requestsPerMinute: 1 }]);
    clock = T0 + 30_000;
    allowed(limits.admit(alice, 0));
    clock = T0;
    const no = refused(limits.admit(alice, 0));
    expect(no.retryAfterMs).toBe(90_000);
  });

  it('a counters failure is a WicketError with the counters code', () => {
    let err: unknown;
    try {
      GatewayLimits.open(join(folder, 'missing', 'dir', 'limits.db'), [{ identity: ALICE, requestsPerMinute: 1 }]);
    } catch (e) {
      err = e;
    }
    expect(isWicketError(err, 'WICKET_ERR_GATEWAY_COUNTERS')).toBe(true);
  });
});

describe('GatewayLimits: cost', () => {
  it('logs the cost of admit() + settle() for a caller matching an identity and an attribute rule', () => {
    const limits = open([
      { identity: ALICE, tokensPerMinute: 1e9, requestsPerMinute: 1e9, tokensPerDay: 1e9 },
      { attribute: 'team', value: 'cardiology', tokensPerMinute: 1e9, tokensPerMonth: 1e9 },
    ]);
    const rounds = 2_000;
    const times: number[] = [];
    for (let i = 0; i < rounds; i++) {
      clock = T0 + i * 10; // 100 requests per bucket, buckets pruned as the clock moves
      const start = process.hrtime.bigint();
      const yes = limits.admit(alice, 100);
      if (yes.allowed) limits.settle(yes.reservation, 80);
      times.push(Number(process.hrtime.bigint() - start) / 1_000);
    }
    times.sort((x, y) => x - y);
    const fast = open([{ identity: BOB, requestsPerMinute: 1 }]);
    const fastStart = process.hrtime.bigint();
    for (let i = 0; i < rounds; i++) fast.admit(carol, 100);
    const fastUs = Number(process.hrtime.bigint() - fastStart) / 1_000 / rounds;
    console.log(
      `gateway limits: admit+settle (2 scopes, file-backed WAL) p50 ${times[rounds / 2]!.toFixed(1)} µs, p99 ${times[Math.floor(rounds * 0.99)]!.toFixed(1)} µs; ` +
        `unmatched caller ${fastUs.toFixed(2)} µs`,
    );
    expect(limits.usage(alice)[0]!.requestsLastMinute).toBeGreaterThan(0);
  });
});
