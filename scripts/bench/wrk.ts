import { fileURLToPath } from 'node:url';
import { runTool } from './cleanup.js';

// wrk, the HTTP load generator, against nginx's /1k through each path. Its report comes from
// wrk-report.lua as one exact JSON line, not from the rounded human table.

const REPORT_SCRIPT = fileURLToPath(new URL('./wrk-report.lua', import.meta.url));

export interface WrkResult {
  requests: number;
  seconds: number;
  requestsPerSecond: number;
  p50Micros: number;
  p99Micros: number;
  errors: number;
}

interface WrkJson {
  requests: number;
  duration_us: number;
  errors: { connect: number; read: number; write: number; status: number; timeout: number };
  latency_us: { p50: number; p99: number };
}

/**
 * Errors a run may have and still count: a handful at the very end, when wrk stops mid-request.
 * More than that (resets, timeouts, non-2xx answers) means the path did not carry the load, and
 * the run is a failed measurement, never a number.
 */
function errorAllowance(requests: number): number {
  return Math.max(5, Math.floor(requests / 1_000));
}

/**
 * `wrk -t threads -c connections -d seconds URL`; `closeEach` sends `Connection: close`, so every
 * request opens a new TCP connection (wrk reconnects after each answer).
 */
export async function runWrk(o: { url: string; threads: number; connections: number; seconds: number; closeEach?: boolean }): Promise<WrkResult> {
  const args = ['-t', String(o.threads), '-c', String(o.connections), '-d', `${o.seconds}s`, '-s', REPORT_SCRIPT];
  if (o.closeEach === true) args.push('-H', 'Connection: close');
  args.push(o.url);
  const what = `wrk -t${o.threads} -c${o.connections}${o.closeEach === true ? ' (Connection: close)' : ''} ${o.url}`;
  const r = await runTool('wrk', args, { timeoutMs: (o.seconds + 30) * 1000 });
  const line = r.stdout.split('\n').find((l) => l.startsWith('WRK_JSON '));
  if (r.code !== 0 || line === undefined) {
    const why = r.timedOut ? `no result within ${o.seconds + 30} s` : (r.stderr.trim() || r.stdout.trim() || `exit code ${r.code}`);
    throw new Error(`${what}: ${why.slice(0, 300)}`);
  }
  const json = JSON.parse(line.slice('WRK_JSON '.length)) as WrkJson;
  const e = json.errors;
  const errors = e.connect + e.read + e.write + e.status + e.timeout;
  if (json.requests === 0 || errors > errorAllowance(json.requests)) {
    throw new Error(
      `${what}: ${json.requests} requests with ${errors} errors ` +
        `(connect ${e.connect}, read ${e.read}, write ${e.write}, timeout ${e.timeout}, non-2xx ${e.status})`,
    );
  }
  const seconds = json.duration_us / 1e6;
  return {
    requests: json.requests,
    seconds,
    requestsPerSecond: json.requests / seconds,
    p50Micros: json.latency_us.p50,
    p99Micros: json.latency_us.p99,
    errors,
  };
}

/** wrk's version line, for the report (`wrk -v` prints it and exits 1). */
export async function wrkVersion(): Promise<string> {
  const r = await runTool('wrk', ['-v'], { timeoutMs: 5_000 });
  return (r.stdout + r.stderr).split('\n')[0]?.replace(/ Copyright.*$/, '').trim() || 'wrk (version unknown)';
}
