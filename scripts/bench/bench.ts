// `npm run bench`: the same two workloads through three paths, in one run, with ratios.
//
//   direct TCP   client -> target
//   ssh -L       client -> ssh -> sshd -> target            (OpenSSH on loopback)
//   Wicket       client -> inlet -> relay -> outlet -> target  (real processes from the CLI)
//
// Workloads: a single-stream upload of BENCH_BYTES (default 1 GiB) and a 1 KiB request/response
// loop (p50, p99). Floors (issue 3): Wicket throughput >= 0.5x ssh -L, Wicket p50 <= 2x ssh -L.
// Exit code 1 when a floor is missed. Peak memory (VmHWM) of every tunnel process is reported.
// Then the Azure OpenAI gateway's added latency and rate over a TCP portal (gateway-bench.ts;
// BENCH_GATEWAY=0 skips it).
//
// All three paths are set up first and then measured in interleaved rounds (direct, ssh, Wicket,
// direct, …): this machine shares its host, and interleaving makes any drift hit every path alike,
// so the ratios stay honest. Throughput is the median round; latency pools every round's samples.
import { stopAll } from '../lib/local-processes.js';
import { startTarget, startWicketPortal, WARMUP_ROUND_TRIPS } from './bench-paths.js';
import { benchGateway } from './gateway-bench.js';
import { sshUnavailableReason, startSshTunnel, type SshTunnel } from './ssh-tunnel.js';
import { latencyOf, measureRoundTrips, measureThroughput, type LatencyResult, type ThroughputResult } from './workloads.js';

