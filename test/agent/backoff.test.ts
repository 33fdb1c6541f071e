import { describe, expect, it } from 'vitest';
import { Backoff } from '../../agent/backoff.js';
import { seededRandom } from '../helpers/seeded.js';
import { RECONNECT_MAX_DELAY_MS, RECONNECT_MIN_DELAY_MS } from '../../protocol/limits.js';

describe('Backoff', () => {
  it('the same seed gives the same delays (failures reproduce)', () => {
    const a = new Backoff({ random: seededRandom(42) });
    const b = new Backoff({ random: seededRandom(42) });
    const c = new Backoff({ random: seededRandom(43) });
    const da = Array.from({ length: 20 }, () => a.next());
    const db = Array.from({ length: 20 }, () => b.next());
    const dc = Array.from({ length: 20 }, () => c.next());
    expect(da).toEqual(db);
    expect(dc).not.toEqual(da);
  });

  it('every delay stays within [RECONNECT_MIN_DELAY_MS, RECONNECT_MAX_DELAY_MS], whatever the random source says', () => {
    for (const random of [seededRandom(1), () => 0, () => 0.999999, () => 1, () => -5, () => 7]) {
      const b = new Backoff({ random });
      for (let i = 0; i < 100; i++) {
        const d = b.next();
        expect(d).toBeGreaterThanOrEqual(RECONNECT_MIN_DELAY_MS);
        expect(d).toBeLessThanOrEqual(RECONNECT_MAX_DELAY_MS);
      }
    }
  });

  it('grows exponentially: each delay is at least half its ceiling, and the ceiling doubles up to the cap', () => {
    const b = new Backoff({ random: seededRandom(7) });
    const ceilings: number[] = [];
    for (let i = 0; i < 12; i++) {
      const ceiling = b.ceiling();
      ceilings.push(ceiling);
      const d = b.next();
      expect(d).toBeGreaterThanOrEqual(Math.max(RECONNECT_MIN_DELAY_MS, Math.floor(ceiling / 2)));
      expect(d).toBeLessThanOrEqual(ceiling);
    }
    expect(ceilings.slice(0, 4)).toEqual([1, 2, 4, 8].map((x) => Math.min(RECONNECT_MAX_DELAY_MS, x * RECONNECT_MIN_DELAY_MS)));
    expect(ceilings.at(-1)).toBe(RECONNECT_MAX_DELAY_MS);
    // Even the smallest draw (random = 0) grows: no retry storm after the first few attempts.
    const floor = new Backoff({ random: () => 0 });
    const lows = Array.from({ length: 8 }, () => floor.next());
    expect(lows).toEqual([...lows].sort((x, y) => x - y));
    expect(lows[0]).toBe(RECONNECT_MIN_DELAY_MS);
    expect(lows.at(-1)).toBe(RECONNECT_MAX_DELAY_MS / 2);
  });

  it('jitter spreads a fleet: 100 clients seeded differently do not retry in lockstep', () => {
    const thirdDelays = new Set<number>();
    for (let seed = 0; seed < 100; seed++) {
      const b = new Backoff({ random: seededRandom(seed) });
      b.next();
      b.next();
      thirdDelays.add(b.next());
    }
    expect(thirdDelays.size).toBeGreaterThan(50);
  });

  it('reset() starts again from the minimum after a successful connection', () => {
    const b = new Backoff({ random: () => 0.5 });
    for (let i = 0; i < 10; i++) b.next();
    expect(b.ceiling()).toBe(RECONNECT_MAX_DELAY_MS);
    b.reset();
    expect(b.attempt).toBe(0);
    expect(b.ceiling()).toBe(RECONNECT_MIN_DELAY_MS);
    expect(b.next()).toBe(RECONNECT_MIN_DELAY_MS);
  });

  it('refuses nonsensical bounds', () => {
    expect(() => new Backoff({ minDelayMs: 0 })).toThrow(/WICKET_ERR_ARGUMENT/);
    expect(() => new Backoff({ minDelayMs: 10, maxDelayMs: 5 })).toThrow(/WICKET_ERR_ARGUMENT/);
  });
});
