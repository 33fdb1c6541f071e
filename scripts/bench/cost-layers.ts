// `npm run bench:layers`: where the CPU goes, per process and per layer, through ssh -L and through
// Wicket TLS (as `npm run bench` deploys it), for three of the bench's workloads: iperf3 upload
// with one stream (CPU s per GB), and wrk against nginx's 1 KiB over 64 keep-alive connections and
// with a new connection per request (CPU µs per request). Each workload runs through each path
// twice per round: once clean, for the rate and each process's CPU per unit (from /proc, sshd's
// children included), and once while `perf record` samples every process of the tunnel. Each
// process's CPU per unit is shared out over the layers its samples fall in (cost-layer.ts).
// Interleaved rounds; medians of rounds.
//
// It answers the question a missed floor leaves: which layers cost Wicket more than ssh -L, and in
// which process. Needs `perf` (Debian: linux-perf) and root or perf_event_paranoid <= 1.
// BENCH_SECONDS (5) per run, BENCH_ROUNDS (3).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { installExitGuards, onCleanup, runTool, runToExit } from './cleanup.js';
import { startComparedTunnels } from './compared-tunnels.js';
import { COST_LAYERS, type CostLayer, costLayer, parsePerfSample } from './cost-layer.js';
import { wholeFromEnv } from './env-number.js';
import { runIperf } from './iperf3.js';
import { processTree, treeCpuSeconds } from './process-cpu.js';
import { sshUnavailableReason } from './ssh-tunnel.js';
import { median } from './stats.js';
import { runWrk } from './wrk.js';

const SECONDS = wholeFromEnv('BENCH_SECONDS', 5);
const ROUNDS = wholeFromEnv('BENCH_ROUNDS', 3);
/** Samples per second per CPU; odd, so it does not beat with 100 Hz or 1 kHz timers. */
const SAMPLE_HZ = 999;
/** The sampled run lasts a second longer than the sampling, which starts after its first half second. */
const SAMPLING_MARGIN_MS = 500;
const LAYER_COLUMN = Math.max(...COST_LAYERS.map((layer) => layer.length)) + 2;

interface Role {
  name: string;
  /** The role's process; its descendants (sshd's per-connection children) count with it. */
  root: number;
}

interface Path {
  name: string;
  iperfPort: number;
  httpPort: number;
  roles: Role[];
}

interface Workload {
  name: string;
  /** What the CPU is counted per, as printed: "s per GB", "µs per request". */
  perUnit: string;
  /** Runs once through `path`; `amount` in the units (GB, requests) times `scale` gives the printed unit. */
  run(path: Path, seconds: number): Promise<{ amount: number; rate: number }>;
  scale: number;
  rateUnit: string;
}

const WORKLOADS: Workload[] = [
  {
    name: 'iperf3 upload, 1 stream',
    perUnit: 's per GB',
    scale: 1,
    rateUnit: 'MB/s',
    async run(path, seconds) {
      const r = await runIperf({ host: '127.0.0.1', port: path.iperfPort, seconds, streams: 1 });
      return { amount: r.bytes / 1e9, rate: r.megabytesPerSecond };
    },
  },
  {
    name: 'wrk, 1 KiB over 64 keep-alive connections',
    perUnit: 'µs per request',
    scale: 1e6,
    rateUnit: 'req/s',
    async run(path, seconds) {
      const r = await runWrk({ url: `http://127.0.0.1:${path.httpPort}/1k`, threads: 2, connections: 64, seconds });
      return { amount: r.requests, rate: r.requestsPerSecond };
    },
  },
  {
    name: 'wrk, a new connection per request (-c8)',
    perUnit: 'µs per request',
    scale: 1e6,
    rateUnit: 'req/s',
    async run(path, seconds) {
      const r = await runWrk({ url: `http://127.0.0.1:${path.httpPort}/1k`, threads: 2, connections: 8, seconds, closeEach: true });
      return { amount: r.requests, rate: r.requestsPerSecond };
    },
  },
];

/** One round of one workload through one path: the rate, and per role its CPU per unit in all and per layer. */
interface RoundCost {
  rate: number;
  byRole: Map<string, { cpu: number; layers: Map<CostLayer, number> }>;
}

