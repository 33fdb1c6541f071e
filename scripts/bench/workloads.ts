import { connect, type Socket } from 'node:net';

// The two workloads of `npm run bench`, identical for every path (direct, ssh -L, Wicket):
// a bulk upload to the sink and a 1 KiB request/response loop against the echo service.

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    socket.setNoDelay(true);
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

export interface ThroughputResult {
  bytes: number;
  seconds: number;
  megabytesPerSecond: number;
}

/** Sends `totalBytes` to the sink, honouring backpressure, and waits for its byte count. */
export async function measureThroughput(sinkPort: number, totalBytes: number, timeoutMs: number): Promise<ThroughputResult> {
  const socket = await open(sinkPort);
  const block = Buffer.alloc(64 * 1024, 0x5a);
  const started = process.hrtime.bigint();
  const answer = new Promise<number>((resolve, reject) => {
    const parts: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`throughput run did not finish in ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('data', (chunk) => parts.push(chunk));
    socket.once('end', () => {
      clearTimeout(timer);
      const all = Buffer.concat(parts);
      if (all.length !== 8) reject(new Error(`sink answered ${all.length} bytes, expected 8`));
      else resolve(Number(all.readBigUInt64BE(0)));
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
  let sent = 0;
  await new Promise<void>((resolve) => {
    const pump = () => {
      while (sent < totalBytes) {
        const n = Math.min(block.length, totalBytes - sent);
        sent += n;
        if (!socket.write(n === block.length ? block : block.subarray(0, n))) {
          socket.once('drain', pump);
          return;
        }
      }
      socket.end();
      resolve();
    };
    pump();
  });
  const received = await answer;
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  socket.destroy();
  if (received !== totalBytes) throw new Error(`sink counted ${received} bytes of ${totalBytes}`);
  return { bytes: totalBytes, seconds, megabytesPerSecond: totalBytes / 1e6 / seconds };
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
