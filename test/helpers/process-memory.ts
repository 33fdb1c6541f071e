import { closeSync, openSync, readFileSync, readSync } from 'node:fs';

// Searches a live process's memory for byte strings: every readable mapping in /proc/PID/maps,
// read through /proc/PID/mem (root, or the same user with ptrace allowed). For the proof that a
// forwarding relay holds no copy of the project's signing key; the same scan run on a signing
// relay must find it, or the scan proves nothing.

const CHUNK = 8 * 1024 * 1024;

export interface MemoryScan {
  /** Indexes into `needles` of those found. */
  readonly found: number[];
  readonly regionsRead: number;
  readonly bytesRead: number;
}

export function scanProcessMemory(pid: number, needles: readonly Buffer[]): MemoryScan {
  const maps = readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n').filter((line) => line.length > 0);
  const overlap = Math.max(...needles.map((n) => n.length)) - 1;
  const found = new Set<number>();
  const buffer = Buffer.allocUnsafe(CHUNK + overlap);
  let regionsRead = 0;
  let bytesRead = 0;
  const fd = openSync(`/proc/${pid}/mem`, 'r');
  try {
    for (const line of maps) {
      const [range, perms] = line.split(/\s+/, 2) as [string, string];
      if (!perms.startsWith('r')) continue;
      const [startHex, endHex] = range.split('-') as [string, string];
      const start = BigInt(`0x${startHex}`);
      const end = BigInt(`0x${endHex}`);
      let readAny = false;
      // Each chunk starts `overlap` bytes before the last one ended, so no needle straddles unseen.
      for (let at = start; at < end; at += BigInt(CHUNK)) {
        const from = at === start ? at : at - BigInt(overlap);
        const length = Number((end - from < BigInt(buffer.length) ? end - from : BigInt(buffer.length)));
        let n: number;
        try {
          n = readSync(fd, buffer, 0, length, from);
        } catch {
          break; // [vvar], guard pages and the like: unreadable even to root
        }
        if (n <= 0) break;
        readAny = true;
        bytesRead += n;
        const view = buffer.subarray(0, n);
        needles.forEach((needle, index) => {
          if (!found.has(index) && view.includes(needle)) found.add(index);
        });
      }
      if (readAny) regionsRead++;
    }
  } finally {
    closeSync(fd);
  }
  return { found: [...found].sort(), regionsRead, bytesRead };
}
