import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../scripts/lib/local-processes.js';

// `npm run bench:scale` in miniature (20 agents, one relay, no idle wait): the whole run end to
// end as a child process, so the bench cannot rot unnoticed between the rare full runs. No
// floors: the memory figures only have to be numbers. And a hard open-files limit too low for
// the agents asked for stops the bench before it starts anything, saying what to do.

const AGENTS = 20;

function runSmallScaleBench(shellPrefix = ''): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('BENCH_')) env[k] = v;
  Object.assign(env, { BENCH_SCALE_AGENTS: String(AGENTS), BENCH_SCALE_CASES: 'A', BENCH_SCALE_SETTLE_S: '0' });
  const script = `${shellPrefix}exec "$0" "$@"`;
  return new Promise((resolve) => {
    const child = spawn('sh', ['-c', script, process.execPath, '--import', 'tsx', 'scripts/bench/scale.ts'], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (t: string) => (stdout += t));
    child.stderr.setEncoding('utf8').on('data', (t: string) => (stderr += t));
    // The bench bounds itself; this is the last resort, and SIGINT lets it clean up.
    const timer = setTimeout(() => child.kill('SIGINT'), 60_000);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('npm run bench:scale, 20 agents on one relay', () => {
  it('connects every agent, the relay counts them too, and every figure is a number', async () => {
    const { code, stdout, stderr } = await runSmallScaleBench();
    expect(code, `${stdout}\n${stderr}`).toBe(0);
    const row = stdout.split('\n').find((l) => l.startsWith('r1 '));
    expect(row, stdout).toBeDefined();
    // relay, agents (seen by the agents), relay counts (its /metrics), before, idle, KiB/agent, projection, % of 1 GB
    const cells = row!.trim().split(/\s+/);
    expect(cells.slice(1, 3)).toEqual([String(AGENTS), String(AGENTS)]);
    for (const cell of cells.slice(3, 7)) expect(cell).toMatch(/^-?\d+\.\d$/);
    expect(cells[7]).toMatch(/^-?\d+%$/);
    expect(stdout).toContain(`connected when measured: ${AGENTS} of ${AGENTS}; connections dropped while idle: 0`);
    expect(stdout).toMatch(new RegExp(`load generators: 1 processes holding ${AGENTS} agents: \\d+\\.\\d MiB before, \\d+\\.\\d MiB idle`));
    expect(stdout).toMatch(/^open-files soft limit: relay \d+, load generator \d+$/m);
  }, 90_000);

  it('a hard open-files limit below agents + spare: exit 2 before anything starts, naming the limit and the fix', async () => {
    const { code, stdout, stderr } = await runSmallScaleBench('ulimit -n 200 && ');
    expect(code, `${stdout}\n${stderr}`).toBe(2);
    expect(stderr).toContain(`a relay holding ${AGENTS} agents needs about ${AGENTS + 256} open files but the hard limit is 200 (ulimit -Hn)`);
    expect(stderr).not.toContain('starting the relays');
  }, 30_000);
});
