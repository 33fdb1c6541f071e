// `npm run bench`: Wicket as deployed (relay with TLS, self-signed and pinned) against direct TCP
// and `ssh -L`, measured with outside clients, in one run, as ratios:
//
//   direct TCP   client -> target
//   ssh -L       client -> ssh -> sshd -> target                     (OpenSSH on loopback)
//   Wicket TLS   client -> inlet -> relay (wss://) -> outlet -> target  (the CLI's processes)
//   Wicket ws:// the same with a plain relay: one secondary line
//   two relays   client -> inlet -> relay 1 -> relay 2 -> outlet -> target  (TLS, one PostgreSQL
//                store, the relay mesh of issue 14): one secondary line against the one-relay path
//
// Targets: one iperf3 server and one nginx serving /1k. Workloads in interleaved rounds: iperf3
// upload with 1 and 4 streams (and the tunnel's CPU seconds per GB during the first), wrk with 1
// and 64 keep-alive connections and with a new connection per request. Then, once: peak RSS,
// memory per idle stream with many connections open (idle-streams.ts), one stream over a 40 ms
// RTT link between network namespaces (rtt-bench.ts), and the gateway (gateway-bench.ts;
// BENCH_GATEWAY=0 skips it). Floors (issue 12) are checked in full mode: exit 1 when one is
// missed or a measurement failed, 2 when the bench itself broke.
//
// BENCH_QUICK=1: a smoke run for CI (1 round of 1 s runs, 2,000 idle connections, a short 40 ms
// run, no gateway, no floors). BENCH_SECONDS, BENCH_ROUNDS, BENCH_IDLE_STREAMS, BENCH_RTT_SECONDS
// and BENCH_RTT_ROUNDS override the defaults. Progress goes to stderr, the report to stdout.
import { spawnSync } from 'node:child_process';
import { cpus, release } from 'node:os';
import { cleanupAll, installExitGuards, onCleanup, runToExit } from './cleanup.js';
import { wholeFromEnv } from './env-number.js';
import { benchGateway } from './gateway-bench.js';
import { measureIdleStreams } from './idle-streams.js';
import { iperfVersion, startIperfServer } from './iperf3.js';
import { freePort } from './net-util.js';
import { NGINX, nginxVersion, startNginx } from './nginx.js';
import { CLK_TCK, memoryBytes, processTree } from './process-cpu.js';
import { printReport } from './report.js';
import { Results, runRounds, warmUp, type BenchPath, type PathKey, type Settings } from './rounds.js';
import { measureOverDelayLink } from './rtt-bench.js';
import { postgresBinaries, startPostgresCluster } from '../lib/postgres-cluster.js';
import { sshUnavailableReason, startSshForwards } from './ssh-tunnel.js';
import { startWicketTunnel } from './wicket-tunnel.js';
import { wrkVersion } from './wrk.js';

const QUICK = process.env.BENCH_QUICK === '1';

const settings: Settings = {
  seconds: wholeFromEnv('BENCH_SECONDS', QUICK ? 1 : 5),
  rounds: wholeFromEnv('BENCH_ROUNDS', QUICK ? 1 : 3),
  warmupSeconds: QUICK ? 1 : 2,
  // A new connection per request: 8 at once keeps every path busy without measuring the listen backlog.
  closeConnections: 8,
};
// Quick mode holds 2,000, not fewer: 500 streams' few MB sat within the three processes' RSS noise
// (three reads of 500 gave 6,840-20,038 bytes per stream and one CI run -352; three of 2,000 gave
// 10,408-14,879).
const IDLE_STREAMS = wholeFromEnv('BENCH_IDLE_STREAMS', QUICK ? 2_000 : 10_000);
const RTT_SECONDS = wholeFromEnv('BENCH_RTT_SECONDS', QUICK ? 3 : 10);
const RTT_ROUNDS = wholeFromEnv('BENCH_RTT_ROUNDS', QUICK ? 1 : 2);

