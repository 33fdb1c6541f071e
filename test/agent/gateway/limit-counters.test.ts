import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { bucketSecond, COUNTERS_SCHEMA_VERSION, LimitCounters, utcPeriods } from '../../../agent/gateway/limit-counters.js';
import { humanDuration } from '../../../agent/gateway/limit-checks.js';
import { isWicketError } from '../../../protocol/errors.js';

let folder: string;
beforeEach(() => {
  folder = mkdtempSync(join(tmpdir(), 'wicket-counters-'));
});
afterEach(() => {
  rmSync(folder, { recursive: true, force: true });
});

const mode = (file: string) => statSync(file).mode & 0o777;

describe('LimitCounters: the file', () => {
  it('is created 0600 before SQLite opens it, in WAL with its side files 0600, at the current schema version', () => {
    const path = join(folder, 'limits.db');
    const counters = LimitCounters.open(path);
    counters.reserve('identity:I1', 100, 5, utcPeriods(100_000));
    expect(mode(path)).toBe(0o600);
    expect(mode(`${path}-wal`)).toBe(0o600);
    expect(mode(`${path}-shm`)).toBe(0o600);
    const db = new Database(path, { readonly: true });
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('user_version', { simple: true })).toBe(COUNTERS_SCHEMA_VERSION);
    db.close();
    counters.close();
  });

  it('narrows an existing file and side files left wider by someone else', () => {
    const path = join(folder, 'limits.db');
    LimitCounters.open(path).close();
    chmodSync(path, 0o644);
    writeFileSync(`${path}-journal`, '');
    chmodSync(`${path}-journal`, 0o666);
    const counters = LimitCounters.open(path);
    expect(mode(path)).toBe(0o600);
    expect(mode(`${path}-journal`)).toBe(0o600);
    counters.close();
  });

  it('refuses a file from a newer schema instead of writing into it', () => {
    const path = join(folder, 'limits.db');
    const db = new Database(path);
    db.pragma(`user_version = ${COUNTERS_SCHEMA_VERSION + 1}`);
    db.close();
    let err: unknown;
    try {
      LimitCounters.open(path);
    } catch (e) {
      err = e;
    }
    expect(isWicketError(err, 'WICKET_ERR_GATEWAY_COUNTERS')).toBe(true);
    expect((err as Error).message).toContain('is newer than this agent');
  });

  it('reopening keeps the counts (a restarted outlet keeps its callers\' budgets)', () => {
    const path = join(folder, 'limits.db');
    const periods = utcPeriods(Date.UTC(2026, 4, 1));
    const one = LimitCounters.open(path);
    one.reserve('s', 10, 7, periods);
    one.close();
    const two = LimitCounters.open(path);
    expect(two.read('s', 0, periods)).toEqual({ windowTokens: 7, windowRequests: 1, dayTokens: 7, monthTokens: 7 });
    two.close();
  });
});

describe('LimitCounters: buckets and periods', () => {
  it('sums only buckets after `from`, and corrections never resurrect a pruned bucket', () => {
    const counters = LimitCounters.open(':memory:');
    const periods = utcPeriods(Date.UTC(2026, 11, 3, 12));
    counters.reserve('s', 100, 10, periods);
    counters.reserve('s', 100, 5, periods);
    counters.reserve('s', 130, 20, periods);
    counters.reserve('other', 130, 1_000, periods);
    expect(counters.read('s', 99, periods)).toEqual({ windowTokens: 35, windowRequests: 3, dayTokens: 35, monthTokens: 35 });
    expect(counters.read('s', 100, periods)).toMatchObject({ windowTokens: 20, windowRequests: 1 });
    expect(counters.buckets('s', 0)).toEqual([
      { second: 100, tokens: 15, requests: 2 },
      { second: 130, tokens: 20, requests: 1 },
    ]);
    counters.pruneScope('s', 100);
    counters.correctBucket('s', 100, 50);
    expect(counters.buckets('s', 0)).toEqual([{ second: 130, tokens: 20, requests: 1 }]);
    counters.correctBucket('s', 130, -1_000);
    counters.correctPeriod('s', periods.day, -1_000);
    expect(counters.read('s', 0, periods)).toMatchObject({ windowTokens: 0, dayTokens: 0, monthTokens: 35 });
    counters.close();
  });

  it('pruneAll drops old buckets of every scope and periods before the previous day and month', () => {
    const counters = LimitCounters.open(':memory:');
    const old = utcPeriods(Date.UTC(2026, 9, 15));
    const yesterday = utcPeriods(Date.UTC(2026, 11, 2));
    const today = utcPeriods(Date.UTC(2026, 11, 3));
    counters.reserve('gone', 10, 1, old);
    counters.reserve('s', 50, 2, yesterday);
    counters.reserve('s', 60, 4, today);
    counters.pruneAll(50, yesterday.day, utcPeriods(Date.UTC(2026, 10, 30)).month);
    expect(counters.buckets('gone', 0)).toEqual([]);
    expect(counters.buckets('s', 0)).toEqual([{ second: 60, tokens: 4, requests: 1 }]);
    expect(counters.read('gone', 0, old)).toMatchObject({ dayTokens: 0, monthTokens: 0 });
    expect(counters.read('s', 0, yesterday)).toMatchObject({ dayTokens: 2, monthTokens: 6 });
    counters.close();
  });

  it('UTC periods: keys, starts and ends across day, month and year ends', () => {
    expect(utcPeriods(Date.UTC(2026, 11, 31, 23, 59, 59, 999))).toEqual({
      day: '2026-12-31',
      month: '2026-12',
      dayStartsAt: Date.UTC(2026, 11, 31),
      dayEndsAt: Date.UTC(2027, 0, 1),
      monthStartsAt: Date.UTC(2026, 11, 1),
      monthEndsAt: Date.UTC(2027, 0, 1),
    });
    expect(utcPeriods(Date.UTC(2028, 1, 29, 5)).monthEndsAt).toBe(Date.UTC(2028, 2, 1));
    expect(bucketSecond(1_999)).toBe(1);
  });

  it('durations read the way people say them', () => {
    expect(humanDuration(12_000)).toBe('12 seconds');
    expect(humanDuration(1_000)).toBe('1 second');
    expect(humanDuration(5 * 3_600_000 + 3 * 60_000)).toBe('5 hours 3 minutes');
    expect(humanDuration(3 * 86_400_000 + 4 * 3_600_000 + 5)).toBe('3 days 4 hours');
  });
});
