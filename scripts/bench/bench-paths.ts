import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { enrollAgent, startNodeProcess, startRelayProcess } from '../lib/local-processes.js';

// The Node target (sink and echo listeners, target-server.ts) and a plain Wicket portal to it, for
// `npm run bench:latency-reference`; `npm run bench` uses the echo for its idle streams, and the
// gateway section the peak-memory reader.

/**
 * Round trips every path gets before it is measured. Wicket's processes run JIT-compiled code that
 * takes a few thousand messages to settle: from fresh processes, each agent's CPU per round trip
 * fell from about 550 µs over the first 1,000 round trips to about 130 µs after 4,000.
 */
export const WARMUP_ROUND_TRIPS = 5_000;

export interface Target {
  child: ChildProcess;
  sink: number;
  echo: number;
}

export async function startTarget(): Promise<Target> {
  const child = spawn(process.execPath, ['--import', 'tsx', new URL('./target-server.ts', import.meta.url).pathname], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`target server exited with ${code}`)));
  });
  const ports = JSON.parse(line) as { sink: number; echo: number };
  return { child, ...ports };
}

export function peakMemoryMiB(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1]);
    return kb / 1024;
  } catch {
    return NaN;
  }
}

/** Relay + outlet + inlet serving the target's sink and echo; the inlet's local ports. */
export async function startWicketPortal(sinkPort: number, echoPort: number) {
  const relay = await startRelayProcess();
  const outletHome = await enrollAgent(relay, { attributes: ['bench-outlet'], relayNames: ['bench-sink', 'bench-echo'] });
  const inletHome = await enrollAgent(relay, { attributes: ['bench-inlet'] });
  const outlet = await startNodeProcess(outletHome, {
    outlets: [
      { name: 'sink', to: `127.0.0.1:${sinkPort}`, relay: 'bench-sink', allow: 'bench-inlet' },
      { name: 'echo', to: `127.0.0.1:${echoPort}`, relay: 'bench-echo', allow: 'bench-inlet' },
    ],
  });
  const inlet = await startNodeProcess(inletHome, {
    inlets: [
      { name: 'sink', from: '127.0.0.1:0', via: 'bench-sink', allow: 'bench-outlet' },
      { name: 'echo', from: '127.0.0.1:0', via: 'bench-echo', allow: 'bench-outlet' },
    ],
  });
  const port = (address: string | undefined) => Number(address?.split(':').pop());
  return {
    sink: port(inlet.inlets.sink),
    echo: port(inlet.inlets.echo),
    memory: () => ({
      inlet: peakMemoryMiB(inlet.proc.child.pid),
      relay: peakMemoryMiB(relay.proc.child.pid),
      outlet: peakMemoryMiB(outlet.proc.child.pid),
    }),
  };
}
