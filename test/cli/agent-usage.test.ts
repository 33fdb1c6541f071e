import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UsageLedger } from '../../agent/gateway/usage-ledger.js';
import type { UsageRow } from '../../agent/gateway/usage-row.js';
import { identifierFor } from '../helpers/identifier.js';
import { usageRow } from '../helpers/usage-row.js';
import { errorLine, hasStackTrace, type RunResult } from './agent-cli-helpers.js';

// `agent usage` as a real process, on a ledger this test writes. It runs cli/agent.ts through tsx
// (node --import tsx, as other tests run TypeScript programs) so the command is tested from source
// without a build; bin/agent.js runs the same file compiled.

const ROOT = join(import.meta.dirname, '..', '..');
const AGENT_SOURCE = join(ROOT, 'cli', 'agent.ts');
const DAY = 86_400_000;

const ALICE = identifierFor(1);
const BOB = identifierFor(2);
const CAROL = identifierFor(3);
const DAVE = identifierFor(4);
const FORMULA = '=HYPERLINK("http://evil.example")';
const AWKWARD = 'a,b "quoted"\nline';

let home: string;

function runUsage(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', AGENT_SOURCE, ...args],
      { cwd: ROOT, timeout: 30_000, env: { ...process.env, WICKET_HOME: home, WICKET_LOG_LEVEL: 'error', WICKET_LOG_FORMAT: 'json', WICKET_DEBUG: '', ...env } },
      (err, stdout, stderr) => resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : null, stdout, stderr }),
    );
  });
}

/** A streamed row a minute old (inside --since 24h), with no tokens unless the case sets them. */
function row(overrides: Partial<UsageRow>): UsageRow {
  return usageRow({ at: Date.now() - 60_000, stream: true, promptTokens: 0, completionTokens: 0, totalTokens: 0, ttftMs: 10, ...overrides });
}

beforeAll(() => {
  home = mkdtempSync(join(tmpdir(), 'wicket-usage-cli-'));
  const ledger = UsageLedger.open(join(home, 'usage.db'), { retentionDays: 90, logger: pino({ level: 'silent' }) });
  ledger.record(row({ identity: ALICE, attributes: { team: 'cardiology' }, promptTokens: 60, completionTokens: 40, totalTokens: 100, latencyMs: 100 }));
  ledger.record(row({ identity: ALICE, attributes: { team: 'cardiology' }, promptTokens: 150, completionTokens: 50, totalTokens: 200, latencyMs: 300, status: 429 }));
  ledger.record(row({ identity: BOB, attributes: { team: FORMULA }, promptTokens: 900, completionTokens: 100, totalTokens: 1_000, latencyMs: 50, model: 'gpt-4o-mini' }));
  ledger.record(row({ identity: CAROL, attributes: { team: AWKWARD }, at: Date.now() - 30 * DAY, totalTokens: 50, promptTokens: 50 }));
  ledger.record(row({ identity: DAVE, attributes: { team: '\u001b[31mred\u001b[0m' }, totalTokens: 5, promptTokens: 5 }));
  ledger.close();
});
afterAll(() => rmSync(home, { recursive: true, force: true }));

function expectCleanFailure(r: RunResult, code: string, exitCode: number): string {
  expect(errorLine(r).code).toBe(code);
  expect(r.code).toBe(exitCode);
  expect(hasStackTrace(r.stderr)).toBe(false);
  expect(r.stdout).toBe('');
  return errorLine(r).line;
}

