// `npm run bench:http-reference`: where Wicket's HTTP rows stand against what three Node processes
// in its shape reach on this machine at all. wrk against nginx's 1 KiB file, in interleaved rounds:
// one connection (p50), 64 keep-alive connections and a new connection per request (8 at once)
// (requests/s), as `npm run bench` runs them, through:
//
//   ssh -L               client -> ssh -> sshd -> nginx
//   Wicket TLS           client -> inlet -> relay (wss://) -> outlet -> nginx   (as `npm run bench`)
//   minimal TLS + AEAD   minimal-pipeline.ts: the same three places over wss:// (the relay's TLS 1.3
//                        suites), each read sealed end to end (ChaCha20-Poly1305, libsodium) and
//                        sent as one message tagged with its connection; no authentication, no
//                        handshake, no flow control, no batching
//
// Prints each path's medians (with the rounds' spread) and each as a multiple of ssh -L's.
// BENCH_SECONDS (5) per run, BENCH_ROUNDS (5).
import { installExitGuards, onCleanup, runToExit } from './cleanup.js';
import { wholeFromEnv } from './env-number.js';
import { startMinimalPipeline } from './minimal-path.js';
import { startNginx } from './nginx.js';
import { freePort } from './net-util.js';
import { selfSignedCertificate } from './self-signed.js';
import { sshUnavailableReason, startSshForwards } from './ssh-tunnel.js';
import { formatSpread, median, spreadOf } from './stats.js';
import { startWicketTunnel } from './wicket-tunnel.js';
import { runWrk } from './wrk.js';

const SECONDS = wholeFromEnv('BENCH_SECONDS', 5);
const ROUNDS = wholeFromEnv('BENCH_ROUNDS', 5);
const NEW_CONNECTIONS_AT_ONCE = 8; // as bench.ts

const WORKLOADS = [
  { name: 'HTTP 1 KiB, 1 connection: p50 µs', run: (url: string) => runWrk({ url, threads: 1, connections: 1, seconds: SECONDS }).then((r) => r.p50Micros) },
  { name: 'HTTP 1 KiB, 64 connections: req/s', run: (url: string) => runWrk({ url, threads: 2, connections: 64, seconds: SECONDS }).then((r) => r.requestsPerSecond) },
  {
    name: 'new connection per request: req/s',
    run: (url: string) => runWrk({ url, threads: 2, connections: NEW_CONNECTIONS_AT_ONCE, seconds: SECONDS, closeEach: true }).then((r) => r.requestsPerSecond),
  },
];

async function main(): Promise<number> {
  installExitGuards(30 * 60_000);
  const sshReason = sshUnavailableReason();
  if (sshReason !== undefined) throw new Error(`the ssh -L baseline is needed here: ${sshReason}`);
  const nginx = await startNginx(await freePort());
  onCleanup('nginx', () => nginx.stop());
  const ssh = await startSshForwards([nginx.port]);
  onCleanup('ssh -L', () => ssh.close());
  const wicket = await startWicketTunnel({ tls: true, targets: { http: `127.0.0.1:${nginx.port}` } });
  onCleanup('Wicket', () => wicket.stop());
  const minimal = await startMinimalPipeline(nginx.port, { crypto: true, tls: selfSignedCertificate('http-reference') });
  const paths = [
    { name: 'ssh -L', port: ssh.ports[0]! },
    { name: 'Wicket TLS', port: wicket.ports.http! },
    { name: 'minimal TLS + AEAD', port: minimal.port },
  ];
  const url = (port: number) => `http://127.0.0.1:${port}/1k`;
  const results = new Map<string, number[]>();
  const key = (path: string, workload: string) => `${path} / ${workload}`;
  for (const path of paths) await runWrk({ url: url(path.port), threads: 2, connections: 64, seconds: 2 });
  for (let round = 1; round <= ROUNDS; round++) {
    for (const workload of WORKLOADS) {
      for (const path of paths) {
        console.error(`http reference: round ${round}/${ROUNDS}, ${workload.name}, ${path.name} …`);
        const value = await workload.run(url(path.port));
        results.set(key(path.name, workload.name), [...(results.get(key(path.name, workload.name)) ?? []), value]);
      }
    }
  }
  console.log(`\nwrk against nginx (1 KiB), ${ROUNDS} interleaved rounds of ${SECONDS} s: median [min–max], and × ssh -L`);
  for (const workload of WORKLOADS) {
    console.log(workload.name);
    const sshMedian = median(results.get(key('ssh -L', workload.name))!);
    for (const path of paths) {
      const values = results.get(key(path.name, workload.name))!;
      console.log(`  ${path.name.padEnd(20)} ${formatSpread(spreadOf(values), 0).padEnd(24)} ${(median(values) / sshMedian).toFixed(2).padStart(6)}`);
    }
  }
  return 0;
}

runToExit('http reference', main);
