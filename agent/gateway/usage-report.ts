import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import { isWicketError, wicketError } from '../../protocol/errors.js';
import { MAX_ATTRIBUTE_KEY_LEN } from '../../protocol/limits.js';
import { LEDGER_SCHEMA_VERSION } from './usage-ledger.js';

// Totals over the usage ledger, for `agent usage`. The file is opened read-only and directly (not
// through the node), so a report works whether or not the node runs and can never change the
// ledger. Grouping, sums and percentiles happen inside SQLite: a ledger of months holds millions of
// rows, and only one line per group comes back.

export type UsageGrouping = 'identity' | 'model' | 'deployment' | 'outlet' | { attribute: string };

export interface UsageQuery {
  by: UsageGrouping;
  /** ms epoch, inclusive. */
  since?: number;
  /** ms epoch, exclusive. */
  until?: number;
}

export interface UsageTotal {
  /** The group's value; null for rows without one (no model reported, caller without the attribute). */
  key: string | null;
  requests: number;
  /** Requests answered with status >= 400. */
  errors: number;
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
  /** Nearest-rank percentiles of the latency until the last byte. */
  p50LatencyMs: number | null;
  p95LatencyMs: number | null;
  /** First and last request of the group in the window (ms epoch). */
  firstAt: number;
  lastAt: number;
}

/** Column per fixed grouping: chosen from this table, never built from the caller's text. */
const GROUP_COLUMNS = { identity: 'identity', model: 'model', deployment: 'deployment', outlet: 'outlet' } as const;

/**
 * ROW_NUMBER over each group's latencies gives the nearest-rank percentile without a percentile
 * function (SQLite has none): rank ceil(p * n / 100), in integers (n * p + 99) / 100.
 * An attribute is looked up with json_each by exact key, so a key holding `.` or `"` cannot be
 * read as a JSON path.
 */
function totalsSql(keyExpr: string): string {
  return `
WITH scoped AS (
  SELECT ${keyExpr} AS k, at, status, prompt_tokens, completion_tokens, total_tokens, latency_ms
  FROM usage WHERE at >= @since AND at < @until
),
ranked AS (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY k ORDER BY latency_ms) AS rn, COUNT(*) OVER (PARTITION BY k) AS n
  FROM scoped
)
SELECT k AS key,
       COUNT(*) AS requests,
       SUM(status >= 400) AS errors,
       COALESCE(SUM(prompt_tokens), 0) AS promptTokens,
       COALESCE(SUM(completion_tokens), 0) AS completionTokens,
       COALESCE(SUM(total_tokens), 0) AS totalTokens,
       MAX(CASE WHEN rn = (n * 50 + 99) / 100 THEN latency_ms END) AS p50LatencyMs,
       MAX(CASE WHEN rn = (n * 95 + 99) / 100 THEN latency_ms END) AS p95LatencyMs,
       MIN(at) AS firstAt,
       MAX(at) AS lastAt
FROM ranked
GROUP BY k
ORDER BY totalTokens DESC, requests DESC, key`;
}

function keyExpression(by: UsageGrouping): string {
  if (typeof by === 'string') {
    if (!Object.hasOwn(GROUP_COLUMNS, by)) throw wicketError('WICKET_ERR_ARGUMENT', 'group by identity, model, deployment, outlet or an attribute');
    return GROUP_COLUMNS[by];
  }
  const name = by.attribute;
  if (typeof name !== 'string' || name.length === 0 || Buffer.byteLength(name) > MAX_ATTRIBUTE_KEY_LEN) {
    throw wicketError('WICKET_ERR_ARGUMENT', `an attribute name is 1..${MAX_ATTRIBUTE_KEY_LEN} bytes`);
  }
  return `(SELECT value FROM json_each(usage.attributes) WHERE key = @attribute)`;
}

/** Opens the ledger read-only, or WICKET_ERR_LEDGER saying why not. */
function openReadOnly(path: string): Database.Database {
  if (!existsSync(path)) throw wicketError('WICKET_ERR_LEDGER', `no usage recorded yet at ${path}`);
  let db: Database.Database | undefined;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
    const version = db.pragma('user_version', { simple: true }) as number;
    // 0: the file exists but the ledger never created its table (created, then the node stopped).
    if (version === 0) throw wicketError('WICKET_ERR_LEDGER', `no usage recorded yet at ${path}`);
    if (version > LEDGER_SCHEMA_VERSION) {
      throw wicketError('WICKET_ERR_LEDGER', `usage ledger ${path} has schema version ${version}, newer than this agent (${LEDGER_SCHEMA_VERSION}); upgrade the agent`);
    }
    return db;
  } catch (err) {
    db?.close();
    if (isWicketError(err)) throw err;
    throw wicketError('WICKET_ERR_LEDGER', `cannot read the usage ledger at ${path}: ${err instanceof Error ? err.message : String(err)}`, err);
  }
}

/** Totals per group in [since, until), largest totalTokens first. */
export function usageTotals(path: string, query: UsageQuery): UsageTotal[] {
  const keyExpr = keyExpression(query.by);
  const db = openReadOnly(path);
  try {
    const params: Record<string, string | number> = {
      since: query.since ?? Number.MIN_SAFE_INTEGER,
      until: query.until ?? Number.MAX_SAFE_INTEGER,
    };
    if (typeof query.by === 'object') params.attribute = query.by.attribute;
    const rows = db.prepare(totalsSql(keyExpr)).all(params) as UsageTotal[];
    // A key is text in every row this agent writes; a hand-edited ledger still prints as text.
    return rows.map((row) => ({ ...row, key: row.key === null ? null : String(row.key) }));
  } catch (err) {
    if (isWicketError(err)) throw err;
    throw wicketError('WICKET_ERR_LEDGER', `cannot read the usage ledger at ${path}: ${err instanceof Error ? err.message : String(err)}`, err);
  } finally {
    db.close();
  }
}
