// `npm run bench:latency-reference`: where Wicket's p50 stands against what Node reaches on this
// machine at all. 1 KiB round trips, interleaved in many short rounds (the host's speed drifts,
// and interleaving makes the drift hit every path alike), through:
//
//   ssh -L                client -> ssh -> sshd -> target
//   Wicket                client -> inlet -> relay -> outlet -> target   (as `npm run bench`)
//   minimal + AEAD        minimal-pipeline.ts: same three processes over `ws`, one libsodium
//                         ChaCha20-Poly1305 seal and open per message (as Wicket), nothing else
//   minimal, no crypto    the same without the AEAD
//   minimal TLS + AEAD    minimal + AEAD with the two relay hops on wss:// (the relay's TLS 1.3
//                         suites), as Wicket is deployed and measured
//
// Prints each path's pooled p50 and p99, and p50 as a multiple of ssh -L's. Rounds and round
// trips per round: LATENCY_ROUNDS (default 20), LATENCY_ROUND_TRIPS (default 1000).
import type { ChildProcess } from 'node:child_process';
import { stopAll } from '../lib/local-processes.js';
import { cleanupAll } from './cleanup.js';
import { startTarget, startWicketPortal, WARMUP_ROUND_TRIPS } from './bench-paths.js';
import { startMinimalPipeline } from './minimal-path.js';
import { selfSignedCertificate } from './self-signed.js';
import { sshUnavailableReason, startSshTunnel } from './ssh-tunnel.js';
import { latencyOf, measureRoundTrips } from './workloads.js';

const ROUNDS = Number(process.env.LATENCY_ROUNDS ?? 20);
const ROUND_TRIPS = Number(process.env.LATENCY_ROUND_TRIPS ?? 1_000);
const RUN_TIMEOUT_MS = 120_000;

const children: ChildProcess[] = [];

async function main(): Promise<void> {
  const sshReason = sshUnavailableReason();
  if (sshReason) throw new Error(`the ssh -L baseline is needed here: ${sshReason}`);
  const target = await startTarget();
  children.push(target.child);
  const ssh = await startSshTunnel(target.echo);
  try {
    const paths = [
      { name: 'ssh -L', port: ssh.port },
      { name: 'Wicket', port: (await startWicketPortal(target.sink, target.echo)).echo },
      { name: 'minimal + AEAD', port: (await startMinimalPipeline(target.echo, { crypto: true })).port },
      { name: 'minimal, no crypto', port: (await startMinimalPipeline(target.echo, { crypto: false })).port },
      { name: 'minimal TLS + AEAD', port: (await startMinimalPipeline(target.echo, { crypto: true, tls: selfSignedCertificate('latency-reference') })).port },
    ];
    for (const path of paths) await measureRoundTrips(path.port, 0, WARMUP_ROUND_TRIPS, RUN_TIMEOUT_MS);
    const micros = new Map<string, number[]>(paths.map((p) => [p.name, []]));
    for (let round = 1; round <= ROUNDS; round++) {
      console.error(`latency: round ${round}/${ROUNDS}`);
      for (const path of paths) micros.get(path.name)!.push(...(await measureRoundTrips(path.port, ROUND_TRIPS, 0, RUN_TIMEOUT_MS)).micros);
    }
    const sshP50 = latencyOf(micros.get('ssh -L')!).p50Micros;
    console.log(`\n1 KiB round trips, ${ROUNDS} interleaved rounds of ${ROUND_TRIPS}, pooled`);
    console.log('path                  p50 µs   p99 µs   p50 x ssh');
    for (const path of paths) {
      const l = latencyOf(micros.get(path.name)!);
      console.log(`${path.name.padEnd(20)} ${l.p50Micros.toFixed(0).padStart(7)} ${l.p99Micros.toFixed(0).padStart(8)} ${(l.p50Micros / sshP50).toFixed(2).padStart(11)}`);
    }
  } finally {
    await ssh.close();
    await stopAll();
    for (const child of children) child.kill('SIGTERM');
    await cleanupAll();
  }
}

main().then(
  () => process.exit(0),
  async (err: unknown) => {
    console.error(`latency reference failed: ${err instanceof Error ? err.stack : String(err)}`);
    await stopAll();
    for (const child of children) child.kill('SIGTERM');
    await cleanupAll();
    process.exit(2);
  },
);
