import Database from 'better-sqlite3';
import { type ErrorCode, isWicketError, wicketError } from '../../protocol/errors.js';
import { GATEWAY_COUNTERS_BUSY_TIMEOUT_MS, GATEWAY_RATE_WINDOW_MS } from '../../protocol/limits.js';
import { openPrivateSqlite } from './private-sqlite.js';

// The gateway's limit counters in one SQLite file: per-second buckets for the sliding per-minute
// windows, and token totals per UTC day and month for the quotas. Outlets on one host share
// budgets by opening the same file (the relay must learn nothing about usage, so the counters live
// with the outlets); every check-and-reserve runs in one `BEGIN IMMEDIATE` transaction, which
// takes SQLite's single write lock first, so two processes never both admit the last request.
//
// The file is private (0600, side files too) and migrated as agent/gateway/private-sqlite.ts says.
// synchronous NORMAL, not FULL: a power cut can lose the last few reservations (a caller gets a
// few more requests); an fsync per request would spend the gateway's whole latency budget.

/** Bucket width: the sliding window moves in whole seconds (60 buckets per scope at most). */
export const BUCKET_MS = 1_000;
export const WINDOW_SECONDS = GATEWAY_RATE_WINDOW_MS / BUCKET_MS;

/** The code every counters failure is thrown with. */
export const COUNTERS_ERROR: ErrorCode = 'WICKET_ERR_GATEWAY_COUNTERS';

export const COUNTERS_SCHEMA_VERSION = 1;

const MIGRATIONS: Record<number, string> = {
  // 0 -> 1: the first schema. WITHOUT ROWID: every read and write is by (scope, …) prefix.
  1: `
CREATE TABLE IF NOT EXISTS window_buckets (
  scope    TEXT NOT NULL,
  second   INTEGER NOT NULL,
  tokens   INTEGER NOT NULL,
  requests INTEGER NOT NULL,
  PRIMARY KEY (scope, second)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS period_totals (
  scope  TEXT NOT NULL,
  period TEXT NOT NULL,
  tokens INTEGER NOT NULL,
  PRIMARY KEY (scope, period)
) WITHOUT ROWID;`,
};

/** One scope's counters as seen at `fromSecond` (exclusive) onwards. */
export interface ScopeUsage {
  windowTokens: number;
  windowRequests: number;
  dayTokens: number;
  monthTokens: number;
}

export interface Bucket {
  second: number;
  tokens: number;
  requests: number;
}

/** The UTC calendar periods `now` falls in, with the instants they end (when quotas reset). */
export interface UtcPeriods {
  day: string; // '2026-12-03'
  month: string; // '2026-12'
  dayStartsAt: number;
  dayEndsAt: number;
  monthStartsAt: number;
  monthEndsAt: number;
}

export function utcPeriods(now: number): UtcPeriods {
  const date = new Date(now);
  const y = date.getUTCFullYear();
  const m = date.getUTCMonth();
  const d = date.getUTCDate();
  const day = date.toISOString().slice(0, 10);
  return { day, month: day.slice(0, 7), dayStartsAt: Date.UTC(y, m, d), dayEndsAt: Date.UTC(y, m, d + 1), monthStartsAt: Date.UTC(y, m, 1), monthEndsAt: Date.UTC(y, m + 1, 1) };
}

/** The second the bucket for `now` is keyed by. */
export function bucketSecond(now: number): number {
  return Math.floor(now / BUCKET_MS);
}

/** Wraps a SQLite failure (busy past the timeout, disk full, corrupt file) with the counters' code. */
export function countersFailure(what: string, err: unknown): Error {
  if (isWicketError(err)) return err;
  return wicketError(COUNTERS_ERROR, `limit counters: ${what} failed (${err instanceof Error ? err.message : String(err)})`, err);
}

/**
 * The storage primitives. Methods do no locking of their own: GatewayLimits wraps the ones that
 * must be atomic together in `immediate()`.
 */
export class LimitCounters {
  readonly #db: Database.Database;
  readonly #read: Database.Statement<{ scope: string; from: number; day: string; month: string }, { wt: number; wr: number; dt: number; mt: number }>;
  readonly #buckets: Database.Statement<[string, number], Bucket>;
  readonly #addBucket: Database.Statement<[string, number, number, number]>;
  readonly #addPeriods: Database.Statement<[string, string, number, string, string, number]>;
  readonly #correctBucket: Database.Statement<[number, string, number]>;
  readonly #correctPeriod: Database.Statement<[number, string, string]>;
  readonly #pruneScope: Database.Statement<[string, number]>;
  readonly #pruneAllBuckets: Database.Statement<[number]>;
  readonly #prunePeriods: Database.Statement<[string, string]>;