function perfUnavailableReason(): string | undefined {
  const r = spawnSync('perf', ['--version'], { encoding: 'utf8' });
  if (r.error !== undefined) return 'perf is not installed (Debian: linux-perf)';
  if (r.status !== 0) return `perf --version failed: ${(r.stderr || r.stdout).trim().slice(0, 200)}`;
  return undefined;
}

/** Samples `pids` for `seconds`; the number of samples per pid and layer. */
async function sampleLayers(pids: readonly number[], seconds: number, file: string): Promise<Map<number, Map<CostLayer, number>>> {
  const timeoutMs = (seconds + 60) * 1000;
  const recorded = await runTool('perf', ['record', '-q', '-F', String(SAMPLE_HZ), '-p', pids.join(','), '-o', file, '--', 'sleep', String(seconds)], { timeoutMs });
  if (recorded.code !== 0) throw new Error(`perf record failed: ${recorded.stderr.trim().slice(0, 300)}`);
  const script = await runTool('perf', ['script', '-i', file, '-F', 'pid,ip,sym,dso'], { timeoutMs });
  if (script.code !== 0) throw new Error(`perf script failed: ${script.stderr.trim().slice(0, 300)}`);
  const counts = new Map<number, Map<CostLayer, number>>();
  for (const line of script.stdout.split('\n')) {
    const sample = parsePerfSample(line);
    if (sample === undefined) continue;
    const layers = counts.get(sample.pid) ?? new Map<CostLayer, number>();
    const layer = costLayer(sample.symbol, sample.dso);
    layers.set(layer, (layers.get(layer) ?? 0) + 1);
    counts.set(sample.pid, layers);
  }
  return counts;
}

/**
 * A clean run gives the rate and each role's CPU per unit (sampling costs CPU and slows the tunnel,
 * so it is not measured there); a second, sampled run gives each role's shares of it by layer.
 */
async function measureRound(workload: Workload, path: Path, file: string): Promise<RoundCost> {
  const trees = path.roles.map((role) => ({ role, pids: processTree([role.root]) }));
  const before = trees.map(({ pids }) => treeCpuSeconds(pids));
  const clean = await workload.run(path, SECONDS);
  const cpu = trees.map(({ pids }, i) => ((treeCpuSeconds(pids) - before[i]!) / clean.amount) * workload.scale);
  const sampledRun = workload.run(path, SECONDS + 1);
  await new Promise((resolve) => setTimeout(resolve, SAMPLING_MARGIN_MS));
  const samples = await sampleLayers(
    trees.flatMap(({ pids }) => pids),
    SECONDS,
    file,
  );
  await sampledRun;
  const byRole = new Map<string, { cpu: number; layers: Map<CostLayer, number> }>();
  trees.forEach(({ role, pids }, i) => {
    const counts = new Map<CostLayer, number>();
    for (const pid of pids) for (const [layer, n] of samples.get(pid) ?? []) counts.set(layer, (counts.get(layer) ?? 0) + n);
    const total = [...counts.values()].reduce((a, b) => a + b, 0);
    const share = (layer: CostLayer) => (total === 0 ? 0 : (counts.get(layer) ?? 0) / total);
    byRole.set(role.name, { cpu: cpu[i]!, layers: new Map(COST_LAYERS.map((layer) => [layer, cpu[i]! * share(layer)])) });
  });
  return { rate: clean.rate, byRole };
}