describe('agent usage', () => {
  it('prints a table per identity from $WICKET_HOME/usage.db, largest total first, numbers right-aligned', async () => {
    const r = await runUsage(['usage']);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^IDENTITY\s+REQUESTS\s+ERRORS\s+PROMPT\s+COMPLETION\s+TOTAL\s+P50 MS\s+P95 MS$/);
    expect(lines.slice(1).map((l) => l.split(/\s+/)[0])).toEqual([BOB, ALICE, CAROL, DAVE]);
    expect(lines[2]!.split(/\s+/)).toEqual([ALICE, '2', '1', '210', '90', '300', '100', '300']);
    for (const column of ['REQUESTS', 'TOTAL', 'P95 MS']) {
      const end = lines[0]!.indexOf(column) + column.length;
      for (const line of lines.slice(1)) expect(line.slice(0, end)).toMatch(/\d$/);
    }
  });

  it('--by attribute:team --since 24h: the window drops old rows; control characters never reach the terminal', async () => {
    const r = await runUsage(['usage', '--by', 'attribute:team', '--since', '24h']);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain('\u001b');
    expect(r.stdout).not.toContain('quoted');
    const keys = r.stdout.trimEnd().split('\n').slice(1).map((l) => l.split(/\s{2,}/)[0]);
    expect(keys).toEqual([FORMULA, 'cardiology', '?[31mred?[0m']);
  });

  it('--json prints {by, since, rows} with ISO times', async () => {
    const r = await runUsage(['usage', '--by', 'model', '--since', '2020-01-01', '--json']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { by: string; since: string; until: null; rows: { key: string; requests: number; totalTokens: number; firstAt: string }[] };
    expect(out.by).toBe('model');
    expect(out.since).toBe('2020-01-01T00:00:00.000Z');
    expect(out.until).toBeNull();
    expect(out.rows.map((x) => [x.key, x.requests, x.totalTokens])).toEqual([
      ['gpt-4o-mini', 1, 1_000],
      ['gpt-4o-2024-08-06', 4, 355],
    ]);
    expect(Number.isNaN(Date.parse(out.rows[0]!.firstAt))).toBe(false);
  });

  it('--csv is RFC 4180 (CRLF, quoted fields) and guards cells against formula injection', async () => {
    const r = await runUsage(['usage', '--by', 'attribute:team', '--csv', '--home', home]);
    expect(r.code).toBe(0);
    const records = r.stdout.split('\r\n');
    expect(records[0]).toBe('attribute:team,requests,errors,prompt_tokens,completion_tokens,total_tokens,p50_latency_ms,p95_latency_ms,first_at,last_at');
    expect(records[1]).toMatch(/^"'=HYPERLINK\(""http:\/\/evil\.example""\)",1,0,900,100,1000,50,50,\d{4}-/);
    expect(r.stdout).toContain('"a,b ""quoted""\nline",1,0,50,0,50,');
    expect(records.at(-1)).toBe('');
    // No cell of the output starts a formula.
    expect(r.stdout).not.toMatch(/(^|,|\r\n)"?[=+\-@]/);
  });

  it('--ledger reads another file; a missing ledger says no usage was recorded yet (exit 1)', async () => {
    const missing = join(home, 'elsewhere.db');
    const line = expectCleanFailure(await runUsage(['usage', '--ledger', missing]), 'WICKET_ERR_LEDGER', 1);
    expect(line).toContain(`no usage recorded yet at ${missing}`);
    const ok = await runUsage(['usage', '--ledger', join(home, 'usage.db'), '--by', 'outlet'], { WICKET_HOME: join(home, 'nowhere') });
    expect(ok.stdout.split('\n')[1]).toMatch(/^openai\s+5\s/);
  });

  it('hostile arguments: one WICKET_ERR_ARGUMENT line naming the accepted forms, exit 2', async () => {
    const cases: [string[], RegExp][] = [
      [['--by', 'status; DROP TABLE usage'], /use identity, model, deployment, outlet or attribute:NAME/],
      [['--by', 'attribute:'], /attribute:NAME needs a name/],
      [['--by', 'attribute:has space'], /attribute:NAME needs a name/],
      [['--since', '60'], /--since: use a duration back from now .* a date .* or an ISO time/],
      [['--since', '2026-02-31'], /--since: use/],
      [['--since', '2026-12-01T25:00:00Z'], /--since: use/],
      [['--since', 'yesterday; rm -rf /'], /--since: use/],
      [['--until', 'x'], /--until: use/],
      [['--since', '1d', '--until', '2d'], /--until must be later than --since/],
      [['--json', '--csv'], /--json and --csv: choose one/],
      [['--ledger', ''], /--ledger/],
    ];
    const results = await Promise.all(cases.map(([args]) => runUsage(['usage', ...args])));
    results.forEach((r, i) => {
      const line = expectCleanFailure(r, 'WICKET_ERR_ARGUMENT', 2);
      expect(line).toMatch(cases[i]![1]);
      expect(line).not.toContain('rm -rf');
    });
  });

  it('a file that is not a ledger fails with WICKET_ERR_LEDGER, no stack trace', async () => {
    expectCleanFailure(await runUsage(['usage', '--ledger', AGENT_SOURCE]), 'WICKET_ERR_LEDGER', 1);
  });
});
