import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../scripts/lib/local-processes.js';

// `npm run demo` is half of the README's quick start: it must keep running end to end, and end
// with what AI Corp sees — usage per identity, one team refused at its limit — and a revocation.

describe('npm run demo', () => {
  it('runs end to end: gateway answers, one caller hits its limit, usage per identity, revocation bites', () => {
    const result = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/demo.ts'], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 90_000, env: { ...process.env, CI: 'true' } });
    expect(result.status, result.stderr).toBe(0);
    const out = result.stdout;
    expect(out).toMatch(/Ockham's Razor is the principle of parsimony/);
    expect(out).toMatch(/3: 429 rate limited, retry after \d+ s: WICKET_ERR_GATEWAY_RATE_LIMITED/);
    expect(out).toMatch(/IDENTITY\s+REQUESTS\s+ERRORS\s+PROMPT\s+COMPLETION\s+TOTAL/);
    expect(out.match(/^\s+I[0-9a-f]{64}\s+\d+\s+\d+\s+\d+\s+\d+\s+\d+/gm)).toHaveLength(2);
    expect(out).toMatch(/radiology\s+3\s+1\s/);
    expect(out).toMatch(/refused, as it should be/);
    expect(out).toMatch(/Wicket demo finished/);
  }, 120_000);
});
