import { connect, type Socket } from 'node:net';

// The 1 KiB request/response loop of `npm run bench:latency-reference`, identical for every path
// (ssh -L, Wicket, the minimal pipelines), against target-server.ts's echo service. (`npm run
// bench` measures with outside clients instead: iperf3.ts, wrk.ts.)

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    socket.setNoDelay(true);
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

export interface LatencyResult {
  samples: number;
  p50Micros: number;
  p99Micros: number;
  /** Every round trip in µs, sorted, so several runs can be pooled. */
  micros: number[];
}

export function latencyOf(micros: number[]): LatencyResult {
  const sorted = [...micros].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return { samples: sorted.length, p50Micros: at(0.5), p99Micros: at(0.99), micros: sorted };
}

/** Sequential 1 KiB request/response round trips on one connection; percentiles in µs. */
export async function measureRoundTrips(echoPort: number, count: number, warmup: number, timeoutMs: number): Promise<LatencyResult> {
  const socket = await open(echoPort);
  const request = Buffer.alloc(1024, 0x42);
  const samples: number[] = [];
  const deadline = Date.now() + timeoutMs;
  let pending: { need: number; resolve: () => void } | undefined;
  socket.on('data', (chunk) => {
    if (!pending) return;
    pending.need -= chunk.length;
    if (pending.need <= 0) {
      const done = pending.resolve;
      pending = undefined;
      done();
    }
  });
  const closed = new Promise<never>((_, reject) => {
    socket.once('close', () => reject(new Error('echo connection closed during the round-trip loop')));
    socket.once('error', reject);
  });
  for (let i = 0; i < warmup + count; i++) {
    if (Date.now() > deadline) throw new Error(`round-trip loop exceeded ${timeoutMs} ms after ${i} iterations`);
    const started = process.hrtime.bigint();
    const answered = new Promise<void>((resolve) => {
      pending = { need: request.length, resolve };
    });
    socket.write(request);
    await Promise.race([answered, closed]);
    if (i >= warmup) samples.push(Number(process.hrtime.bigint() - started) / 1e3);
  }
  socket.removeAllListeners('close');
  socket.destroy();
  return latencyOf(samples);
}
