import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../scripts/lib/local-processes.js';

// `npm run bench` in quick mode (BENCH_QUICK=1) as CI's smoke test: the whole bench runs end to
// end, as a child process, and every figure it reports is a number: a tool that fails through a
// tunnel, a path that does not come up or a report row left empty fails the test. No floors (the
// CI machine's speed is nobody's floor). Skipped, saying why, only when the outside tools are
// missing (scripts/ci-setup.sh installs them as root).

const NGINX_PATHS = ['/usr/sbin/nginx', '/usr/local/sbin/nginx'];
const SSHD_PATHS = ['/usr/sbin/sshd', '/usr/local/sbin/sshd'];

function missingTools(): string[] {
  const onPath = (tool: string, arg: string) => spawnSync(tool, [arg]).error === undefined;
  const missing: string[] = [];
  if (!onPath('iperf3', '--version')) missing.push('iperf3');
  if (!onPath('wrk', '--version')) missing.push('wrk');
  if (!NGINX_PATHS.some((p) => existsSync(p)) && !onPath('nginx', '-v')) missing.push('nginx');
  if (!SSHD_PATHS.some((p) => existsSync(p))) missing.push('sshd');
  if (!onPath('ssh', '-V')) missing.push('ssh');
  return missing;
}

const missing = missingTools();
if (missing.length > 0) console.log(`bench smoke test skipped: ${missing.join(', ')} not installed (scripts/ci-setup.sh installs them as root)`);

function runQuickBench(): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('BENCH_')) env[k] = v;
  env.BENCH_QUICK = '1';
  return new Promise((resolve) => {
    const child = spawn('npx', ['tsx', 'scripts/bench/bench.ts'], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (t: string) => (stdout += t));
    child.stderr.setEncoding('utf8').on('data', (t: string) => (stderr += t));
    // The bench bounds itself (5 min in quick mode); this is the last resort. SIGINT lets it clean up.
    const timer = setTimeout(() => child.kill('SIGINT'), 150_000);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The report's table rows: from the `figure | …` header to the first blank line. */
function tableRows(stdout: string): string[][] {
  const lines = stdout.split('\n');
  const start = lines.findIndex((l) => l.startsWith('figure '));
  const rows: string[][] = [];
  for (let i = start + 1; start >= 0 && i < lines.length && lines[i]!.trim() !== ''; i++) rows.push(lines[i]!.split('|').map((c) => c.trim()));
  return rows;
}

const NUMBER = /^\d+(\.\d+)?( \(\d+(\.\d+)?–\d+(\.\d+)?\))?$/;

describe('npm run bench, quick mode (the CI smoke test)', () => {
  it.skipIf(missing.length > 0)('runs to exit code 0 and reports a number in every row', async () => {
    expect(existsSync(join(REPO_ROOT, 'dist', 'cli', 'agent.js')), 'dist/ is missing: run `npm run build` (npm test does)').toBe(true);
    const { code, stdout, stderr } = await runQuickBench();
    const context = `--- stdout\n${stdout}\n--- stderr (last 3000 chars)\n${stderr.slice(-3000)}`;
    expect(code, context).toBe(0);
    expect(stdout, context).not.toContain('failed measurements');

    const rows = tableRows(stdout);
    expect(rows.length, context).toBe(7);
    for (const [figure, direct, ssh, tls, ratio] of rows) {
      // direct TCP has no tunnel process, so no tunnel CPU: the one "n/a".
      if (!(figure!.startsWith('tunnel CPU') && direct === 'n/a')) expect(direct, `${figure} / direct`).toMatch(NUMBER);
      expect(ssh, `${figure} / ssh -L`).toMatch(NUMBER);
      expect(tls, `${figure} / Wicket TLS`).toMatch(NUMBER);
      expect(ratio, `${figure} / × ssh -L`).toMatch(NUMBER);
    }

    const line = (prefix: string) => stdout.split('\n').find((l) => l.startsWith(prefix)) ?? '';
    expect(line('Wicket ws://'), context).toMatch(/iperf3 1 stream \d+ MB\/s .*p50 \d+ µs .*\d+\.\d+ CPU s\/GB/);
    expect(line('idle memory per stream'), context).toMatch(/ [\d,]+ bytes per stream; served 2,000 of 2,000 /);
    expect(line('peak RSS'), context).toMatch(/Wicket TLS: relay \d+, inlet \d+, outlet \d+ = \d+/);
    // Where the tunnel CPU goes: every process of both tunnels with its own share.
    expect(line('tunnel CPU s per GB by process'), context).toMatch(/ssh -L: ssh \d+\.\d+, sshd \d+\.\d+; Wicket TLS: relay \d+\.\d+, inlet \d+\.\d+, outlet \d+\.\d+/);
    const rtt = line('one stream over 40 ms RTT');
    if (rtt.includes('skipped:')) {
      // Namespaces need root; the bench says why it skipped, and so does this test.
      console.log(`bench smoke test: the 40 ms line was skipped by the bench: ${rtt}`);
    } else {
      expect(rtt, context).toMatch(/direct \d+(\.\d+)? MB\/s, Wicket TLS \d+(\.\d+)? MB\/s, \d+\.\d+× direct/);
    }
    expect(stdout, context).toContain('floors are not checked in quick mode');
  }, 180_000);
});
