import Database from 'better-sqlite3';
import type { Logger } from 'pino';
import { isWicketError, wicketError } from '../../protocol/errors.js';
import { GATEWAY_LEDGER_BUSY_TIMEOUT_MS, GATEWAY_LEDGER_FLUSH_MS, GATEWAY_LEDGER_MAX_PENDING } from '../../protocol/limits.js';
import { openPrivateSqlite } from './private-sqlite.js';
import type { UsageRow } from './usage-row.js';

export { USAGE_LEDGER_FILE } from './usage-row.js';

// The usage ledger: one SQLite row per gateway request (agent/gateway/usage-row.ts), read back by
// `agent usage` (agent/gateway/usage-report.ts).
//
// The request path only pushes onto an in-memory queue: SQLite is synchronous, so a write there
// would hold the event loop (every stream of the node) for a disk's fsync. A timer writes the
// queue in ONE transaction every GATEWAY_LEDGER_FLUSH_MS (sooner once FLUSH_EARLY_ROWS wait),
// so a busy gateway pays one commit per batch instead of one per request.
//
// Nothing is lost silently: a failed write keeps the rows for the next try, and rows the queue
// cannot hold (GATEWAY_LEDGER_MAX_PENDING, a stuck disk must not eat memory) are written to the log
// as warning lines instead. Rows carry no prompt or answer text, so the log line is safe.
//
// Several processes (outlets of one host, `agent usage` while the node runs) may share the file:
// WAL lets readers go on while a writer commits, and busy_timeout waits out another writer.

export const LEDGER_SCHEMA_VERSION = 1;

/** Rows that trigger a flush before the timer: a burst is written while still small. */
const FLUSH_EARLY_ROWS = 500;
/** Old rows are deleted at open and this often. */
const RETENTION_SWEEP_MS = 3_600_000;
const DAY_MS = 86_400_000;
/** A failing disk is reported once, then at most this often (each retry would otherwise log). */
const FAILURE_LOG_EVERY_MS = 60_000;

const MIGRATIONS: Record<number, string> = {
  // 0 -> 1: the first schema. Indexes serve the reports: by time (every report has a window, and
  // retention deletes by time), by identity and by model (the two most asked groupings).
  1: `
CREATE TABLE IF NOT EXISTS usage (
  id                INTEGER PRIMARY KEY,
  at                INTEGER NOT NULL,
  outlet            TEXT NOT NULL,
  identity          TEXT NOT NULL,
  attributes        TEXT NOT NULL,
  deployment        TEXT,
  model             TEXT,
  operation         TEXT NOT NULL,
  stream            INTEGER NOT NULL,
  status            INTEGER NOT NULL,
  code              TEXT,
  prompt_tokens     INTEGER,
  completion_tokens INTEGER,
  total_tokens      INTEGER,
  latency_ms        INTEGER NOT NULL,
  ttft_ms           INTEGER,
  backend           TEXT,
  request_id        TEXT
);
CREATE INDEX IF NOT EXISTS usage_by_time ON usage (at);
CREATE INDEX IF NOT EXISTS usage_by_identity ON usage (identity, at);
CREATE INDEX IF NOT EXISTS usage_by_model ON usage (model, at);`,
};

const INSERT = `
INSERT INTO usage (at, outlet, identity, attributes, deployment, model, operation, stream, status, code,
                   prompt_tokens, completion_tokens, total_tokens, latency_ms, ttft_ms, backend, request_id)
VALUES (@at, @outlet, @identity, @attributes, @deployment, @model, @operation, @stream, @status, @code,
        @promptTokens, @completionTokens, @totalTokens, @latencyMs, @ttftMs, @backend, @requestId)`;

export interface UsageLedgerOptions {
  /** Rows older than this many days are deleted (gateway.ledger.retentionDays). */
  retentionDays: number;
  logger: Logger;
  /** The clock, injected so retention is testable. */
  now?: () => number;
  /** Test overrides of GATEWAY_LEDGER_FLUSH_MS and GATEWAY_LEDGER_MAX_PENDING. */
  flushMs?: number;
  maxPending?: number;
}

type SqlValue = string | number | null;

function wholeOrNull(n: number | null | undefined): number | null {
  return typeof n === 'number' && Number.isFinite(n) ? Math.round(n) : null;
}

