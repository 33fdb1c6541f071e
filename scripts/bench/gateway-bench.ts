import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Pool } from 'undici';
import { enrollAgent, startNodeProcess, startRelayProcess, tempDir } from '../lib/local-processes.js';
import { peakMemoryMiB } from './bench-paths.js';
import { onCleanup } from './cleanup.js';

// The gateway's cost, measured the way an app feels it: the same chat completion request
// (official Azure OpenAI shape, non-streamed, ~1 KB answer) from one kept-alive client through
//   TCP portal        inlet -> relay -> outlet (plain TCP) -> stand-in
//   gateway           inlet -> relay -> outlet (gateway, no limit rule for the caller) -> stand-in
//   gateway, limited  the same with a per-identity limit rule (the SQLite counters on the path)
// in interleaved rounds. Added latency = gateway p50 (p99) minus the TCP portal's. Then requests
// per second at 64 concurrent connections through each. Floor (issue 11): ≤ 1 ms p50 added.
// The stand-in runs as its own process (plain HTTP on loopback), so TLS to it is not in the figure.

const REQUESTS = Number(process.env.BENCH_GATEWAY_REQUESTS ?? 2_000);
const CONCURRENT_REQUESTS = Number(process.env.BENCH_GATEWAY_CONCURRENT_REQUESTS ?? 10_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const WARMUP = 1_000;
const API_KEY = 'bench-backend-key-0123456789';
const BODY = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: "What is Ockham's razor?" }], max_tokens: 200 });
const PATH = '/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21';

interface GatewayPath {
  name: string;
  port: number;
  /** What the app sends: the real key through a TCP portal, any placeholder through the gateway. */
  apiKey: string;
}

async function startStandinProcess(): Promise<{ child: ChildProcess; url: string }> {
  const keyFile = join(tempDir('wicket-bench-gw-'), 'api-key');
  writeFileSync(keyFile, API_KEY, { mode: 0o600 });
  const child = spawn(process.execPath, ['--import', 'tsx', new URL('../../examples/azure-openai-standin/main.ts', import.meta.url).pathname, '--listen', '127.0.0.1:0', '--plain-http', '--api-key-file', keyFile], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`stand-in exited with ${code}`)));
  });
  return { child, url: (JSON.parse(line) as { url: string }).url };
}

async function startPaths(standinUrl: string, standinPort: number): Promise<{ paths: GatewayPath[]; memory: () => Record<string, number> }> {
  const relay = await startRelayProcess();
  const names = ['bench-tcp', 'bench-gw', 'bench-gw-limited'];
  const outletHome = await enrollAgent(relay, { attributes: ['bench-outlet'], relayNames: names });
  const inletHome = await enrollAgent(relay, { attributes: ['bench-inlet'] });
  const keyFile = join(outletHome.home, 'aoai.key');
  writeFileSync(keyFile, API_KEY, { mode: 0o600 });
  const backends = [{ name: 'standin', url: standinUrl, auth: { kind: 'api-key', file: keyFile } }];
  const outlet = await startNodeProcess(outletHome, {
    outlets: [
      { name: 'tcp', to: `127.0.0.1:${standinPort}`, relay: 'bench-tcp', allow: 'bench-inlet' },
      { name: 'gw', relay: 'bench-gw', allow: 'bench-inlet', gateway: { kind: 'azure-openai', backends } },
      {
        name: 'gw-limited', relay: 'bench-gw-limited', allow: 'bench-inlet',
        gateway: { kind: 'azure-openai', backends, limits: [{ identity: inletHome.identifier, tokensPerMinute: 1_000_000_000, requestsPerMinute: 1_000_000_000 }] },
      },
    ],
  });
  const inlet = await startNodeProcess(inletHome, { inlets: names.map((n) => ({ name: n, from: '127.0.0.1:0', via: n, allow: 'bench-outlet' })) });
  const port = (name: string) => Number(inlet.inlets[name]?.split(':').pop());
  return {
    paths: [
      { name: 'TCP portal', port: port('bench-tcp'), apiKey: API_KEY },
      { name: 'gateway', port: port('bench-gw'), apiKey: 'placeholder' },
      { name: 'gateway, limited', port: port('bench-gw-limited'), apiKey: 'placeholder' },
    ],
    memory: () => ({ outlet: peakMemoryMiB(outlet.proc.child.pid), inlet: peakMemoryMiB(inlet.proc.child.pid) }),
  };
}

