import { readFileSync } from 'node:fs';

// Open files for `npm run bench:scale`: a relay holding 10,000 agents needs a descriptor per
// connection, more than a common default soft limit of 1,024. Node raises its own soft limit to
// the hard one when it starts, so every relay and load generator the bench starts may use up to
// the hard limit whatever the soft one says: the hard limit is the only one that counts. Raising
// it takes root (`ulimit -Hn`, or LimitNOFILE in a systemd unit), so the bench checks it before
// starting anything and says so, rather than failing 9,000 agents in.

/** Descriptors a process needs besides its connections (libraries, logs, the store, pipes). */
const SPARE_DESCRIPTORS = 256;

/** The soft and hard RLIMIT_NOFILE of a process (children inherit this one's). */
export function openFileLimits(pid: number | 'self' = 'self'): { soft: number; hard: number } {
  const line = readFileSync(`/proc/${pid}/limits`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('Max open files'));
  const [soft, hard] = (line ?? '').trim().split(/\s+/).slice(3, 5).map((v) => (v === 'unlimited' ? Infinity : Number(v)));
  if (soft === undefined || hard === undefined || Number.isNaN(soft) || Number.isNaN(hard)) throw new Error(`cannot read "Max open files" from /proc/${pid}/limits`);
  return { soft, hard };
}

/** Throws, saying what to do, when a process of ours could not hold `connections` sockets. */
export function checkOpenFiles(connections: number, what: string): void {
  const need = connections + SPARE_DESCRIPTORS;
  const { hard } = openFileLimits();
  if (hard < need) {
    throw new Error(
      `${what} needs about ${need} open files but the hard limit is ${hard} (ulimit -Hn): raise it (as root: ulimit -Hn ${need}, or LimitNOFILE in a systemd unit) or use fewer agents (BENCH_SCALE_AGENTS)`,
    );
  }
}
