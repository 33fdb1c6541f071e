// `npm run bench:bulk-reference`: where Wicket's single-stream bulk stands against what three Node
// processes in its shape reach on this machine at all. iperf3 upload with one stream, in
// interleaved rounds, through:
//
//   ssh -L                   client -> ssh -> sshd -> target
//   Wicket TLS               client -> inlet -> relay (wss://) -> outlet -> target   (as `npm run bench`)
//   Node pipes, TLS + AEAD   pipe-chain.ts: the same three places, each connection piped, TLS 1.3
//                            on the two middle hops (the relay's suites), each chunk sealed by the
//                            first process and opened by the last (ChaCha20-Poly1305 on
//                            node:crypto, as Wicket's channel for bulk); no WebSocket framing, no
//                            multiplexing, no flow control of its own, no handshake
//   Node pipes, TLS hops     the same without the AEAD: bytes piped as they are
//   Node pipes, plain        neither TLS nor AEAD
//
// Prints each path's median MB/s (with the rounds' spread), its CPU seconds per GB over its
// processes, and both as multiples of ssh -L's. BENCH_SECONDS (5) per run, BENCH_ROUNDS (5).
import { installExitGuards, runToExit } from './cleanup.js';
import { startComparedTunnels } from './compared-tunnels.js';
import { wholeFromEnv } from './env-number.js';
import { runIperf } from './iperf3.js';
import { freePort } from './net-util.js';
import { treeCpuSeconds } from './process-cpu.js';
import { startReferenceProcess, tlsEnvironment } from './reference-process.js';
import { sshUnavailableReason } from './ssh-tunnel.js';
import { type CertificateFiles, selfSignedCertificate } from './self-signed.js';
import { formatSpread, median, spreadOf } from './stats.js';

const SECONDS = wholeFromEnv('BENCH_SECONDS', 5);
const ROUNDS = wholeFromEnv('BENCH_ROUNDS', 5);

interface Path {
  name: string;
  port: number;
  pids: number[];
}

/** One pipe-chain.ts process; resolves with its pid once it listens. */
function startPipe(role: 'in' | 'mid' | 'out', listen: number, next: number, tls: CertificateFiles | undefined, aead: boolean): Promise<number> {
  return startReferenceProcess(`pipe-chain ${role}`, './pipe-chain.ts', [role, listen, next], { ...tlsEnvironment(tls), AEAD: aead ? '1' : '0' });
}

/** in -> mid -> out -> target; the path's entry port and processes. */
async function pipeChain(name: string, target: number, tls: CertificateFiles | undefined, aead = false): Promise<Path> {
  const [inPort, midPort, outPort] = [await freePort(), await freePort(), await freePort()];
  const out = await startPipe('out', outPort, target, tls, aead);
  const mid = await startPipe('mid', midPort, outPort, tls, aead);
  const first = await startPipe('in', inPort, midPort, tls, aead);
  return { name, port: inPort, pids: [first, mid, out] };
}

async function main(): Promise<number> {
  installExitGuards(30 * 60_000);
  const sshReason = sshUnavailableReason();
  if (sshReason !== undefined) throw new Error(`the ssh -L baseline is needed here: ${sshReason}`);
  const { iperf, ssh, sshPorts, wicket } = await startComparedTunnels({ http: false });
  const certificate = selfSignedCertificate('bulk-reference');
  const paths: Path[] = [
    { name: 'ssh -L', port: sshPorts.iperf, pids: [ssh.pids.ssh, ssh.pids.sshd] },
    { name: 'Wicket TLS', port: wicket.ports.iperf!, pids: Object.values(wicket.pids) },
    await pipeChain('Node pipes, TLS + AEAD', iperf.port, certificate, true),
    await pipeChain('Node pipes, TLS hops', iperf.port, certificate),
    await pipeChain('Node pipes, plain', iperf.port, undefined),
  ];
  const rates = new Map<string, number[]>(paths.map((p) => [p.name, []]));
  const cpu = new Map<string, number[]>(paths.map((p) => [p.name, []]));
  for (const path of paths) await runIperf({ host: '127.0.0.1', port: path.port, seconds: 2, streams: 1 });
  for (let round = 1; round <= ROUNDS; round++) {
    for (const path of paths) {
      console.error(`bulk reference: round ${round}/${ROUNDS}, ${path.name} …`);
      const before = treeCpuSeconds(path.pids);
      const r = await runIperf({ host: '127.0.0.1', port: path.port, seconds: SECONDS, streams: 1 });
      cpu.get(path.name)!.push((treeCpuSeconds(path.pids) - before) / (r.bytes / 1e9));
      rates.get(path.name)!.push(r.megabytesPerSecond);
    }
  }
  const sshRate = median(rates.get('ssh -L')!);
  const sshCpu = median(cpu.get('ssh -L')!);
  console.log(`\niperf3 upload, 1 stream, ${ROUNDS} interleaved rounds of ${SECONDS} s: median [min–max]`);
  console.log(`${'path'.padEnd(22)} ${'MB/s'.padEnd(18)} × ssh -L   ${'CPU s/GB'.padEnd(20)} × ssh -L`);
  for (const path of paths) {
    const [r, c] = [rates.get(path.name)!, cpu.get(path.name)!];
    console.log(
      `${path.name.padEnd(22)} ${formatSpread(spreadOf(r), 0).padEnd(18)} ${(median(r) / sshRate).toFixed(2).padStart(7)}   ${formatSpread(spreadOf(c), 2).padEnd(20)} ${(median(c) / sshCpu).toFixed(2).padStart(7)}`,
    );
  }
  return 0;
}

runToExit('bulk reference', main);