/** The outside tools the bench cannot run without, or undefined when all are here. */
function missingTools(): string | undefined {
  const missing = ['iperf3', 'wrk'].filter((tool) => spawnSync(tool, ['--version']).error !== undefined);
  if (spawnSync(NGINX, ['-v']).error !== undefined) missing.push('nginx');
  return missing.length > 0 ? `${missing.join(', ')} not installed (scripts/ci-setup.sh installs them as root)` : undefined;
}

/** Peak RSS per role: each role's process and its descendants (sshd's per-connection children). */
function peakRssOf(path: BenchPath): Record<string, number> {
  const roles: Record<string, number> = {};
  for (const [role, pid] of Object.entries(path.processes)) {
    roles[role] = processTree([pid]).reduce((sum, p) => sum + (memoryBytes(p, 'VmHWM') || 0), 0);
  }
  return roles;
}

/**
 * Starts the two-relay path (a throwaway PostgreSQL, two TLS relays on it) and adds it to `paths`;
 * the reason when it cannot run here (no PostgreSQL binaries).
 */
async function startTwoRelayPath(targets: Record<string, string>, paths: BenchPath[], stops: (() => Promise<void>)[]): Promise<string | undefined> {
  const binaries = postgresBinaries();
  if ('skip' in binaries) return `not measured: ${binaries.skip}`;
  console.error('bench: starting PostgreSQL and Wicket TLS over two relays …');
  const cluster = await startPostgresCluster();
  // Pushed first, so stopped last (the stops run in reverse): the relays go before their store.
  stops.push(onCleanup('PostgreSQL', () => cluster.stop()));
  const mesh = await startWicketTunnel({ tls: true, targets, twoRelaysOn: cluster.url(await cluster.createDatabase('bench')) });
  stops.push(onCleanup('Wicket TLS, two relays', () => mesh.stop()));
  paths.push({ key: 'mesh', label: 'Wicket TLS, two relays', iperfPort: mesh.ports.iperf!, httpPort: mesh.ports.http!, processes: { ...mesh.pids } });
  return undefined;
}

