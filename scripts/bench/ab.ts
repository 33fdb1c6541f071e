// `npm run bench:ab -- REV`: before and after figures of a change from one run. Two Wicket
// tunnels, each with its relay on `--tls`: A is built from git revision REV (a temporary
// worktree), B is this tree; the same iperf3 and nginx targets and the same outside clients
// measure both in interleaved rounds (A, B, A, B, …), so the machine's drift hits both alike.
//
//   npm run bench:ab -- 82cc067                 this tree against an older commit
//   BENCH_AB_A_ARGS='--initial-old-space-size=0' npm run bench:ab -- .
//                                                this tree against itself with a node flag undone
//
// REV "." is this tree for both sides. BENCH_AB_A_ARGS and BENCH_AB_B_ARGS add node flags to
// every process of that side. Figures: iperf3 upload with one stream (MB/s, and the tunnel's CPU
// seconds per GB over its three processes), wrk 1 KiB with one connection (p50) and with 64, and a
// new connection per request (8 at once). BENCH_SECONDS (5) per run, BENCH_ROUNDS (3); medians with
// every round's value, and B ÷ A.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../lib/local-processes.js';
import { cleanupAll, installExitGuards, onCleanup } from './cleanup.js';
import { wholeFromEnv } from './env-number.js';
import { runIperf, startIperfServer } from './iperf3.js';
import { freePort } from './net-util.js';
import { startNginx } from './nginx.js';
import { treeCpuSeconds } from './process-cpu.js';
import { median } from './stats.js';
import { runWrk } from './wrk.js';

type LocalProcesses = typeof import('../lib/local-processes.js');

const SECONDS = wholeFromEnv('BENCH_SECONDS', 5);
const ROUNDS = wholeFromEnv('BENCH_ROUNDS', 3);
const flags = (name: string) => (process.env[name] ?? '').split(/\s+/).filter((f) => f !== '');