function textOrNull(s: string | null | undefined): string | null {
  return typeof s === 'string' ? s : null;
}

/** A row as bind parameters; total (never throws), so one odd row cannot wedge every later batch. */
function toParams(row: UsageRow): Record<string, SqlValue> {
  let attributes: string;
  try {
    attributes = JSON.stringify(row.attributes ?? {});
  } catch {
    attributes = '{}';
  }
  return {
    at: wholeOrNull(row.at) ?? 0,
    outlet: String(row.outlet),
    identity: String(row.identity),
    attributes,
    deployment: textOrNull(row.deployment),
    model: textOrNull(row.model),
    operation: String(row.operation),
    stream: row.stream ? 1 : 0,
    status: wholeOrNull(row.status) ?? 0,
    code: textOrNull(row.code),
    promptTokens: wholeOrNull(row.promptTokens),
    completionTokens: wholeOrNull(row.completionTokens),
    totalTokens: wholeOrNull(row.totalTokens),
    latencyMs: wholeOrNull(row.latencyMs) ?? 0,
    ttftMs: wholeOrNull(row.ttftMs),
    backend: textOrNull(row.backend),
    requestId: textOrNull(row.requestId),
  };
}

export class UsageLedger {
  readonly path: string;
  readonly #db: Database.Database;
  readonly #insertAll: (rows: readonly UsageRow[]) => void;
  readonly #logger: Logger;
  readonly #now: () => number;
  #retentionMs: number;
  readonly #flushMs: number;
  readonly #maxPending: number;
  #queue: UsageRow[] = [];
  #flushTimer: NodeJS.Timeout | undefined;
  #earlyFlush: NodeJS.Immediate | undefined;
  readonly #sweepTimer: NodeJS.Timeout;
  #closed = false;
  /** Set while writes fail: no early flushes hammer the disk, and the error is logged sparingly. */
  #failingSince: number | undefined;
  #lastFailureLog = 0;