/** Median CPU per layer (rows) and role (columns), with the row totals; layers that cost nothing are left out. */
function layerTable(workload: Workload, path: Path, rounds: readonly RoundCost[]): { lines: string[]; totals: Map<CostLayer, number> } {
  const roleNames = path.roles.map((r) => r.name);
  const digits = workload.scale === 1 ? 2 : 1;
  const cell = (value: number) => value.toFixed(digits).padStart(8);
  const layerOf = (r: RoundCost, role: string, layer: CostLayer) => r.byRole.get(role)!.layers.get(layer)!;
  const header = `  ${`layer (CPU ${workload.perUnit})`.padEnd(LAYER_COLUMN)}${roleNames.map((n) => n.padStart(8)).join('')}${'total'.padStart(8)}`;
  const totals = new Map<CostLayer, number>();
  const lines = [header];
  for (const layer of COST_LAYERS) {
    const total = median(rounds.map((r) => roleNames.reduce((sum, role) => sum + layerOf(r, role, layer), 0)));
    totals.set(layer, total);
    if (total < 0.5 * 10 ** -digits) continue;
    lines.push(`  ${layer.padEnd(LAYER_COLUMN)}${roleNames.map((role) => cell(median(rounds.map((r) => layerOf(r, role, layer))))).join('')}${cell(total)}`);
  }
  const roleTotals = roleNames.map((role) => median(rounds.map((r) => r.byRole.get(role)!.cpu)));
  const all = median(rounds.map((r) => roleNames.reduce((sum, role) => sum + r.byRole.get(role)!.cpu, 0)));
  lines.push(`  ${'all layers'.padEnd(LAYER_COLUMN)}${roleTotals.map(cell).join('')}${cell(all)}`);
  return { lines, totals };
}

function report(workload: Workload, paths: readonly Path[], rounds: Map<string, RoundCost[]>): void {
  console.log(`\n${workload.name}: CPU ${workload.perUnit}`);
  const totals = new Map<string, Map<CostLayer, number>>();
  for (const path of paths) {
    const r = rounds.get(path.name)!;
    console.log(`\n${path.name}: ${median(r.map((x) => x.rate)).toFixed(0)} ${workload.rateUnit}`);
    const table = layerTable(workload, path, r);
    for (const line of table.lines) console.log(line);
    totals.set(path.name, table.totals);
  }
  const digits = workload.scale === 1 ? 2 : 1;
  console.log(`\nWicket TLS minus ssh -L, CPU ${workload.perUnit} by layer (largest first):`);
  const [ours, theirs] = [totals.get('Wicket TLS')!, totals.get('ssh -L')!];
  const differences = COST_LAYERS.map((layer) => ({ layer, extra: ours.get(layer)! - theirs.get(layer)! })).sort((a, b) => b.extra - a.extra);
  for (const { layer, extra } of differences) {
    if (Math.abs(extra) >= 0.5 * 10 ** -digits) console.log(`  ${layer.padEnd(LAYER_COLUMN)}${(extra >= 0 ? '+' : '') + extra.toFixed(digits)}`);
  }
}

async function main(): Promise<number> {
  installExitGuards(60 * 60_000);
  for (const reason of [perfUnavailableReason(), sshUnavailableReason()]) {
    if (reason !== undefined) {
      console.error(`bench:layers cannot run here: ${reason}`);
      return 2;
    }
  }
  const scratch = mkdtempSync(join(tmpdir(), 'wicket-layers-'));
  onCleanup('perf data', () => rmSync(scratch, { recursive: true, force: true }));
  const { sshPorts, ssh, wicket } = await startComparedTunnels({ http: true });
  const paths: Path[] = [
    { name: 'ssh -L', iperfPort: sshPorts.iperf, httpPort: sshPorts.http!, roles: [{ name: 'ssh', root: ssh.pids.ssh }, { name: 'sshd', root: ssh.pids.sshd }] },
    { name: 'Wicket TLS', iperfPort: wicket.ports.iperf!, httpPort: wicket.ports.http!, roles: Object.entries(wicket.pids).map(([name, root]) => ({ name, root })) },
  ];
  // Warm-up: JIT-compiled code settles before anything is counted.
  for (const workload of WORKLOADS) for (const path of paths) await workload.run(path, 2);
  console.log(`${ROUNDS} interleaved rounds of ${SECONDS} s runs; perf at ${SAMPLE_HZ} Hz; medians of rounds`);
  for (const workload of WORKLOADS) {
    const rounds = new Map<string, RoundCost[]>(paths.map((p) => [p.name, []]));
    for (let round = 1; round <= ROUNDS; round++) {
      for (const path of paths) {
        console.error(`bench:layers: ${workload.name}, round ${round}/${ROUNDS}, ${path.name} …`);
        rounds.get(path.name)!.push(await measureRound(workload, path, join(scratch, 'perf.data')));
      }
    }
    report(workload, paths, rounds);
  }
  return 0;
}

runToExit('bench:layers', main);
