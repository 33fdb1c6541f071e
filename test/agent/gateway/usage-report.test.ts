import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UsageLedger } from '../../../agent/gateway/usage-ledger.js';
import { usageTotals } from '../../../agent/gateway/usage-report.js';
import { isWicketError } from '../../../protocol/errors.js';
import { identifierFor } from '../../helpers/identifier.js';
import { usageRow as row } from '../../helpers/usage-row.js';

const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 11, 1);
const ALICE = identifierFor(1);
const BOB = identifierFor(2);

let dir: string;
let path: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'wicket-report-'));
  path = join(dir, 'usage.db');
  const ledger = UsageLedger.open(path, { retentionDays: 3_660, logger: pino({ level: 'silent' }), now: () => T0 });
  // Alice (cardiology): 3 requests, one refused by the gateway; latencies 100, 200, 300.
  ledger.record(row({ at: T0, attributes: { team: 'cardiology' }, latencyMs: 100, promptTokens: 100, completionTokens: 50, totalTokens: 150 }));
  ledger.record(row({ at: T0 + HOUR, attributes: { team: 'cardiology' }, latencyMs: 300, promptTokens: 200, completionTokens: 100, totalTokens: 300, model: 'gpt-4o-mini' }));
  ledger.record(row({ at: T0 + 2 * HOUR, attributes: { team: 'cardiology' }, latencyMs: 200, status: 429, code: 'WICKET_ERR_GATEWAY_RATE_LIMITED', promptTokens: null, completionTokens: null, totalTokens: null, model: null }));
  // Bob (research, a key that is hard to quote as a JSON path): 2 requests, earlier.
  ledger.record(row({ at: T0 - 48 * HOUR, identity: BOB, attributes: { team: 'research', 'a.b"c': 'odd' }, latencyMs: 50, promptTokens: 1_000, completionTokens: 0, totalTokens: 1_000, operation: 'embeddings', outlet: 'openai-west', deployment: 'embed' }));
  ledger.record(row({ at: T0 - 47 * HOUR, identity: BOB, attributes: { team: 'research' }, latencyMs: 70, status: 500, promptTokens: 5, completionTokens: 5, totalTokens: 10, outlet: 'openai-west' }));
  ledger.close();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('usageTotals', () => {
  it('groups by identity: sums, errors, percentiles, sorted by total tokens', () => {
    const totals = usageTotals(path, { by: 'identity' });
    expect(totals.map((t) => t.key)).toEqual([BOB, ALICE]);
    expect(totals[1]).toEqual({
      key: ALICE,
      requests: 3,
      errors: 1,
      promptTokens: 300,
      completionTokens: 150,
      totalTokens: 450,
      p50LatencyMs: 200,
      p95LatencyMs: 300,
      firstAt: T0,
      lastAt: T0 + 2 * HOUR,
    });
    expect(totals[0]).toMatchObject({ requests: 2, errors: 1, totalTokens: 1_010, p50LatencyMs: 50, p95LatencyMs: 70 });
  });

  it('since and until bound the window (since inclusive, until exclusive)', () => {
    expect(usageTotals(path, { by: 'identity', since: T0 - HOUR }).map((t) => [t.key, t.requests])).toEqual([[ALICE, 3]]);
    expect(usageTotals(path, { by: 'identity', since: T0, until: T0 + HOUR }).map((t) => [t.key, t.requests])).toEqual([[ALICE, 1]]);
    expect(usageTotals(path, { by: 'identity', since: T0 + 10 * HOUR })).toEqual([]);
  });

  it('groups by an attribute read from the attributes JSON; callers without it are the null group', () => {
    expect(usageTotals(path, { by: { attribute: 'team' } }).map((t) => [t.key, t.requests, t.totalTokens])).toEqual([
      ['research', 2, 1_010],
      ['cardiology', 3, 450],
    ]);
    expect(usageTotals(path, { by: { attribute: 'a.b"c' } }).map((t) => [t.key, t.requests])).toEqual([
      ['odd', 1],
      [null, 4],
    ]);
    expect(usageTotals(path, { by: { attribute: 'team' }, since: T0 }).map((t) => t.key)).toEqual(['cardiology']);
  });

  it('groups by model (null when the backend reported none), deployment and outlet', () => {
    expect(usageTotals(path, { by: 'model' }).map((t) => [t.key, t.requests, t.totalTokens])).toEqual([
      ['gpt-4o-2024-08-06', 3, 1_160],
      ['gpt-4o-mini', 1, 300],
      [null, 1, 0],
    ]);
    expect(usageTotals(path, { by: 'deployment' }).map((t) => t.key)).toEqual(['embed', 'gpt-4o']);
    expect(usageTotals(path, { by: 'outlet' }).map((t) => [t.key, t.requests])).toEqual([
      ['openai-west', 2],
      ['openai', 3],
    ]);
  });

  it('a missing ledger: WICKET_ERR_LEDGER "no usage recorded yet at PATH"', () => {
    const missing = join(dir, 'missing.db');
    expect(() => usageTotals(missing, { by: 'identity' })).toThrow(`WICKET_ERR_LEDGER: no usage recorded yet at ${missing}`);
  });

  it('a file that is not a ledger: WICKET_ERR_LEDGER, never a foreign error', () => {
    const junk = join(dir, 'junk.db');
    writeFileSync(junk, 'this is not sqlite at all, just some text that is long enough to have a header'.repeat(10));
    try {
      usageTotals(junk, { by: 'identity' });
      expect.unreachable();
    } catch (err) {
      expect(isWicketError(err, 'WICKET_ERR_LEDGER')).toBe(true);
    }
    const empty = join(dir, 'empty.db');
    writeFileSync(empty, '');
    expect(() => usageTotals(empty, { by: 'identity' })).toThrow(/WICKET_ERR_LEDGER: no usage recorded yet/);
  });

  it('opens read-only: a report cannot change the ledger', () => {
    const before = new Database(path, { readonly: true });
    const count = (before.prepare('SELECT COUNT(*) AS n FROM usage').get() as { n: number }).n;
    before.close();
    usageTotals(path, { by: { attribute: "x'); DELETE FROM usage; --" } });
    const after = new Database(path, { readonly: true });
    expect((after.prepare('SELECT COUNT(*) AS n FROM usage').get() as { n: number }).n).toBe(count);
    after.close();
  });

  it('refuses a grouping outside the list with WICKET_ERR_ARGUMENT', () => {
    expect(() => usageTotals(path, { by: 'status; DROP TABLE usage' as 'identity' })).toThrow(/WICKET_ERR_ARGUMENT/);
    expect(() => usageTotals(path, { by: { attribute: '' } })).toThrow(/WICKET_ERR_ARGUMENT/);
  });
});
