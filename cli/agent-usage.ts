import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import type { UsageGrouping, UsageTotal } from '../agent/gateway/usage-report.js';
import { USAGE_LEDGER_FILE } from '../agent/gateway/usage-row.js';
import { MAX_ATTRIBUTE_KEY_LEN } from '../protocol/limits.js';
import { agentGlobals, printJson } from './agent-context.js';
import { usageError } from './cli-errors.js';
import { parseDuration } from './duration.js';

// `agent usage`: token and request totals from the gateway's usage ledger, per identity, attribute,
// model, deployment or outlet. It reads the ledger file directly (read-only), not through the
// node, so it works whether or not the node runs, and on a copy of the file from another host.
// Output: a table (numbers right-aligned), --json, or --csv (RFC 4180, for spreadsheets).

const BY_FORMS = 'identity, model, deployment, outlet or attribute:NAME (e.g. attribute:team)';
const TIME_FORMS = 'a duration back from now (24h, 7d, 1h30m), a date (2026-12-01, UTC midnight) or an ISO time (2026-12-01T08:00:00Z; no zone means UTC)';

interface UsageFlags {
  by: string;
  since?: string;
  until?: string;
  json?: boolean;
  csv?: boolean;
  ledger?: string;
}

/** `--by` as a grouping; WICKET_ERR_ARGUMENT naming the accepted forms otherwise. */
export function parseGrouping(text: string): UsageGrouping {
  if (text === 'identity' || text === 'model' || text === 'deployment' || text === 'outlet') return text;
  if (text.startsWith('attribute:')) {
    const attribute = text.slice('attribute:'.length);
    if (attribute.length > 0 && Buffer.byteLength(attribute) <= MAX_ATTRIBUTE_KEY_LEN && !/[\s\u0000-\u001f\u007f]/.test(attribute)) {
      return { attribute };
    }
    throw usageError(`--by attribute:NAME needs a name of 1..${MAX_ATTRIBUTE_KEY_LEN} bytes without spaces; use ${BY_FORMS}`);
  }
  throw usageError(`--by: use ${BY_FORMS}`);
}

export function groupingLabel(by: UsageGrouping): string {
  return typeof by === 'string' ? by : `attribute:${by.attribute}`;
}

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?(Z|[+-]\d{2}:\d{2})?$/;

/** A calendar time (checked field by field: Date.parse would roll 2026-02-31 into March). */
function calendarTime(text: string): number | undefined {
  const m = DATE_TIME.exec(text) ?? DATE.exec(text);
  if (m === null) return undefined;
  const [year, month, day, hour, minute, second] = [1, 2, 3, 4, 5, 6].map((i) => Number(m[i] ?? 0)) as [number, number, number, number, number, number];
  const millis = Number(`${m[7] ?? ''}00`.slice(0, 3));
  const ms = Date.UTC(year, month - 1, day, hour, minute, second, millis);
  const back = new Date(ms);
  const valid = back.getUTCFullYear() === year && back.getUTCMonth() === month - 1 && back.getUTCDate() === day && hour <= 23 && minute <= 59 && second <= 59;
  if (!valid) return undefined;
  const zone = m[8];
  if (zone === undefined || zone === 'Z') return ms;
  const [zh, zm] = zone.slice(1).split(':').map(Number) as [number, number];
  if (zh > 23 || zm > 59) return undefined;
  return ms - (zone.startsWith('-') ? -1 : 1) * (zh * 60 + zm) * 60_000;
}

/** `--since` / `--until`: a duration back from `now`, a date or an ISO time, as ms epoch. */
export function parseTimeArgument(text: string, what: string, now: number): number {
  const trimmed = text.trim();
  const at = calendarTime(trimmed);
  if (at !== undefined) return at;
  try {
    return now - parseDuration(trimmed, what);
  } catch {
    throw usageError(`${what}: use ${TIME_FORMS}`);
  }
}

/** A spreadsheet must not run a cell as a formula: one starting = + - @ (or tab, CR) gets a leading '. */
function csvCell(value: string | number | null): string {
  if (value === null) return '';
  if (typeof value === 'number') return String(value);
  const guarded = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(guarded) ? `"${guarded.replace(/"/g, '""')}"` : guarded;
}

/** RFC 4180: CRLF line ends, a header row, fields quoted when they hold a comma, quote or newline. */
export function toCsv(header: readonly string[], rows: readonly (readonly (string | number | null)[])[]): string {
  return [header, ...rows].map((cells) => cells.map(csvCell).join(',') + '\r\n').join('');
}

/** Control characters from the ledger (attribute values are other people's text) never reach the terminal raw. */
function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
}

