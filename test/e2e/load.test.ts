import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEchoServer, type EchoServer } from '../helpers/echo-server.js';
import { seededBytes } from '../helpers/seeded.js';
import { stopAll } from '../../scripts/lib/local-processes.js';
import { startPortal, type Portal } from './portal-fixture.js';

// 200 concurrent connections each echo 1 MiB of seeded random bytes through the portal, checked
// by SHA-256, while one deliberately slow reader holds its stream's window full. Proves: every
// byte arrives intact, the slow stream stalls only itself, and no process's memory runs away.

const CONNECTIONS = 200;
const BYTES_EACH = 1024 * 1024;
const SLOW_BYTES = 8 * 1024 * 1024;
/** Generous ceiling for one process's resident memory; unbounded buffering would blow past it. */
const RSS_CEILING_MIB = 512;

let echo: EchoServer;
let portal: Portal;

beforeAll(async () => {
  echo = await startEchoServer();
  portal = await startPortal({ target: echo.address, relayName: 'load' });
});

afterAll(async () => {
  await stopAll();
  await echo?.close();
});

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function rssMiB(pid: number): number {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024;
  } catch {
    return 0;
  }
}

function open(address: string): Promise<Socket> {
  const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Sends `payload`, half-closes, and resolves with everything echoed back until the clean end. */
function echoRoundTrip(socket: Socket, payload: Buffer, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`echo of ${payload.length} bytes did not finish within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.once('end', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.end(payload);
  });
}

describe('load: 200 concurrent echo connections and one slow reader', () => {
  it('delivers every byte of every connection intact while a slow reader stalls only itself, with bounded memory', async () => {
    const pids = { relay: portal.relay.proc.pid, inlet: portal.inlet.proc.pid, outlet: portal.outlet.proc.pid };
    const peak: Record<string, number> = { relay: 0, inlet: 0, outlet: 0 };
    const sampler = setInterval(() => {
      for (const [role, pid] of Object.entries(pids)) peak[role] = Math.max(peak[role]!, rssMiB(pid));
    }, 100);

    // The slow reader: sends 8 MiB to the echo service but reads nothing back for now.
    const slow = await open(portal.inletAddress);
    slow.pause();
    const slowPayload = seededBytes(9_999, SLOW_BYTES);
    slow.write(slowPayload);

    try {
      const started = Date.now();
      const results = await Promise.all(
        Array.from({ length: CONNECTIONS }, async (_, i) => {
          const payload = seededBytes(i + 1, BYTES_EACH);
          const echoed = await echoRoundTrip(await open(portal.inletAddress), payload, 90_000);
          return { i, ok: echoed.length === payload.length && sha256(echoed) === sha256(payload), length: echoed.length };
        }),
      );
      const failed = results.filter((r) => !r.ok);
      expect(failed, `connections with wrong bytes: ${failed.map((f) => `#${f.i} (${f.length} bytes)`).join(', ')}`).toEqual([]);
      console.log(`${CONNECTIONS} x 1 MiB echoed intact in ${Date.now() - started} ms while the slow reader held its window`);

      // The slow reader still has not been served in full (its window is full), and it is intact
      // once it finally reads.
      expect(slow.readableLength).toBeLessThan(SLOW_BYTES);
      const slowEchoed = await new Promise<Buffer>((resolve, reject) => {
        const chunks: Buffer[] = [];
        let got = 0;
        slow.on('data', (c: Buffer) => {
          chunks.push(c);
          got += c.length;
          if (got >= SLOW_BYTES) resolve(Buffer.concat(chunks));
        });
        slow.once('error', reject);
        const timer = setTimeout(() => reject(new Error(`slow reader got ${got} of ${SLOW_BYTES} bytes`)), 60_000);
        timer.unref();
        slow.resume();
      });
      expect(sha256(slowEchoed.subarray(0, SLOW_BYTES))).toBe(sha256(slowPayload));
    } finally {
      clearInterval(sampler);
      slow.destroy();
    }
    console.log(`peak RSS MiB: relay ${peak.relay!.toFixed(0)}, inlet ${peak.inlet!.toFixed(0)}, outlet ${peak.outlet!.toFixed(0)}`);
    for (const [role, mib] of Object.entries(peak)) {
      expect(mib, `${role} resident memory`).toBeLessThan(RSS_CEILING_MIB);
    }
  }, 180_000);
});