  private constructor(path: string, db: Database.Database, options: UsageLedgerOptions) {
    this.path = path;
    this.#db = db;
    this.#logger = options.logger;
    this.#now = options.now ?? Date.now;
    this.#retentionMs = options.retentionDays * DAY_MS;
    this.#flushMs = options.flushMs ?? GATEWAY_LEDGER_FLUSH_MS;
    this.#maxPending = options.maxPending ?? GATEWAY_LEDGER_MAX_PENDING;
    const insert = db.prepare(INSERT);
    this.#insertAll = db.transaction((rows: readonly UsageRow[]) => {
      for (const row of rows) insert.run(toParams(row));
    });
    this.#sweep();
    this.#sweepTimer = setInterval(() => this.#sweep(), RETENTION_SWEEP_MS);
    // The ledger never keeps a process alive; close() flushes what is left.
    this.#sweepTimer.unref();
  }

  /** Opens (creating 0600 and migrating as needed) the ledger at `path`, and deletes expired rows. */
  static open(path: string, options: UsageLedgerOptions): UsageLedger {
    if (!Number.isInteger(options.retentionDays) || options.retentionDays < 1) {
      throw wicketError('WICKET_ERR_ARGUMENT', 'usage ledger retentionDays must be a whole number of days, at least 1');
    }
    let db: Database.Database | undefined;
    try {
      // A power cut may lose the last fraction of a second of rows: the price of not fsyncing every batch.
      db = openPrivateSqlite(path, {
        busyTimeoutMs: GATEWAY_LEDGER_BUSY_TIMEOUT_MS,
        migrations: MIGRATIONS,
        newerSchema: (version, known) => wicketError('WICKET_ERR_LEDGER', `usage ledger schema version ${version} is newer than this agent (${known}); upgrade the agent`),
      });
      return new UsageLedger(path, db, options);
    } catch (err) {
      db?.close();
      if (isWicketError(err)) throw err;
      throw wicketError('WICKET_ERR_LEDGER', `cannot open the usage ledger at ${path}: ${err instanceof Error ? err.message : String(err)}`, err);
    }
  }

  /**
   * Several gateway outlets share the node's ledger, each with its retention: the longest wins
   * (a shorter one must not delete rows another outlet's operator is keeping).
   */
  retainAtLeast(days: number): void {
    if (Number.isInteger(days) && days >= 1) this.#retentionMs = Math.max(this.#retentionMs, days * DAY_MS);
  }

  /** Rows queued and not yet written. */
  get pendingRows(): number {
    return this.#queue.length;
  }

  /** Queues one row; never touches the disk (the request path must not wait for SQLite). */
  record(row: UsageRow): void {
    if (this.#closed) {
      this.#spill([row], 'the ledger is closed');
      return;
    }
    this.#queue.push(row);
    const excess = this.#queue.length - this.#maxPending;
    if (excess > 0) this.#spill(this.#queue.splice(0, excess), 'the ledger backlog is full');
    if (this.#queue.length >= FLUSH_EARLY_ROWS && this.#failingSince === undefined) {
      this.#earlyFlush ??= setImmediate(() => {
        this.#earlyFlush = undefined;
        this.flush();
      });
    } else {
      this.#armTimer();
    }
  }

  /** Writes every queued row in one transaction now. False when the write failed (rows kept). */
  flush(): boolean {
    this.#clearFlushTimers();
    if (this.#queue.length === 0 || !this.#db.open) return true;
    const batch = this.#queue;
    this.#queue = [];
    try {
      this.#insertAll(batch);
    } catch (err) {
      // flush() is synchronous, so nothing was queued meanwhile: the batch is the whole queue.
      this.#queue = batch;
      this.#writeFailed(err);
      return false;
    }
    if (this.#failingSince !== undefined) {
      this.#logger.info({ code: 'WICKET_ERR_LEDGER', failedForMs: this.#now() - this.#failingSince }, 'usage ledger writes again');
      this.#failingSince = undefined;
    }
    return true;
  }

  /** Flushes synchronously and closes the file; rows that still cannot be written go to the log. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#sweepTimer);
    this.flush();
    if (this.#queue.length > 0) this.#spill(this.#queue, 'the ledger closed before they could be written');
    this.#queue = [];
    this.#db.close();
  }

  #armTimer(): void {
    if (this.#flushTimer !== undefined || this.#closed) return;
    this.#flushTimer = setTimeout(() => {
      this.#flushTimer = undefined;
      this.flush();
    }, this.#flushMs);
    this.#flushTimer.unref();
  }

  #clearFlushTimers(): void {
    if (this.#flushTimer !== undefined) clearTimeout(this.#flushTimer);
    if (this.#earlyFlush !== undefined) clearImmediate(this.#earlyFlush);
    this.#flushTimer = undefined;
    this.#earlyFlush = undefined;
  }

  #writeFailed(err: unknown): void {
    const now = this.#now();
    const first = this.#failingSince === undefined;
    this.#failingSince ??= now;
    const excess = this.#queue.length - this.#maxPending;
    if (excess > 0) this.#spill(this.#queue.splice(0, excess), 'the ledger cannot be written and its backlog is full');
    if (first || now - this.#lastFailureLog >= FAILURE_LOG_EVERY_MS) {
      this.#lastFailureLog = now;
      this.#logger.error(
        { code: 'WICKET_ERR_LEDGER', path: this.path, rows: this.#queue.length, maxPending: this.#maxPending, err: err instanceof Error ? err.message : String(err) },
        `WICKET_ERR_LEDGER: usage ledger write failed; ${this.#queue.length} rows kept for the next try`,
      );
    }
    this.#armTimer();
  }

  /** Rows the ledger will not hold, one warning line each: the log is their record. */
  #spill(rows: readonly UsageRow[], reason: string): void {
    for (const row of rows) {
      this.#logger.warn({ code: 'WICKET_ERR_LEDGER', reason, usage: row }, `usage row not written to the ledger (${reason}); this line is its record`);
    }
  }

  #sweep(): void {
    if (!this.#db.open) return;
    try {
      const removed = this.#db.prepare('DELETE FROM usage WHERE at < ?').run(this.#now() - this.#retentionMs).changes;
      if (removed > 0) this.#logger.info({ removed, retentionDays: this.#retentionMs / DAY_MS }, 'usage ledger: expired rows deleted');
    } catch (err) {
      // A busy or failing disk: the next sweep tries again; the rows only live a little longer.
      this.#logger.warn({ code: 'WICKET_ERR_LEDGER', err: err instanceof Error ? err.message : String(err) }, 'usage ledger: expired rows not deleted this time');
    }
  }
}
