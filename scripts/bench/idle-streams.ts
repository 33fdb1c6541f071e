import { connect, type Socket } from 'node:net';
import { startTarget } from './bench-paths.js';
import { assertNotLeaving, onCleanup } from './cleanup.js';
import { memoryBytes } from './process-cpu.js';
import { median } from './stats.js';
import { startWicketTunnel } from './wicket-tunnel.js';

// Memory per idle stream: N TCP connections held open at once through one inlet (TLS relay), each
// proven served by one small write echoed back, and the resident memory (VmRSS) of inlet + relay +
// outlet with all of them open minus the same just before they were opened. A dedicated tunnel
// (its own relay too), so nothing else the bench did sits in these processes' heaps; the echo
// target is the bench's own target-server.ts, a separate process whose memory does not count.

const BATCH = 500;
/** How long a batch's connections get to be echoed before the unanswered ones count as not served. */
const BATCH_DEADLINE_MS = 15_000;
const PROBE = Buffer.from('wicket-idle-probe');

export interface IdleStreamsResult {
  wanted: number;
  attempted: number;
  served: number;
  /** Served connections still open when the memory was read. */
  openAtMeasurement: number;
  baselineBytes: number;
  loadedBytes: number;
  bytesPerStream: number;
  /** Why connections were not served, with counts. */
  failures: Record<string, number>;
  note: string;
}

/** Opens one connection and waits for the probe's echo; resolves the socket or why not. */
function openServed(port: number, deadline: number): Promise<{ socket: Socket } | { failure: string }> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let got = 0;
    let settled = false;
    const done = (value: { socket: Socket } | { failure: string }) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.removeAllListeners('data');
      if ('failure' in value) socket.destroy();
      resolve(value);
    };
    const timer = setTimeout(() => done({ failure: `no echo within ${BATCH_DEADLINE_MS / 1000} s` }), Math.max(0, deadline - Date.now()));
    socket.once('connect', () => socket.write(PROBE));
    socket.on('data', (chunk: Buffer) => {
      got += chunk.length;
      if (got >= PROBE.length) done({ socket });
    });
    socket.on('error', (err: NodeJS.ErrnoException) => done({ failure: err.code ?? err.message }));
    socket.once('close', () => done({ failure: 'closed before the echo' }));
  });
}

function rssOf(pids: number[]): number {
  return pids.reduce((sum, pid) => sum + memoryBytes(pid, 'VmRSS'), 0);
}

/** The median of a few readings, `gapMs` apart: one reading can catch a GC mid-way. */
async function sampledRss(pids: number[], samples = 5, gapMs = 300): Promise<number> {
  const values: number[] = [];
  for (let i = 0; i < samples; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, gapMs));
    values.push(rssOf(pids));
  }
  return median(values);
}

export async function measureIdleStreams(wanted: number): Promise<IdleStreamsResult> {
  const target = await startTarget();
  const stopTarget = onCleanup('idle-streams echo target', () => {
    target.child.kill('SIGTERM');
  });
  const tunnel = await startWicketTunnel({ tls: true, targets: { echo: `127.0.0.1:${target.echo}` }, maxConnections: 20_000 });
  const stopTunnel = onCleanup('idle-streams tunnel', () => tunnel.stop());
  const open: Socket[] = [];
  const closeAll = onCleanup('idle-streams connections', () => {
    for (const s of open) s.destroy();
  });
  try {
    const port = tunnel.ports.echo!;
    const pids = Object.values(tunnel.pids);
    // Warm-up: the first streams pay for code paths and buffers the steady state keeps anyway.
    const warm = await Promise.all(Array.from({ length: 50 }, () => openServed(port, Date.now() + BATCH_DEADLINE_MS)));
    for (const w of warm) if ('socket' in w) w.socket.destroy();
    await new Promise((r) => setTimeout(r, 2_000));
    const baselineBytes = await sampledRss(pids);

    const failures: Record<string, number> = {};
    let attempted = 0;
    let emptyBatches = 0;
    let note = '';
    while (attempted < wanted) {
      assertNotLeaving('more idle connections');
      const size = Math.min(BATCH, wanted - attempted);
      attempted += size;
      const deadline = Date.now() + BATCH_DEADLINE_MS;
      const batch = await Promise.all(Array.from({ length: size }, () => openServed(port, deadline)));
      let served = 0;
      for (const r of batch) {
        if ('socket' in r) {
          open.push(r.socket);
          served++;
        } else failures[r.failure] = (failures[r.failure] ?? 0) + 1;
      }
      process.stderr.write(`bench: idle streams: ${open.length} served of ${attempted} opened\n`);
      // Bounded: once two batches in a row get no echo at all, more of the same will not either.
      emptyBatches = served === 0 ? emptyBatches + 1 : 0;
      if (emptyBatches >= 2 && attempted < wanted) {
        note = `stopped opening after ${attempted.toLocaleString('en-US')}: two batches of ${BATCH} in a row got no echo`;
        break;
      }
    }
    await new Promise((r) => setTimeout(r, 2_000));
    const openAtMeasurement = open.filter((s) => !s.destroyed && s.readyState === 'open').length;
    const loadedBytes = await sampledRss(pids);
    const served = open.length;
    return {
      wanted,
      attempted,
      served,
      openAtMeasurement,
      baselineBytes,
      loadedBytes,
      bytesPerStream: served > 0 ? (loadedBytes - baselineBytes) / served : NaN,
      failures,
      note,
    };
  } finally {
    await closeAll();
    await stopTunnel();
    await stopTarget();
  }
}
