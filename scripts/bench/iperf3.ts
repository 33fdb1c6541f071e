import { ManagedProcess, type CommandWrap } from '../lib/local-processes.js';
import { assertNotLeaving, runTool } from './cleanup.js';

// iperf3, the bulk-transfer client and server every path is measured with. One server serves
// one test at a time, which suits the bench: its runs are strictly sequential.

export interface IperfServer {
  proc: ManagedProcess;
  port: number;
}

/** `iperf3 -s` on host:port (through `wrap`, e.g. inside a namespace); resolves once it listens. */
export async function startIperfServer(o: { port: number; bind?: string; wrap?: CommandWrap }): Promise<IperfServer> {
  assertNotLeaving('iperf3 -s');
  // --rcv-timeout: a test whose client vanished (a broken tunnel) frees the server in 10 s
  // instead of the default 120 s.
  // --forceflush: its stdout is a pipe, and the banner must not sit in a buffer.
  const args = ['-s', '-p', String(o.port), '--rcv-timeout', '10000', '--forceflush', ...(o.bind === undefined ? [] : ['-B', o.bind])];
  const [cmd, argv] = o.wrap && o.wrap.length > 0 ? [o.wrap[0]!, [...o.wrap.slice(1), 'iperf3', ...args]] : ['iperf3', args];
  const proc = new ManagedProcess('iperf3 -s', cmd, argv, process.env);
  // Waiting for its banner, not probing the port: a probe would look like a client to iperf3.
  await proc.waitForLine((line) => line.includes('Server listening on'), { timeoutMs: 10_000 });
  return { proc, port: o.port };
}

export interface IperfResult {
  /** Bytes the server received. */
  bytes: number;
  /** The receiver's measured seconds. */
  seconds: number;
  megabytesPerSecond: number;
  /** The sender's smallest TCP round trip (kernel TCP_INFO), in ms, of the first stream. */
  minRttMs: number;
}

interface IperfJson {
  error?: string;
  end?: {
    sum_received?: { bytes: number; seconds: number };
    streams?: { sender?: { min_rtt?: number } }[];
  };
}

/** Upload (client → server) with `streams` parallel streams for `seconds`; JSON output parsed. */
export async function runIperf(o: { host: string; port: number; seconds: number; streams: number; wrap?: CommandWrap }): Promise<IperfResult> {
  const args = ['-c', o.host, '-p', String(o.port), '-t', String(o.seconds), '-J', '--connect-timeout', '5000'];
  if (o.streams > 1) args.push('-P', String(o.streams));
  let lastError = '';
  // The server takes a moment to be ready for the next test after one ends; a "busy" answer
  // is retried, anything else is a failed measurement.
  for (let attempt = 1; attempt <= 3; attempt++) {
    const r = await runTool('iperf3', args, { timeoutMs: (o.seconds + 30) * 1000, ...(o.wrap ? { wrap: o.wrap } : {}) });
    let json: IperfJson | undefined;
    try {
      json = JSON.parse(r.stdout) as IperfJson;
    } catch {
      json = undefined;
    }
    const received = json?.end?.sum_received;
    if (r.code === 0 && json?.error === undefined && received !== undefined && received.seconds > 0) {
      return {
        bytes: received.bytes,
        seconds: received.seconds,
        megabytesPerSecond: received.bytes / 1e6 / received.seconds,
        minRttMs: (json?.end?.streams?.[0]?.sender?.min_rtt ?? NaN) / 1000,
      };
    }
    lastError = r.timedOut ? `no result within ${o.seconds + 30} s` : (json?.error ?? (r.stderr.trim() || `exit code ${r.code}`));
    if (!/busy/i.test(lastError)) break;
    await new Promise((resolve) => setTimeout(resolve, 1_000));
  }
  throw new Error(`iperf3 ${o.streams > 1 ? `-P ${o.streams} ` : ''}to ${o.host}:${o.port}: ${lastError.slice(0, 300)}`);
}

/** iperf3's version line, for the report. */
export async function iperfVersion(): Promise<string> {
  const r = await runTool('iperf3', ['--version'], { timeoutMs: 5_000 });
  return r.stdout.split('\n')[0]?.trim() ?? 'iperf3 (version unknown)';
}