const TOTAL_BYTES = Number(process.env.BENCH_BYTES ?? 1024 ** 3);
const ROUND_TRIPS = Number(process.env.BENCH_ROUND_TRIPS ?? 5_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const RUN_TIMEOUT_MS = 180_000;

interface PathResult {
  name: string;
  throughput?: ThroughputResult;
  latency?: LatencyResult;
  note?: string;
  /** Peak resident memory (MiB) of the processes this path adds, by role. */
  memory?: Record<string, number>;
}

function fmt(n: number | undefined, digits = 0): string {
  return n === undefined || Number.isNaN(n) ? '-' : n.toFixed(digits);
}

function report(results: PathResult[]): boolean {
  const ssh = results.find((r) => r.name === 'ssh -L');
  const wicket = results.find((r) => r.name === 'Wicket');
  const gib = (TOTAL_BYTES / 1024 ** 3).toFixed(TOTAL_BYTES % 1024 ** 3 === 0 ? 0 : 2);
  console.log(`\nWicket benchmark: ${gib} GiB single-stream upload (median of ${ROUNDS} rounds); ${ROUNDS} x ${ROUND_TRIPS} sequential 1 KiB round trips, pooled`);
  console.log('path         MB/s   x ssh   x direct   p50 µs   p99 µs   p50 x ssh   peak RSS MiB');
  const direct = results.find((r) => r.name === 'direct TCP');
  for (const r of results) {
    if (r.note) {
      console.log(`${r.name.padEnd(10)}   ${r.note}`);
      continue;
    }
    const mbps = r.throughput?.megabytesPerSecond;
    const p50 = r.latency?.p50Micros;
    const memory = r.memory ? Object.entries(r.memory).map(([k, v]) => `${k} ${fmt(v)}`).join(', ') : '';
    console.log(
      [
        r.name.padEnd(10),
        fmt(mbps).padStart(7),
        (ssh?.throughput && mbps ? fmt(mbps / ssh.throughput.megabytesPerSecond, 2) : '-').padStart(7),
        (direct?.throughput && mbps ? fmt(mbps / direct.throughput.megabytesPerSecond, 2) : '-').padStart(10),
        fmt(p50).padStart(8),
        fmt(r.latency?.p99Micros).padStart(8),
        (ssh?.latency && p50 ? fmt(p50 / ssh.latency.p50Micros, 2) : '-').padStart(11),
        `   ${memory}`,
      ].join(' '),
    );
  }
  if (!ssh?.throughput || !ssh.latency || !wicket?.throughput || !wicket.latency) {
    console.log('\nfloors not checked: the ssh -L baseline did not run (see its line above)');
    return true;
  }
  const throughputRatio = wicket.throughput.megabytesPerSecond / ssh.throughput.megabytesPerSecond;
  const latencyRatio = wicket.latency.p50Micros / ssh.latency.p50Micros;
  const okThroughput = throughputRatio >= 0.5;
  const okLatency = latencyRatio <= 2;
  console.log(`\nfloor: Wicket throughput >= 0.5x ssh -L: ${throughputRatio.toFixed(2)}x ${okThroughput ? 'OK' : 'MISSED'}`);
  console.log(`floor: Wicket p50 round trip <= 2x ssh -L: ${latencyRatio.toFixed(2)}x ${okLatency ? 'OK' : 'MISSED'}`);
  return okThroughput && okLatency;
}

interface Endpoints {
  name: string;
  sink: number;
  echo: number;
  memory?: () => Record<string, number>;
}

async function main(): Promise<number> {
  const target = await startTarget();
  const skipped: PathResult[] = [];
  const paths: Endpoints[] = [{ name: 'direct TCP', sink: target.sink, echo: target.echo }];
  let sinkTunnel: SshTunnel | undefined;
  let echoTunnel: SshTunnel | undefined;
  try {
    const sshReason = sshUnavailableReason();
    if (sshReason) {
      skipped.push({ name: 'ssh -L', note: `not measured: ${sshReason}` });
    } else {
      sinkTunnel = await startSshTunnel(target.sink);
      echoTunnel = await startSshTunnel(target.echo);
      console.error(`bench: ssh is ${sinkTunnel.version}`);
      paths.push({ name: 'ssh -L', sink: sinkTunnel.port, echo: echoTunnel.port });
    }
    console.error('bench: starting Wicket (relay + two agents) …');
    paths.push({ name: 'Wicket', ...(await startWicketPortal(target.sink, target.echo)) });

    const throughput = new Map<string, ThroughputResult[]>();
    const micros = new Map<string, number[]>();
    for (const path of paths) await measureRoundTrips(path.echo, 0, WARMUP_ROUND_TRIPS, RUN_TIMEOUT_MS);
    for (let round = 1; round <= ROUNDS; round++) {
      for (const path of paths) {
        console.error(`bench: round ${round}/${ROUNDS}, ${path.name} …`);
        const t = await measureThroughput(path.sink, TOTAL_BYTES, RUN_TIMEOUT_MS);
        const l = await measureRoundTrips(path.echo, ROUND_TRIPS, 0, RUN_TIMEOUT_MS);
        console.error(`bench: round ${round}/${ROUNDS}, ${path.name}: ${fmt(t.megabytesPerSecond)} MB/s, p50 ${fmt(l.p50Micros)} µs`);
        throughput.set(path.name, [...(throughput.get(path.name) ?? []), t]);
        micros.set(path.name, [...(micros.get(path.name) ?? []), ...l.micros]);
      }
    }
    const results: PathResult[] = paths.map((path) => {
      const runs = [...throughput.get(path.name)!].sort((a, b) => a.megabytesPerSecond - b.megabytesPerSecond);
      return {
        name: path.name,
        throughput: runs[Math.floor(runs.length / 2)]!,
        latency: latencyOf(micros.get(path.name)!),
        ...(path.memory ? { memory: path.memory() } : {}),
      };
    });
    const tunnelOk = report([...results, ...skipped]);
    // The tunnel's processes go first: the gateway is measured on a quiet machine of its own.
    await sinkTunnel?.close();
    await echoTunnel?.close();
    await stopAll();
    const gatewayOk = process.env.BENCH_GATEWAY === '0' ? true : await benchGateway();
    return tunnelOk && gatewayOk ? 0 : 1;
  } finally {
    await sinkTunnel?.close();
    await echoTunnel?.close();
    await stopAll();
    target.child.kill('SIGTERM');
  }
}

main().then(
  (code) => process.exit(code),
  async (err: unknown) => {
    console.error(`bench failed: ${err instanceof Error ? err.stack : String(err)}`);
    await stopAll();
    process.exit(2);
  },
);