async function main(): Promise<number> {
  installExitGuards((QUICK ? 5 : 40) * 60_000);
  const missing = missingTools();
  if (missing !== undefined) {
    console.error(`bench: cannot run: ${missing}`);
    return 2;
  }
  const iperf = await startIperfServer({ port: await freePort(), bind: '127.0.0.1' });
  const stopIperf = onCleanup('iperf3 server', () => iperf.proc.kill('SIGTERM', 3_000).then(() => undefined));
  const nginx = await startNginx(await freePort());
  const stopNginx = onCleanup('nginx', () => nginx.stop());
  const targets = { iperf: `127.0.0.1:${iperf.port}`, http: `127.0.0.1:${nginx.port}` };

  const paths: BenchPath[] = [{ key: 'direct', label: 'direct TCP', iperfPort: iperf.port, httpPort: nginx.port, processes: {} }];
  let sshLine = '';
  const stops: (() => Promise<void>)[] = [];
  const sshReason = sshUnavailableReason();
  if (sshReason === undefined) {
    const ssh = await startSshForwards([iperf.port, nginx.port]);
    stops.push(onCleanup('ssh -L', () => ssh.close()));
    paths.push({ key: 'ssh', label: 'ssh -L', iperfPort: ssh.ports[0]!, httpPort: ssh.ports[1]!, processes: { ssh: ssh.pids.ssh, sshd: ssh.pids.sshd } });
    // The cipher both ends prefer (OpenSSH's defaults here), so a reader knows what ssh -L pays for.
    const cipher = /^ciphers ([^,\s]+)/m.exec(String(spawnSync('ssh', ['-G', '127.0.0.1']).stdout))?.[1] ?? 'default';
    sshLine = `ssh -L: ${ssh.version}; one sshd and one \`ssh -N\` with a -L per target, on loopback, cipher ${cipher}`;
  } else {
    sshLine = `ssh -L: not measured: ${sshReason}`;
  }
  console.error('bench: starting Wicket TLS and Wicket ws:// (relay, outlet, inlet each) …');
  const tls = await startWicketTunnel({ tls: true, targets });
  stops.push(onCleanup('Wicket TLS', () => tls.stop()));
  const ws = await startWicketTunnel({ tls: false, targets });
  stops.push(onCleanup('Wicket ws://', () => ws.stop()));
  for (const [key, label, t] of [['tls', 'Wicket TLS', tls], ['ws', 'Wicket ws://', ws]] as const) {
    paths.push({ key, label, iperfPort: t.ports.iperf!, httpPort: t.ports.http!, processes: { ...t.pids } });
  }
  const meshSkipped = await startTwoRelayPath(targets, paths, stops);

  const header = [
    `Wicket benchmark, ${QUICK ? 'quick mode (BENCH_QUICK=1: a smoke run, floors not checked)' : 'full mode'}: the deployed configuration, outside clients`,
    `  Wicket TLS: \`relay start --tls\`, its self-signed certificate pinned in every ticket (sha256 ${tls.fingerprint?.slice(0, 16)}…); agents dial ${tls.url}`,
    '  Wicket ws:// (secondary line): the same with a plain ws:// relay on loopback; all Wicket processes run from dist/ (bin/*.js)',
    `  Wicket TLS, two relays (secondary line): ${meshSkipped ?? 'two `relay start --tls --store postgres://…` on one PostgreSQL (a throwaway cluster on loopback), the inlet on relay 1 and the outlet on relay 2'}`,
    `  ${sshLine}`,
    `  targets: ${await iperfVersion()} server, ${await nginxVersion()} (1 worker) serving 1,024 bytes at /1k; clients iperf3 (upload) and ${await wrkVersion()}`,
    `  ${settings.rounds} interleaved round(s) (round r: every workload through every path); runs of ${settings.seconds} s after ${settings.warmupSeconds} s warm-ups; cells: median (min–max) of the rounds`,
    `  host: node ${process.version}, Linux ${release()}, ${cpus().length} CPUs; MB/s = 1e6 bytes/s; CPU per GB = utime+stime (+ reaped children) of the tunnel's processes and descendants (CLK_TCK ${CLK_TCK}) over 1e9 bytes received`,
  ];

  const results = new Results();
  await warmUp(paths, settings, results);
  await runRounds(paths, settings, results);
  const peakRss: Partial<Record<PathKey, Record<string, number>>> = {};
  for (const p of paths) if (p.key !== 'direct') peakRss[p.key] = peakRssOf(p);
  // The one-off measurements get a quiet machine: the round's tunnels and targets go first.
  for (const stop of stops.reverse()) await stop();
  await stopNginx();
  await stopIperf();

  console.error(`bench: idle memory, ${IDLE_STREAMS} connections through one inlet …`);
  const idle = await measureIdleStreams(IDLE_STREAMS).catch((err: unknown) => {
    results.fail('idle memory per stream', err);
    return { skipped: err instanceof Error ? err.message : String(err) };
  });
  console.error('bench: one stream over a 40 ms RTT link …');
  const rtt = await measureOverDelayLink({ seconds: RTT_SECONDS, rounds: RTT_ROUNDS, warmupSeconds: QUICK ? 1 : 3 });
  if ('skipped' in rtt) console.error(`bench: 40 ms line skipped: ${rtt.skipped}`);

  const floorsOk = printReport({ quick: QUICK, settings, header, paths, results, peakRss, idle, rtt, meshSkipped });
  let gatewayOk = true;
  if (QUICK || process.env.BENCH_GATEWAY === '0') {
    console.log(`\nGateway: skipped (${QUICK ? 'quick mode' : 'BENCH_GATEWAY=0'})`);
  } else {
    await cleanupAll(); // the gateway is measured on a machine of its own
    gatewayOk = await benchGateway();
  }
  return floorsOk && gatewayOk && results.failures.length === 0 ? 0 : 1;
}

runToExit('bench', main);
