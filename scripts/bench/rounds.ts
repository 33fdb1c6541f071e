import { runIperf } from './iperf3.js';
import { treeCpuSeconds } from './process-cpu.js';
import { runWrk } from './wrk.js';

// The interleaved rounds: round r runs every workload through every path before round r+1
// starts, so a drift of this shared, noisy host hits each path alike and the ratios stay honest.

export type PathKey = 'direct' | 'ssh' | 'tls' | 'ws' | 'mesh';

export interface BenchPath {
  key: PathKey;
  label: string;
  iperfPort: number;
  httpPort: number;
  /** The tunnel's processes (their descendants count too); none for direct TCP. */
  processes: Record<string, number>;
}

export type Figure = 'bulk1' | 'bulk4' | 'cpu' | 'p50' | 'rps1' | 'rps64' | 'close';

export interface Settings {
  seconds: number;
  rounds: number;
  warmupSeconds: number;
  /** Concurrent connections for the new-connection-per-request run. */
  closeConnections: number;
}

/** Every round's value per figure and path, and every failed measurement with its reason. */
export class Results {
  readonly #values = new Map<string, number[]>();
  /** Per path, per process role: its CPU seconds per GB of the one-stream upload, per round. */
  readonly #roleCpu = new Map<PathKey, Map<string, number[]>>();
  readonly failures: string[] = [];

  add(figure: Figure, path: PathKey, value: number): void {
    const key = `${figure}/${path}`;
    this.#values.set(key, [...(this.#values.get(key) ?? []), value]);
  }

  get(figure: Figure, path: PathKey): number[] {
    return this.#values.get(`${figure}/${path}`) ?? [];
  }

  addRoleCpu(path: PathKey, role: string, secondsPerGb: number): void {
    const roles = this.#roleCpu.get(path) ?? new Map<string, number[]>();
    this.#roleCpu.set(path, roles);
    roles.set(role, [...(roles.get(role) ?? []), secondsPerGb]);
  }

  /** Each process role of `path` with its CPU seconds per GB in every round (empty when none). */
  roleCpu(path: PathKey): [string, number[]][] {
    return [...(this.#roleCpu.get(path) ?? new Map<string, number[]>())];
  }

  fail(what: string, err: unknown): void {
    const message = `${what}: ${err instanceof Error ? err.message : String(err)}`;
    this.failures.push(message);
    console.error(`bench: FAILED ${message}`);
  }
}

interface Workload {
  name: string;
  paths: readonly PathKey[];
  run(path: BenchPath, s: Settings, results: Results): Promise<string>;
}

const ALL: readonly PathKey[] = ['direct', 'ssh', 'tls', 'ws', 'mesh'];
/** The plain ws:// relay and the two-relay path are secondary lines: the two figures they are compared on. */
const MAIN: readonly PathKey[] = ['direct', 'ssh', 'tls'];

const url = (p: BenchPath) => `http://127.0.0.1:${p.httpPort}/1k`;

export const WORKLOADS: readonly Workload[] = [
  {
    name: 'iperf3 -P1',
    paths: ALL,
    async run(p, s, results) {
      const roles = Object.entries(p.processes);
      const roots = roles.map(([, pid]) => pid);
      const before = treeCpuSeconds(roots);
      const beforeEach = roots.map((pid) => treeCpuSeconds([pid]));
      const r = await runIperf({ host: '127.0.0.1', port: p.iperfPort, seconds: s.seconds, streams: 1 });
      const cpu = treeCpuSeconds(roots) - before;
      const gigabytes = r.bytes / 1e9;
      // Each role's process tree on its own too: where the tunnel's cost sits.
      roles.forEach(([role, pid], i) => results.addRoleCpu(p.key, role, (treeCpuSeconds([pid]) - beforeEach[i]!) / gigabytes));
      results.add('bulk1', p.key, r.megabytesPerSecond);
      if (roles.length > 0) results.add('cpu', p.key, cpu / gigabytes);
      return `${r.megabytesPerSecond.toFixed(0)} MB/s${roles.length > 0 ? `, ${(cpu / gigabytes).toFixed(2)} CPU s/GB` : ''}`;
    },
  },
  {
    name: 'iperf3 -P4',
    paths: MAIN,
    async run(p, s, results) {
      const r = await runIperf({ host: '127.0.0.1', port: p.iperfPort, seconds: s.seconds, streams: 4 });
      results.add('bulk4', p.key, r.megabytesPerSecond);
      return `${r.megabytesPerSecond.toFixed(0)} MB/s`;
    },
  },
  {
    name: 'wrk -c1',
    paths: ALL,
    async run(p, s, results) {
      const r = await runWrk({ url: url(p), threads: 1, connections: 1, seconds: s.seconds });
      results.add('p50', p.key, r.p50Micros);
      results.add('rps1', p.key, r.requestsPerSecond);
      return `p50 ${r.p50Micros} µs, ${r.requestsPerSecond.toFixed(0)} req/s`;
    },
  },
  {
    name: 'wrk -c64',
    paths: MAIN,
    async run(p, s, results) {
      const r = await runWrk({ url: url(p), threads: 2, connections: 64, seconds: s.seconds });
      results.add('rps64', p.key, r.requestsPerSecond);
      return `${r.requestsPerSecond.toFixed(0)} req/s`;
    },
  },
  {
    name: 'wrk new connection per request',
    paths: MAIN,
    async run(p, s, results) {
      const r = await runWrk({ url: url(p), threads: 2, connections: s.closeConnections, seconds: s.seconds, closeEach: true });
      results.add('close', p.key, r.requestsPerSecond);
      return `${r.requestsPerSecond.toFixed(0)} req/s`;
    },
  },
];

/** Proves each path carries both targets, then runs each workload briefly so JIT-compiled code settles. */
export async function warmUp(paths: readonly BenchPath[], s: Settings, results: Results): Promise<void> {
  for (const p of paths) {
    console.error(`bench: warm-up, ${p.label} …`);
    try {
      const res = await fetch(url(p));
      const body = await res.arrayBuffer();
      if (res.status !== 200 || body.byteLength !== 1024) throw new Error(`GET /1k answered ${res.status} with ${body.byteLength} bytes`);
      await runIperf({ host: '127.0.0.1', port: p.iperfPort, seconds: s.warmupSeconds, streams: 1 });
      await runWrk({ url: url(p), threads: 1, connections: 1, seconds: s.warmupSeconds });
      await runWrk({ url: url(p), threads: 2, connections: 64, seconds: s.warmupSeconds });
    } catch (err) {
      results.fail(`warm-up through ${p.label}`, err);
    }
  }
}

export async function runRounds(paths: readonly BenchPath[], s: Settings, results: Results): Promise<void> {
  for (let round = 1; round <= s.rounds; round++) {
    for (const workload of WORKLOADS) {
      for (const p of paths.filter((path) => workload.paths.includes(path.key))) {
        const what = `round ${round}/${s.rounds}, ${workload.name}, ${p.label}`;
        try {
          console.error(`bench: ${what}: ${await workload.run(p, s, results)}`);
        } catch (err) {
          results.fail(what, err);
        }
      }
    }
  }
}
