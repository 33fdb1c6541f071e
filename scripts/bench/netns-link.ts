import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { assertNotLeaving, onCleanup, runTool } from './cleanup.js';
import { median } from './stats.js';

// A 40 ms round-trip link between two network namespaces this bench creates and removes:
//
//   app ns  10.213.0.1/30  ---- 20 ms each way, 1 Gbit/s ----  10.213.0.2/30  svc ns
//
// Preferred: a veth pair with `tc netem delay 20ms rate 1gbit` on both ends. Where the kernel has
// no netem (CONFIG_NET_SCH_NETEM unset, as on this project's CI VMs), delay-link.py does the same
// in user space over two TUN devices (MTU 65000, so it forwards few packets). The rate cap is
// there so the line measures filling a bandwidth-delay product (5 MB at 1 Gbit/s and 40 ms), not
// the CPU ceiling of a 2-core machine; in practice the kernel's TCP send buffer (tcp_wmem) binds
// first, for the direct path and for the inlet's connection to the relay alike.
// Addresses exist only inside the two namespaces; nothing touches the host's own network.

export const ONE_WAY_DELAY_MS = 20;
const RATE_BYTES_PER_SECOND = 125_000_000; // 1 Gbit/s
const DELAY_LINK = fileURLToPath(new URL('./delay-link.py', import.meta.url));

export interface DelayLink {
  appAddress: string;
  svcAddress: string;
  /** Command prefixes that run a program inside each namespace. */
  inApp: string[];
  inSvc: string[];
  /** How the delay is made, for the report. */
  kind: string;
  /** Measured: the median time for a TCP SYN to be answered by a RST from the far namespace. */
  rttMs: number;
  destroy(): Promise<void>;
}

