import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { pino, type Logger } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LEDGER_SCHEMA_VERSION, UsageLedger } from '../../../agent/gateway/usage-ledger.js';
import type { UsageRow } from '../../../agent/gateway/usage-row.js';
import { isWicketError } from '../../../protocol/errors.js';
import { GATEWAY_LEDGER_FLUSH_MS } from '../../../protocol/limits.js';
import { identifierFor } from '../../helpers/identifier.js';

const DAY_MS = 86_400_000;
const T0 = Date.UTC(2026, 11, 1);

let dir: string;
let path: string;
const opened: UsageLedger[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'wicket-ledger-'));
  path = join(dir, 'usage.db');
});
afterEach(() => {
  for (const ledger of opened.splice(0)) ledger.close();
  rmSync(dir, { recursive: true, force: true });
});

interface LogLine {
  level: number;
  msg: string;
  code?: string;
  rows?: number;
  usage?: UsageRow;
}

function captureLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = pino({ level: 'info' }, { write: (text: string) => void lines.push(JSON.parse(text) as LogLine) });
  return { logger, lines };
}

function open(options: Partial<Parameters<typeof UsageLedger.open>[1]> = {}): UsageLedger {
  const ledger = UsageLedger.open(path, { retentionDays: 90, logger: captureLogger().logger, ...options });
  opened.push(ledger);
  return ledger;
}

function row(n: number, overrides: Partial<UsageRow> = {}): UsageRow {
  return {
    at: T0 + n,
    outlet: 'openai',
    identity: identifierFor(n % 3),
    attributes: { team: n % 2 === 0 ? 'cardiology' : 'research' },
    deployment: 'gpt-4o',
    model: 'gpt-4o-2024-08-06',
    operation: 'chat',
    stream: n % 2 === 0,
    status: 200,
    code: null,
    promptTokens: 10,
    completionTokens: 5,
    totalTokens: 15,
    latencyMs: 100 + n,
    ttftMs: 20,
    backend: 'eastus',
    requestId: `req-${n}`,
    ...overrides,
  };
}

/** Rows as another process sees them (a separate connection). */
function countRows(where = '1 = 1'): number {
  const db = new Database(path, { readonly: true });
  try {
    return (db.prepare(`SELECT COUNT(*) AS n FROM usage WHERE ${where}`).get() as { n: number }).n;
  } finally {
    db.close();
  }
}