async function oneRequest(pool: Pool, apiKey: string): Promise<void> {
  const res = await pool.request({ method: 'POST', path: PATH, headers: { 'content-type': 'application/json', 'api-key': apiKey }, body: BODY });
  await res.body.arrayBuffer();
  if (res.statusCode !== 200) throw new Error(`bench request answered HTTP ${res.statusCode}`);
}

/** Sequential requests on one kept-alive connection: each request's wall time, in µs. */
async function sequential({ port, apiKey }: GatewayPath, count: number): Promise<number[]> {
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: 1 });
  const micros: number[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const start = process.hrtime.bigint();
      await oneRequest(pool, apiKey);
      micros.push(Number(process.hrtime.bigint() - start) / 1000);
    }
  } finally {
    await pool.close();
  }
  return micros;
}

/** `total` requests over 64 kept-alive connections, 64 in flight: requests per second. */
async function concurrent({ port, apiKey }: GatewayPath, total: number): Promise<number> {
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: 64 });
  let next = 0;
  const start = performance.now();
  try {
    await Promise.all(Array.from({ length: 64 }, async () => {
      while (next++ < total) await oneRequest(pool, apiKey);
    }));
  } finally {
    await pool.close();
  }
  return total / ((performance.now() - start) / 1000);
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function median(values: number[]): number {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
}

/** Runs the gateway benchmark; returns whether its floor held. */
export async function benchGateway(): Promise<boolean> {
  const standin = await startStandinProcess();
  // Not one of local-processes' tracked processes: an interrupted bench stops it through cleanup.ts.
  const stopStandin = onCleanup('gateway stand-in', () => {
    standin.child.kill('SIGTERM');
  });
  try {
    const { paths, memory } = await startPaths(standin.url, Number(new URL(standin.url).port));
    for (const path of paths) await sequential(path, WARMUP);
    const samples = new Map<string, number[]>(paths.map((p) => [p.name, []]));
    const rates = new Map<string, number[]>(paths.map((p) => [p.name, []]));
    for (let round = 1; round <= ROUNDS; round++) {
      for (const path of paths) {
        console.error(`bench: gateway round ${round}/${ROUNDS}, ${path.name} …`);
        samples.get(path.name)!.push(...(await sequential(path, REQUESTS)));
        rates.get(path.name)!.push(await concurrent(path, CONCURRENT_REQUESTS));
      }
    }
    const stats = paths.map((path) => {
      const sorted = [...samples.get(path.name)!].sort((a, b) => a - b);
      const r = rates.get(path.name)!;
      return { name: path.name, p50: percentile(sorted, 50), p99: percentile(sorted, 99), rate: median(r), spread: `${Math.round(Math.min(...r))}–${Math.round(Math.max(...r))}` };
    });
    const tcp = stats[0]!;
    console.log(`\nGateway: chat completion (Azure shape, ~1 KB answer), ${ROUNDS} x ${REQUESTS} sequential requests pooled; ${ROUNDS} x ${CONCURRENT_REQUESTS} at 64 connections (median round)`);
    console.log('path               p50 µs   p99 µs   added p50 µs   added p99 µs   req/s @64   (spread)      x TCP portal');
    for (const s of stats) {
      console.log(
        `${s.name.padEnd(17)} ${s.p50.toFixed(0).padStart(7)} ${s.p99.toFixed(0).padStart(8)} ${(s.p50 - tcp.p50).toFixed(0).padStart(14)} ${(s.p99 - tcp.p99).toFixed(0).padStart(14)} ` +
          `${s.rate.toFixed(0).padStart(11)}   (${s.spread})`.padEnd(28) + `${(s.rate / tcp.rate).toFixed(2)}x`,
      );
    }
    const mem = memory();
    console.log(`peak RSS MiB: outlet ${mem.outlet?.toFixed(0)} (three outlets, two of them gateways), inlet ${mem.inlet?.toFixed(0)}`);
    const worstAdded = Math.max(...stats.slice(1).map((s) => s.p50 - tcp.p50));
    const ok = worstAdded <= 1_000;
    console.log(`floor: gateway adds <= 1 ms p50 over a TCP portal: ${(worstAdded / 1000).toFixed(3)} ms ${ok ? 'OK' : 'MISSED'}`);
    return ok;
  } finally {
    await stopStandin();
  }
}
