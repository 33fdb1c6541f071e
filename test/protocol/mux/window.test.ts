// Receive-window accounting and auto-tuning in isolation, and the held-data buffer's bounds.

import { describe, expect, it } from 'vitest';
import { ReceiveBuffer } from '../../../protocol/mux/receive-buffer.js';
import { ReceiveWindow, WindowBudget } from '../../../protocol/mux/window.js';
import { seededRandom } from './sim.js';

const KiB = 1024;

describe('ReceiveWindow', () => {
  it('keeps allowance + held + unannounced = window through any seeded sequence', () => {
    const rng = seededRandom(42);
    const w = new ReceiveWindow(64 * KiB, 1024 * KiB, new WindowBudget(Infinity), 0);
    let held = 0;
    let now = 0;
    for (let i = 0; i < 5_000; i++) {
      now += rng.int(0, 3);
      const action = rng.int(0, 2);
      if (action === 0) {
        const n = rng.int(1, 20 * KiB);
        const allowance = w.allowance;
        const ok = w.receive(n);
        expect(ok).toBe(n <= allowance);
        if (ok) held += n;
      } else if (action === 1 && held > 0) {
        const n = rng.int(1, held);
        w.consume(n);
        held -= n;
      } else {
        w.takeUpdate(now, rng.chance(0.5) ? 10 : undefined);
      }
      expect(w.allowance + held + w.unannounced).toBe(w.size);
      expect(w.size).toBeLessThanOrEqual(1024 * KiB);
    }
  });

  it('announces credit only once half the window is consumed', () => {
    const w = new ReceiveWindow(100, 1000, new WindowBudget(Infinity), 0);
    expect(w.receive(49)).toBe(true);
    w.consume(49);
    expect(w.takeUpdate(1000, undefined)).toBe(0);
    expect(w.receive(1)).toBe(true);
    w.consume(1);
    expect(w.takeUpdate(1000, undefined)).toBe(50);
    expect(w.allowance).toBe(100);
  });

  it('refuses a receive beyond the allowance and changes nothing', () => {
    const w = new ReceiveWindow(100, 1000, new WindowBudget(Infinity), 0);
    expect(w.receive(101)).toBe(false);
    expect(w.allowance).toBe(100);
  });

  it('doubles when half a window drains within one RTT, not when slower, not without an RTT', () => {
    const fast = new ReceiveWindow(100, 1000, new WindowBudget(Infinity), 0);
    fast.receive(50);
    fast.consume(50);
    expect(fast.takeUpdate(9, 10)).toBe(50 + 100); // 9 ms < 2 x 0.5 x 10 ms
    expect(fast.size).toBe(200);

    const slow = new ReceiveWindow(100, 1000, new WindowBudget(Infinity), 0);
    slow.receive(50);
    slow.consume(50);
    expect(slow.takeUpdate(11, 10)).toBe(50);
    expect(slow.size).toBe(100);

    const blind = new ReceiveWindow(100, 1000, new WindowBudget(Infinity), 0);
    blind.receive(50);
    blind.consume(50);
    expect(blind.takeUpdate(0, undefined)).toBe(50);
    expect(blind.size).toBe(100);
  });

  it('stops at the cap and within the shared budget, and gives growth back on release', () => {
    const budget = new WindowBudget(150);
    const grow = (w: ReceiveWindow) => {
      w.receive(w.size / 2);
      w.consume(w.size / 2);
      return w.takeUpdate(0, 10);
    };
    const a = new ReceiveWindow(100, 250, budget, 0);
    grow(a); // 100 -> 200 (budget 50 left)
    grow(a); // capped growth would be 50, fits: 250
    expect(a.size).toBe(250);
    grow(a);
    expect(a.size).toBe(250);
    const b = new ReceiveWindow(100, 1000, budget, 0);
    grow(b);
    expect(b.size).toBe(100); // budget exhausted
    a.release();
    expect(budget.left).toBe(150);
    grow(b);
    expect(b.size).toBe(200);
  });
});

describe('ReceiveWindow.tryOpen (a peer OPEN larger than our initial window)', () => {
  it('charges only the excess over our initial window, refuses what does not fit without taking anything, and release gives it all back', () => {
    const budget = new WindowBudget(1000);
    expect(ReceiveWindow.tryOpen(100, 100, 10_000, budget, 0)!.size).toBe(100); // at our window: free
    expect(ReceiveWindow.tryOpen(50, 100, 10_000, budget, 0)!.size).toBe(50); // below it: free
    expect(budget.left).toBe(1000);
    const big = ReceiveWindow.tryOpen(900, 100, 10_000, budget, 0)!;
    expect(big.size).toBe(900);
    expect(big.allowance).toBe(900);
    expect(budget.left).toBe(200);
    expect(ReceiveWindow.tryOpen(301, 100, 10_000, budget, 0)).toBeUndefined();
    expect(budget.left).toBe(200);
    const fits = ReceiveWindow.tryOpen(300, 100, 10_000, budget, 0)!;
    expect(budget.left).toBe(0);
    big.release();
    fits.release();
    expect(budget.left).toBe(1000);
  });

  it('growth after a charged open is charged too, and released with it', () => {
    const budget = new WindowBudget(1000);
    const w = ReceiveWindow.tryOpen(200, 100, 10_000, budget, 0)!; // 100 charged
    w.receive(100);
    w.consume(100);
    expect(w.takeUpdate(0, 10)).toBe(100 + 200); // doubles: 200 more charged
    expect(w.size).toBe(400);
    expect(budget.left).toBe(700);
    w.release();
    expect(budget.left).toBe(1000);
  });
});

describe('ReceiveBuffer', () => {
  it('returns held bytes in order, whatever mix of views and copies', () => {
    const rng = seededRandom(7);
    const buffer = new ReceiveBuffer();
    const written: Buffer[] = [];
    const read: Buffer[] = [];
    for (let i = 0; i < 5_000; i++) {
      if (rng.chance(0.6)) {
        const message = Buffer.alloc(rng.int(10, 65_000), i & 0xff); // each message its own byte
        message.writeUInt32BE(i, 0);
        const start = rng.int(0, message.length - 1);
        const chunk = message.subarray(start, rng.int(start + 1, message.length));
        written.push(Buffer.from(chunk));
        buffer.push(chunk, message.length);
      } else {
        const chunk = buffer.shift();
        if (chunk !== undefined) read.push(Buffer.from(chunk));
      }
    }
    for (let c = buffer.shift(); c !== undefined; c = buffer.shift()) read.push(c);
    expect(buffer.bytes).toBe(0);
    expect(Buffer.concat(read).equals(Buffer.concat(written))).toBe(true);
  });

  it('holds bulk chunks as views but copies small ones, so 1-byte frames cannot pin messages', () => {
    const buffer = new ReceiveBuffer();
    const message = Buffer.alloc(65_000);
    buffer.push(message.subarray(0, 60_000), message.length);
    expect(buffer.shift()!.buffer).toBe(message.buffer);
    for (let i = 0; i < 256 * KiB; i++) buffer.push(message.subarray(i % 1000, (i % 1000) + 1), message.length);
    expect(buffer.bytes).toBe(256 * KiB);
    expect(buffer.chunkCount).toBeLessThanOrEqual(256 / 16 + 1);
    const first = buffer.shift()!;
    expect(first.buffer).not.toBe(message.buffer);
  });
});