/** The tree of `rev` built in a temporary worktree (removed at the end); REPO_ROOT for ".". */
function checkout(rev: string): string {
  if (rev === '.') return REPO_ROOT;
  const dir = mkdtempSync(join(tmpdir(), 'wicket-bench-ab-'));
  execFileSync('git', ['worktree', 'add', '--detach', '--force', dir, rev], { cwd: REPO_ROOT, stdio: 'ignore' });
  onCleanup(`worktree ${rev}`, () => {
    execFileSync('git', ['worktree', 'remove', '--force', dir], { cwd: REPO_ROOT, stdio: 'ignore' });
  });
  // Same dependencies as this tree: what differs between A and B is our code.
  symlinkSync(join(REPO_ROOT, 'node_modules'), join(dir, 'node_modules'));
  console.error(`bench:ab: building ${rev} in ${dir} …`);
  execFileSync(process.execPath, [join(REPO_ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: dir, stdio: 'inherit' });
  return dir;
}

interface Side {
  http: number;
  bulk: number;
  pids: number[];
}

/** relay --tls, an outlet for both targets and an inlet, started by that tree's own helpers. */
async function tunnel(lp: LocalProcesses, nodeArgs: string[], targets: { bulk: number; http: number }): Promise<Side> {
  const relay = await lp.startRelayProcess({ extraArgs: ['--tls'], nodeArgs });
  if (!relay.url.startsWith('wss:')) throw new Error(`relay serves ${relay.url}, expected wss://`);
  const outletHome = await lp.enrollAgent(relay, { attributes: ['ab-outlet'], relayNames: ['ab-bulk', 'ab-http'] });
  const inletHome = await lp.enrollAgent(relay, { attributes: ['ab-inlet'] });
  const outlet = await lp.startNodeProcess(
    outletHome,
    { outlets: (['bulk', 'http'] as const).map((t) => ({ name: t, to: `127.0.0.1:${targets[t]}`, relay: `ab-${t}`, allow: 'ab-inlet' })) },
    { nodeArgs },
  );
  const inlet = await lp.startNodeProcess(inletHome, { inlets: ['bulk', 'http'].map((t) => ({ name: t, from: '127.0.0.1:0', via: `ab-${t}`, allow: 'ab-outlet' })) }, { nodeArgs });
  const port = (name: string) => Number(inlet.inlets[name]?.split(':').pop());
  return { bulk: port('bulk'), http: port('http'), pids: [relay.proc.child.pid!, inlet.proc.child.pid!, outlet.proc.child.pid!] };
}

type Figures = Record<string, number[]>;

async function measure(side: Side, into: Figures): Promise<void> {
  const add = (figure: string, value: number) => (into[figure] ??= []).push(value);
  const cpuBefore = treeCpuSeconds(side.pids);
  const bulk = await runIperf({ host: '127.0.0.1', port: side.bulk, seconds: SECONDS, streams: 1 });
  add('iperf3 1 stream MB/s', bulk.megabytesPerSecond);
  add('tunnel CPU s per GB', (treeCpuSeconds(side.pids) - cpuBefore) / (bulk.bytes / 1e9));
  const url = `http://127.0.0.1:${side.http}/1k`;
  add('HTTP 1 conn p50 µs', (await runWrk({ url, threads: 1, connections: 1, seconds: SECONDS })).p50Micros);
  add('HTTP 64 conns req/s', (await runWrk({ url, threads: 2, connections: 64, seconds: SECONDS })).requestsPerSecond);
  add('new conn per req /s', (await runWrk({ url, threads: 2, connections: 8, seconds: SECONDS, closeEach: true })).requestsPerSecond);
}

async function main(): Promise<number> {
  const rev = process.argv[2];
  if (rev === undefined || rev.startsWith('-')) {
    console.error('usage: npm run bench:ab -- REV   (a git revision for A, or "." for this tree; B is this tree)');
    return 2;
  }
  installExitGuards(30 * 60_000);
  const aRoot = checkout(rev);
  const a: LocalProcesses = await import(join(aRoot, 'scripts/lib/local-processes.ts'));
  const b: LocalProcesses = await import('../lib/local-processes.js');
  const iperf = await startIperfServer({ port: await freePort(), bind: '127.0.0.1' });
  const nginx = await startNginx(await freePort());
  const targets = { bulk: iperf.port, http: nginx.port };
  const sides = { A: await tunnel(a, flags('BENCH_AB_A_ARGS'), targets), B: await tunnel(b, flags('BENCH_AB_B_ARGS'), targets) };
  onCleanup('A side processes', () => a.stopAll());
  const figures: Record<'A' | 'B', Figures> = { A: {}, B: {} };
  for (const side of Object.values(sides)) await runWrk({ url: `http://127.0.0.1:${side.http}/1k`, threads: 1, connections: 1, seconds: 2 });
  for (let round = 1; round <= ROUNDS; round++) {
    for (const name of ['A', 'B'] as const) {
      console.error(`bench:ab: round ${round}/${ROUNDS}, ${name} …`);
      await measure(sides[name], figures[name]);
    }
  }
  const show = (v: number, figure: string) => v.toFixed(figure.includes('GB') ? 2 : 0);
  const describe = (tree: string, env: string) => [tree, ...flags(env)].join(' ');
  console.log(`\nbench:ab, TLS relays, ${ROUNDS} interleaved rounds of ${SECONDS} s runs: A = ${describe(rev === '.' ? 'this tree' : rev, 'BENCH_AB_A_ARGS')}, B = ${describe('this tree', 'BENCH_AB_B_ARGS')}`);
  for (const figure of Object.keys(figures.A)) {
    const [va, vb] = [figures.A[figure]!, figures.B[figure]!];
    const cells = [va, vb].map((v) => `${show(median(v), figure).padStart(7)} [${v.map((x) => show(x, figure)).join(' ')}]`.padEnd(34));
    console.log(`${figure.padEnd(22)} A ${cells[0]} B ${cells[1]} B/A ${(median(vb) / median(va)).toFixed(2)}`);
  }
  return 0;
}

main()
  .then(async (code) => {
    await cleanupAll();
    process.exit(code);
  })
  .catch(async (err: unknown) => {
    console.error(`bench:ab failed: ${err instanceof Error ? err.stack : String(err)}`);
    await cleanupAll();
    process.exit(2);
  });