function sh(args: string[]): { ok: boolean; output: string } {
  const r = spawnSync(args[0]!, args.slice(1), { encoding: 'utf8', timeout: 10_000 });
  return { ok: r.status === 0, output: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}`.trim() };
}

function must(args: string[]): void {
  const r = sh(args);
  if (!r.ok) throw new Error(`${args.join(' ')}: ${r.output}`);
}

/** Why namespaces cannot be made here, or undefined when they can. */
export function netnsUnavailableReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root: network namespaces need CAP_SYS_ADMIN';
  if (!sh(['ip', '-V']).ok) return 'iproute2 (ip) is not installed';
  const probe = `wkb-probe-${process.pid}`;
  const made = sh(['ip', 'netns', 'add', probe]);
  sh(['ip', 'netns', 'del', probe]);
  return made.ok ? undefined : `ip netns add is not permitted here: ${made.output}`;
}

/**
 * Namespaces an earlier bench left behind when it was killed outright (SIGKILL skips every
 * cleanup): ours by name (wkb-app-PID, wkb-svc-PID), and their PID no longer runs.
 */
function removeStaleNamespaces(): void {
  for (const line of sh(['ip', 'netns', 'list']).output.split('\n')) {
    const match = /^(wkb-(?:app|svc)-(\d+))\b/.exec(line.trim());
    if (match === null || Number(match[2]) === process.pid) continue;
    let alive = true;
    try {
      process.kill(Number(match[2]), 0);
    } catch {
      alive = false;
    }
    if (!alive) {
      console.error(`bench: removing network namespace ${match[1]} left by an earlier run`);
      sh(['ip', 'netns', 'del', match[1]!]);
    }
  }
}

/** Median RTT: connects to a closed port on the far side (SYN out, RST back) from inside `app`. */
async function probeRtt(inApp: string[], host: string): Promise<number> {
  const script = `const net=require('net');const r=[];const go=()=>{const t=process.hrtime.bigint();const s=net.connect(9,'${host}');s.setTimeout(3000,()=>s.destroy(new Error('timeout')));s.on('error',(e)=>{r.push(e.message==='timeout'?NaN:Number(process.hrtime.bigint()-t)/1e6);if(r.length<7)go();else console.log(JSON.stringify(r))});};go();`;
  const r = await runTool(process.execPath, ['-e', script], { timeoutMs: 30_000, wrap: inApp });
  const samples = (JSON.parse(r.stdout.trim() || '[]') as number[]).slice(1); // the first may wait for ARP
  if (samples.length === 0 || samples.some(Number.isNaN)) throw new Error(`RTT probe to ${host} failed: ${r.stdout}${r.stderr}`);
  return median(samples);
}

export async function createDelayLink(): Promise<DelayLink> {
  assertNotLeaving('network namespaces');
  removeStaleNamespaces();
  const id = process.pid;
  const app = `wkb-app-${id}`;
  const svc = `wkb-svc-${id}`;
  const appAddress = '10.213.0.1';
  const svcAddress = '10.213.0.2';
  const inApp = ['ip', 'netns', 'exec', app];
  const inSvc = ['ip', 'netns', 'exec', svc];
  let stopForwarder: (() => void) | undefined;
  const destroy = onCleanup('network namespaces', () => {
    // Whatever still runs inside goes first (the bench's own processes are stopped before this).
    for (const ns of [app, svc]) {
      for (const pid of sh(['ip', 'netns', 'pids', ns]).output.split(/\s+/).filter(Boolean)) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    stopForwarder?.();
    for (const ns of [app, svc]) sh(['ip', 'netns', 'del', ns]);
  });
  try {
    for (const ns of [app, svc]) {
      must(['ip', 'netns', 'add', ns]);
      must(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    }
    let kind: string;
    const [appDev, svcDev] = [`wkba${id}`, `wkbs${id}`];
    must(['ip', 'link', 'add', appDev, 'netns', app, 'type', 'veth', 'peer', 'name', svcDev, 'netns', svc]);
    const netem = ['netem', 'delay', `${ONE_WAY_DELAY_MS}ms`, 'rate', '1gbit', 'limit', '100000'];
    const tc = sh([...inApp, 'tc', 'qdisc', 'add', 'dev', appDev, 'root', ...netem]);
    if (tc.ok) {
      must([...inSvc, 'tc', 'qdisc', 'add', 'dev', svcDev, 'root', ...netem]);
      for (const [ns, dev, address] of [[app, appDev, appAddress], [svc, svcDev, svcAddress]] as const) {
        must(['ip', '-n', ns, 'addr', 'add', `${address}/30`, 'dev', dev]);
        must(['ip', '-n', ns, 'link', 'set', dev, 'up']);
      }
      kind = `veth pair, tc netem delay ${ONE_WAY_DELAY_MS}ms rate 1gbit on both ends`;
    } else {
      must(['ip', '-n', app, 'link', 'del', appDev]);
      // No netem qdisc in this kernel ("Specified qdisc kind is unknown"), or no tc at all.
      if (!/unknown|ENOENT/i.test(tc.output)) throw new Error(`tc netem: ${tc.output}`);
      if (!existsSync('/dev/net/tun') || !sh(['python3', '--version']).ok) {
        throw new Error('this kernel has no tc netem, and the user-space fallback needs python3 and /dev/net/tun');
      }
      stopForwarder = await startForwarder(`wkbta${id}`, `wkbts${id}`);
      for (const [ns, dev, address] of [[app, `wkbta${id}`, appAddress], [svc, `wkbts${id}`, svcAddress]] as const) {
        must(['ip', 'link', 'set', dev, 'netns', ns]);
        must(['ip', '-n', ns, 'addr', 'add', `${address}/30`, 'dev', dev]);
        must(['ip', '-n', ns, 'link', 'set', dev, 'mtu', '65000', 'up']);
      }
      kind = `no tc netem here: delay-link.py, ${ONE_WAY_DELAY_MS} ms each way, 1 Gbit/s, over two TUN devices (MTU 65000)`;
    }
    const rttMs = await probeRtt(inApp, svcAddress);
    if (rttMs < 2 * ONE_WAY_DELAY_MS * 0.8 || rttMs > 2 * ONE_WAY_DELAY_MS * 2) {
      throw new Error(`the link's measured RTT is ${rttMs.toFixed(1)} ms, not about ${2 * ONE_WAY_DELAY_MS} ms`);
    }
    return { appAddress, svcAddress, inApp, inSvc, kind, rttMs, destroy };
  } catch (err) {
    await destroy();
    throw err;
  }
}

/** Starts delay-link.py (in the host namespace: it creates the TUN devices there, to be moved). */
async function startForwarder(devA: string, devB: string): Promise<() => void> {
  const child = spawn('python3', [DELAY_LINK, devA, devB, String(ONE_WAY_DELAY_MS), String(RATE_BYTES_PER_SECOND), String(16 * 1024 * 1024)], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const stop = () => {
    child.stdin?.end();
    child.kill('SIGTERM');
  };
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (t: string) => {
    stderr += t;
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('delay-link.py did not start within 10 s')), 10_000);
    child.stdout?.setEncoding('utf8').once('data', (t: string) => {
      clearTimeout(timer);
      if (t.startsWith('ready')) resolve();
      else reject(new Error(`delay-link.py: ${t}`));
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`delay-link.py exited with ${code}: ${stderr.trim()}`));
    });
  }).catch((err: unknown) => {
    stop();
    throw err;
  });
  return stop;
}