describe('UsageLedger', () => {
  it('creates the file 0600 with WAL, NORMAL sync and the current schema version', () => {
    open();
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const db = new Database(path, { readonly: true });
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('user_version', { simple: true })).toBe(LEDGER_SCHEMA_VERSION);
    const indexes = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'usage'").all() as { name: string }[]).map((r) => r.name);
    expect(indexes).toEqual(expect.arrayContaining(['usage_by_time', 'usage_by_identity', 'usage_by_model']));
    db.close();
  });

  it('narrows an existing group-readable ledger to 0600', () => {
    writeFileSync(path, '');
    chmodSync(path, 0o644);
    open();
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  it('record() only queues: 2,000 calls write nothing until a flush, then everything in one go', () => {
    const ledger = open();
    const started = performance.now();
    for (let i = 0; i < 2_000; i++) ledger.record(row(i));
    const spent = performance.now() - started;
    expect(countRows()).toBe(0);
    expect(ledger.pendingRows).toBe(2_000);
    expect(ledger.flush()).toBe(true);
    expect(countRows()).toBe(2_000);
    expect(ledger.pendingRows).toBe(0);
    // Generous bound: queueing is array pushes, never SQLite on the caller's path.
    expect(spent).toBeLessThan(500);
  });

  it('the timer flushes queued rows by itself within GATEWAY_LEDGER_FLUSH_MS', async () => {
    const ledger = open();
    for (let i = 0; i < 10; i++) ledger.record(row(i));
    expect(countRows()).toBe(0);
    await new Promise((r) => setTimeout(r, GATEWAY_LEDGER_FLUSH_MS * 3));
    expect(countRows()).toBe(10);
    expect(ledger.pendingRows).toBe(0);
  });

  it('a burst of 500 rows is flushed early, on the next loop turn', async () => {
    const ledger = open({ flushMs: 60_000 });
    for (let i = 0; i < 500; i++) ledger.record(row(i));
    expect(countRows()).toBe(0);
    await new Promise((r) => setImmediate(r));
    expect(countRows()).toBe(500);
  });

  it('stores every field and reads it back as written', () => {
    const ledger = open();
    ledger.record(row(7, { code: 'WICKET_ERR_GATEWAY_RATE_LIMITED', status: 429, promptTokens: null, completionTokens: null, totalTokens: null, model: null, ttftMs: null }));
    ledger.close();
    const db = new Database(path, { readonly: true });
    const stored = db.prepare('SELECT * FROM usage').get() as Record<string, unknown>;
    db.close();
    expect(stored).toMatchObject({
      at: T0 + 7,
      outlet: 'openai',
      identity: identifierFor(1),
      attributes: JSON.stringify({ team: 'research' }),
      deployment: 'gpt-4o',
      model: null,
      operation: 'chat',
      stream: 0,
      status: 429,
      code: 'WICKET_ERR_GATEWAY_RATE_LIMITED',
      prompt_tokens: null,
      total_tokens: null,
      latency_ms: 107,
      ttft_ms: null,
      backend: 'eastus',
      request_id: 'req-7',
    });
  });

  it('survives close and reopen: close() flushes, a reopened ledger keeps the rows and appends', () => {
    const first = UsageLedger.open(path, { retentionDays: 90, logger: captureLogger().logger });
    for (let i = 0; i < 25; i++) first.record(row(i));
    first.close();
    expect(countRows()).toBe(25);
    const second = open();
    second.record(row(100));
    second.flush();
    expect(countRows()).toBe(26);
  });

  it('retention deletes rows older than retentionDays at open and keeps the rest', () => {
    const writer = UsageLedger.open(path, { retentionDays: 90, logger: captureLogger().logger, now: () => T0 });
    writer.record(row(0, { at: T0 - 40 * DAY_MS }));
    writer.record(row(1, { at: T0 - 20 * DAY_MS }));
    writer.record(row(2, { at: T0 }));
    writer.close();
    expect(countRows()).toBe(3);
    open({ retentionDays: 30, now: () => T0 });
    expect(countRows()).toBe(2);
    open({ retentionDays: 10, now: () => T0 });
    expect(countRows()).toBe(1);
  });

  it('retention also runs every hour while the ledger is open', () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'setTimeout', 'clearTimeout'] });
    try {
      let now = T0;
      const ledger = open({ retentionDays: 1, now: () => now });
      ledger.record(row(0, { at: T0 }));
      ledger.flush();
      now = T0 + DAY_MS + 1;
      expect(countRows()).toBe(1);
      vi.advanceTimersByTime(3_600_000);
      expect(countRows()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it('past maxPending the oldest rows go to the log as warnings, none silently lost', () => {
    const { logger, lines } = captureLogger();
    const ledger = open({ logger, maxPending: 100, flushMs: 60_000 });
    for (let i = 0; i < 130; i++) ledger.record(row(i));
    expect(ledger.pendingRows).toBe(100);
    const spilled = lines.filter((l) => l.code === 'WICKET_ERR_LEDGER' && l.usage !== undefined);
    expect(spilled.map((l) => l.usage!.requestId)).toEqual(Array.from({ length: 30 }, (_, i) => `req-${i}`));
    expect(spilled.every((l) => l.level === 40)).toBe(true);
    ledger.flush();
    expect(countRows()).toBe(100);
    expect(countRows("request_id = 'req-29'")).toBe(0);
    expect(countRows("request_id = 'req-30'")).toBe(1);
  });

  it('a failed write logs WICKET_ERR_LEDGER with the row count and keeps the rows for the next flush', () => {
    const { logger, lines } = captureLogger();
    const ledger = open({ logger, flushMs: 60_000 });
    for (let i = 0; i < 5; i++) ledger.record(row(i));
    // Another process holds the write lock past the ledger's busy timeout.
    const other = new Database(path);
    other.pragma('busy_timeout = 0');
    other.exec('BEGIN IMMEDIATE');
    expect(ledger.flush()).toBe(false);
    expect(ledger.pendingRows).toBe(5);
    const failure = lines.find((l) => l.level === 50 && l.code === 'WICKET_ERR_LEDGER');
    expect(failure?.rows).toBe(5);
    expect(failure?.msg).toMatch(/WICKET_ERR_LEDGER/);
    other.exec('COMMIT');
    other.close();
    expect(ledger.flush()).toBe(true);
    expect(countRows()).toBe(5);
    expect(lines.some((l) => l.msg === 'usage ledger writes again')).toBe(true);
  });

  it('rows that still cannot be written at close() are logged, not dropped', () => {
    const { logger, lines } = captureLogger();
    const ledger = UsageLedger.open(path, { retentionDays: 90, logger, flushMs: 60_000 });
    ledger.record(row(1));
    ledger.record(row(2));
    const other = new Database(path);
    other.exec('BEGIN IMMEDIATE');
    ledger.close();
    other.exec('ROLLBACK');
    other.close();
    expect(lines.filter((l) => l.usage !== undefined).map((l) => l.usage!.requestId)).toEqual(['req-1', 'req-2']);
    // record() after close goes to the log too.
    ledger.record(row(3));
    expect(lines.at(-1)?.usage?.requestId).toBe('req-3');
  });

  it('two ledgers (two outlets, or two processes) share one file', () => {
    const a = open();
    const b = open();
    for (let i = 0; i < 50; i++) {
      a.record(row(i, { outlet: 'openai-east' }));
      b.record(row(i, { outlet: 'openai-west' }));
    }
    a.flush();
    b.flush();
    a.record(row(99, { outlet: 'openai-east' }));
    a.close();
    expect(countRows("outlet = 'openai-east'")).toBe(51);
    expect(countRows("outlet = 'openai-west'")).toBe(50);
  });

  it('refuses a ledger written by a newer agent with WICKET_ERR_LEDGER', () => {
    const db = new Database(path);
    db.pragma(`user_version = ${LEDGER_SCHEMA_VERSION + 1}`);
    db.close();
    try {
      open();
      expect.unreachable();
    } catch (err) {
      expect(isWicketError(err, 'WICKET_ERR_LEDGER')).toBe(true);
    }
  });

  it('a path it cannot create fails with WICKET_ERR_LEDGER naming the path', () => {
    const missing = join(dir, 'no-such-folder', 'usage.db');
    expect(() => UsageLedger.open(missing, { retentionDays: 90, logger: captureLogger().logger })).toThrow(/WICKET_ERR_LEDGER: cannot open the usage ledger at .*no-such-folder/);
  });
});