function iso(ms: number | undefined): string | null {
  return ms === undefined ? null : new Date(ms).toISOString();
}

const NUMBER_COLUMNS = ['REQUESTS', 'ERRORS', 'PROMPT', 'COMPLETION', 'TOTAL', 'P50 MS', 'P95 MS'];

function numberCells(row: UsageTotal): string[] {
  return [row.requests, row.errors, row.promptTokens, row.completionTokens, row.totalTokens, row.p50LatencyMs, row.p95LatencyMs].map((n) => (n === null ? '-' : String(n)));
}

/** The first column left-aligned, numbers right-aligned. */
function printTable(by: UsageGrouping, rows: readonly UsageTotal[]): void {
  const header = [printable(typeof by === 'string' ? by.toUpperCase() : by.attribute.toUpperCase()), ...NUMBER_COLUMNS];
  const lines = rows.map((row) => [row.key === null ? '(none)' : printable(row.key), ...numberCells(row)]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const format = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  process.stdout.write([format(header), ...lines.map(format)].join('\n') + '\n');
}

function printCsv(by: UsageGrouping, rows: readonly UsageTotal[]): void {
  const header = [groupingLabel(by), 'requests', 'errors', 'prompt_tokens', 'completion_tokens', 'total_tokens', 'p50_latency_ms', 'p95_latency_ms', 'first_at', 'last_at'];
  const cells = rows.map((r) => [r.key, r.requests, r.errors, r.promptTokens, r.completionTokens, r.totalTokens, r.p50LatencyMs, r.p95LatencyMs, iso(r.firstAt), iso(r.lastAt)]);
  process.stdout.write(toCsv(header, cells));
}

async function showUsage(flags: UsageFlags, command: Command): Promise<void> {
  if (flags.json === true && flags.csv === true) throw usageError('--json and --csv: choose one output form');
  const by = parseGrouping(flags.by);
  const now = Date.now();
  const since = flags.since === undefined ? undefined : parseTimeArgument(flags.since, '--since', now);
  const until = flags.until === undefined ? undefined : parseTimeArgument(flags.until, '--until', now);
  if (since !== undefined && until !== undefined && until <= since) throw usageError('--until must be later than --since');
  if (flags.ledger !== undefined && flags.ledger.trim() === '') throw usageError('--ledger: give the path of a usage.db file');
  const ledger = flags.ledger !== undefined ? resolve(flags.ledger) : join(agentGlobals(command).home, USAGE_LEDGER_FILE);
  // SQLite is loaded for this command only: every other agent command, the node above all, runs without it.
  const { usageTotals } = await import('../agent/gateway/usage-report.js');
  const rows = usageTotals(ledger, { by, ...(since !== undefined ? { since } : {}), ...(until !== undefined ? { until } : {}) });
  if (flags.json === true) {
    printJson({ by: groupingLabel(by), since: iso(since), until: iso(until), rows: rows.map((r) => ({ ...r, firstAt: iso(r.firstAt), lastAt: iso(r.lastAt) })) });
  } else if (flags.csv === true) {
    printCsv(by, rows);
  } else if (rows.length === 0) {
    process.stdout.write(since === undefined && until === undefined ? 'no usage recorded\n' : 'no usage in this window\n');
  } else {
    printTable(by, rows);
  }
}

export function registerUsageCommand(program: Command): void {
  program
    .command('usage')
    .description("Token and request totals from this host's Azure OpenAI gateway ledger (works whether or not the node runs)")
    .option('--by <group>', `group by ${BY_FORMS}`, 'identity')
    .option('--since <when>', `only requests from then on: ${TIME_FORMS}`)
    .option('--until <when>', 'only requests before then (same forms as --since)')
    .option('--json', 'print {"by", "since", "until", "rows": [...]} as one JSON line')
    .option('--csv', 'print CSV (RFC 4180, header row; cells that could run as formulas get a leading \')')
    .option('--ledger <file>', `the ledger to read (default: ${USAGE_LEDGER_FILE} in the agent home)`)
    .addHelpText(
      'after',
      `
Rows are sorted by total tokens, largest first. ERRORS counts answers with status >= 400;
P50/P95 MS are latencies until the last byte reached the app.

Examples:
  $ agent usage
  $ agent usage --by attribute:team --since 7d
  $ agent usage --by model --since 2026-12-01 --until 2027-01-01 --csv > december.csv
  $ agent usage --by deployment --since 24h --json
  $ agent usage --ledger /var/lib/wicket/usage.db --by outlet`,
    )
    .action(async (flags: UsageFlags, command: Command) => showUsage(flags, command));
}