  private constructor(db: Database.Database) {
    this.#db = db;
    // One statement reads everything a scope's check needs (window sums and both quotas).
    this.#read = db.prepare(`
WITH w AS (SELECT COALESCE(SUM(tokens), 0) AS wt, COALESCE(SUM(requests), 0) AS wr
           FROM window_buckets WHERE scope = $scope AND second > $from)
SELECT w.wt, w.wr,
  COALESCE((SELECT tokens FROM period_totals WHERE scope = $scope AND period = $day), 0) AS dt,
  COALESCE((SELECT tokens FROM period_totals WHERE scope = $scope AND period = $month), 0) AS mt
FROM w`);
    this.#buckets = db.prepare('SELECT second, tokens, requests FROM window_buckets WHERE scope = ? AND second > ? ORDER BY second');
    this.#addBucket = db.prepare(`
INSERT INTO window_buckets (scope, second, tokens, requests) VALUES (?, ?, ?, ?)
ON CONFLICT (scope, second) DO UPDATE SET tokens = tokens + excluded.tokens, requests = requests + excluded.requests`);
    this.#addPeriods = db.prepare(`
INSERT INTO period_totals (scope, period, tokens) VALUES (?, ?, ?), (?, ?, ?)
ON CONFLICT (scope, period) DO UPDATE SET tokens = tokens + excluded.tokens`);
    // Corrections UPDATE only: a bucket or period already pruned stays gone (never resurrected),
    // and a refund never takes a counter below zero.
    this.#correctBucket = db.prepare('UPDATE window_buckets SET tokens = MAX(0, tokens + ?) WHERE scope = ? AND second = ?');
    this.#correctPeriod = db.prepare('UPDATE period_totals SET tokens = MAX(0, tokens + ?) WHERE scope = ? AND period = ?');
    this.#pruneScope = db.prepare('DELETE FROM window_buckets WHERE scope = ? AND second <= ?');
    this.#pruneAllBuckets = db.prepare('DELETE FROM window_buckets WHERE second <= ?');
    // Period keys sort as text; a day key ('2026-12-03') is 10 characters, a month key 7.
    this.#prunePeriods = db.prepare('DELETE FROM period_totals WHERE (length(period) = 10 AND period < ?) OR (length(period) = 7 AND period < ?)');
  }

  /** Opens (creating 0600 and migrating as needed) the counters at `path`, or ':memory:'. */
  static open(path: string): LimitCounters {
    try {
      const db = openPrivateSqlite(path, {
        busyTimeoutMs: GATEWAY_COUNTERS_BUSY_TIMEOUT_MS,
        migrations: MIGRATIONS,
        newerSchema: (version, known) => wicketError(COUNTERS_ERROR, `limit counters schema version ${version} is newer than this agent (${known}); upgrade every outlet sharing the file`),
      });
      return new LimitCounters(db);
    } catch (err) {
      throw countersFailure(`opening ${path}`, err);
    }
  }

  /**
   * `fn` as a BEGIN IMMEDIATE transaction: the write lock is taken before the first read, so a
   * check and its reservation are atomic across processes. Wrap once, call per request.
   */
  immediateTransaction<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R {
    const transaction = this.#db.transaction(fn);
    return (...args: A) => transaction.immediate(...args);
  }

  read(scope: string, fromSecond: number, periods: UtcPeriods): ScopeUsage {
    const row = this.#read.get({ scope, from: fromSecond, day: periods.day, month: periods.month })!;
    return { windowTokens: row.wt, windowRequests: row.wr, dayTokens: row.dt, monthTokens: row.mt };
  }

  /** The scope's buckets after `fromSecond`, oldest first (only for a refusal's retry time). */
  buckets(scope: string, fromSecond: number): Bucket[] {
    return this.#buckets.all(scope, fromSecond);
  }

  reserve(scope: string, second: number, tokens: number, periods: UtcPeriods): void {
    this.#addBucket.run(scope, second, tokens, 1);
    this.#addPeriods.run(scope, periods.day, tokens, scope, periods.month, tokens);
  }

  correctBucket(scope: string, second: number, delta: number): void {
    this.#correctBucket.run(delta, scope, second);
  }

  correctPeriod(scope: string, period: string, delta: number): void {
    this.#correctPeriod.run(delta, scope, period);
  }

  /** Drops the scope's buckets at or before `second` (they are outside every window from now on). */
  pruneScope(scope: string, second: number): void {
    this.#pruneScope.run(scope, second);
  }

  /**
   * Drops every scope's old buckets (scopes whose rule was removed are never pruned one by one)
   * and period totals older than the previous day and month (a late settle() may still correct those).
   */
  pruneAll(second: number, keepDaysFrom: string, keepMonthsFrom: string): void {
    this.#pruneAllBuckets.run(second);
    this.#prunePeriods.run(keepDaysFrom, keepMonthsFrom);
  }

  close(): void {
    this.#db.close();
  }
}
