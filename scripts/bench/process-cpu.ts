import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { median } from './stats.js';

// What a tunnel costs the machine, read from /proc: CPU time of a process tree (a tunnel is
// several processes: sshd forks a child per connection; Wicket is relay, inlet and outlet) and
// resident memory. Linux only, like the rest of the bench.

/** Clock ticks per second of /proc/PID/stat's times (`getconf CLK_TCK`; 100 on every Linux we know). */
export const CLK_TCK = ((): number => {
  const n = Number(String(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout ?? '').trim());
  return Number.isFinite(n) && n > 0 ? n : 100;
})();

interface Stat {
  ppid: number;
  /** utime + stime + cutime + cstime, in ticks. */
  ticks: number;
}

function readStat(pid: number): Stat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined; // exited between the listing and the read
  }
  // The command name (field 2) is in parentheses and may itself hold spaces or parentheses.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // After the name: state(3) ppid(4) … utime(14) stime(15) cutime(16) cstime(17).
  const at = (field: number) => Number(fields[field - 3]);
  return { ppid: at(4), ticks: at(14) + at(15) + at(16) + at(17) };
}

/** `roots` and every live descendant of theirs (walks /proc for parent ids). */
export function processTree(roots: readonly number[]): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (stat === undefined) continue;
    const list = children.get(stat.ppid) ?? [];
    list.push(Number(entry));
    children.set(stat.ppid, list);
  }
  const seen = new Set<number>();
  const queue = [...roots];
  while (queue.length > 0) {
    const pid = queue.shift()!;
    if (seen.has(pid)) continue;
    seen.add(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return [...seen];
}

/**
 * CPU seconds used so far by `roots` and their descendants. Children that exited and were reaped
 * count in their parent's cutime/cstime, live ones in their own utime/stime, so a child that ends
 * between two readings moves from one to the other and is counted once.
 */
export function treeCpuSeconds(roots: readonly number[]): number {
  let ticks = 0;
  for (const pid of processTree(roots)) ticks += readStat(pid)?.ticks ?? 0;
  return ticks / CLK_TCK;
}

/** A memory figure of /proc/PID/status in bytes (VmHWM = peak resident, VmRSS = resident now); NaN when gone. */
export function memoryBytes(pid: number | undefined, field: 'VmHWM' | 'VmRSS'): number {
  if (pid === undefined) return NaN;
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1]) * 1024;
  } catch {
    return NaN;
  }
}

/**
 * Each process's resident memory (VmRSS) in bytes: the median of `samples` readings taken
 * together, `gapMs` apart, since one reading can catch a garbage collection mid-way.
 */
export async function medianRssEach(pids: readonly number[], samples = 5, gapMs = 1_000): Promise<number[]> {
  const readings: number[][] = pids.map(() => []);
  for (let i = 0; i < samples; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, gapMs));
    pids.forEach((pid, p) => readings[p]!.push(memoryBytes(pid, 'VmRSS')));
  }
  return readings.map(median);
}
