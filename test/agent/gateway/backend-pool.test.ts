import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createBackendCredential } from '../../../agent/gateway/backend-credential.js';
import { BackendPool } from '../../../agent/gateway/backend-pool.js';
import type { BackendSpec } from '../../../agent/gateway/gateway-spec.js';
import { GATEWAY_BREAKER_COOLDOWN_MS, GATEWAY_BREAKER_FAILURES } from '../../../protocol/limits.js';
import { seededRandom } from '../../helpers/seeded.js';

// The order a request tries the pool's backends in: lowest priority number first, a weighted
// random order within a priority, and none the breaker keeps out. Clock and random are injected;
// nothing is sent (the URLs are loopback ports nobody is asked to answer).

const logger = pino({ level: 'silent' });
const pools: BackendPool[] = [];

afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
});

function spec(name: string, priority: number, weight = 1): BackendSpec {
  return { name, url: `http://127.0.0.1:9/${name}`, priority, weight, auth: { kind: 'none' } };
}

function poolOf(specs: BackendSpec[], options: { random?: () => number } = {}): { pool: BackendPool; clock: { now: number } } {
  const clock = { now: 5_000_000 };
  const pool = new BackendPool(specs, () => createBackendCredential({ kind: 'none' }, { logger }), { now: () => clock.now, ...options });
  pools.push(pool);
  return { pool, clock };
}

const names = (pool: BackendPool): string[] => pool.plan().map((b) => b.spec.name);
const byName = (pool: BackendPool, name: string) => pool.backends.find((b) => b.spec.name === name)!;

describe('BackendPool.plan: the order to try backends in', () => {
  it('tries the lowest priority number first, every usable backend once', () => {
    const { pool } = poolOf([spec('c', 2), spec('a', 0), spec('b', 1), spec('d', 1)], { random: () => 0 });
    expect(names(pool)).toEqual(['a', 'b', 'd', 'c']);
    // random 0.99 reverses the order within priority 1, never across priorities.
    const { pool: other } = poolOf([spec('c', 2), spec('a', 0), spec('b', 1), spec('d', 1)], { random: () => 0.99 });
    expect(names(other)).toEqual(['a', 'd', 'b', 'c']);
  });

  it('within a priority, each draw picks in proportion to weight (exact with an even grid of randoms)', () => {
    // Weights 3 and 1: the first draw picks "heavy" for random < 0.75. Two draws per plan.
    const draws: number[] = [];
    for (let i = 0; i < 1_000; i++) draws.push((i + 0.5) / 1_000, 0.5);
    const { pool } = poolOf([spec('heavy', 0, 3), spec('light', 0, 1)], { random: () => draws.shift()! });
    const first: Record<string, number> = { heavy: 0, light: 0 };
    for (let i = 0; i < 1_000; i++) {
      const order = names(pool);
      expect([...order].sort()).toEqual(['heavy', 'light']);
      first[order[0]!]!++;
    }
    expect(draws).toHaveLength(0);
    expect(first).toEqual({ heavy: 750, light: 250 });
  });

  it('weights 1:2:3 take about 1/6, 2/6, 3/6 of first tries over many plans (seeded random)', () => {
    const { pool } = poolOf([spec('w1', 0, 1), spec('w2', 0, 2), spec('w3', 0, 3), spec('backup', 1, 100)], { random: seededRandom(42) });
    const first: Record<string, number> = { w1: 0, w2: 0, w3: 0, backup: 0 };
    const plans = 6_000;
    for (let i = 0; i < plans; i++) {
      const order = names(pool);
      expect(order).toHaveLength(4);
      expect(order[3]).toBe('backup'); // weight never lifts a backend over a lower priority number
      first[order[0]!]!++;
    }
    expect(first.backup).toBe(0);
    expect(first.w1! / plans).toBeCloseTo(1 / 6, 1);
    expect(first.w2! / plans).toBeCloseTo(2 / 6, 1);
    expect(first.w3! / plans).toBeCloseTo(3 / 6, 1);
    expect(first.w3).toBeGreaterThan(first.w2!);
    expect(first.w2).toBeGreaterThan(first.w1!);
  });
});

describe('BackendPool: backends the breaker keeps out', () => {
  it('leaves out a cooling backend until its retry-after has passed, and an open one until half-open', () => {
    const { pool, clock } = poolOf([spec('primary', 0), spec('secondary', 1), spec('tertiary', 2)], { random: () => 0 });
    byName(pool, 'primary').breaker.throttled(3_000);
    for (let i = 0; i < GATEWAY_BREAKER_FAILURES; i++) byName(pool, 'secondary').breaker.failure();
    expect(names(pool)).toEqual(['tertiary']);
    clock.now += 3_000;
    expect(names(pool)).toEqual(['primary', 'tertiary']);

    clock.now += GATEWAY_BREAKER_COOLDOWN_MS;
    // Half-open: offered to one request (the plan holds the trial slot) …
    const trial = pool.plan();
    expect(trial.map((b) => b.spec.name)).toEqual(['primary', 'secondary', 'tertiary']);
    // … and left out of the next while that trial is out.
    expect(names(pool)).toEqual(['primary', 'tertiary']);
    byName(pool, 'secondary').breaker.abandon();
    expect(names(pool)).toEqual(['primary', 'secondary', 'tertiary']);
    byName(pool, 'secondary').breaker.success();
    expect(names(pool)).toEqual(['primary', 'secondary', 'tertiary']);
    expect(names(pool)).toEqual(['primary', 'secondary', 'tertiary']);
  });

  it('plans nothing when every backend is out, and soonestAvailableAt says when the first is back', () => {
    const { pool, clock } = poolOf([spec('a', 0), spec('b', 0), spec('c', 1)]);
    expect(pool.soonestAvailableAt()).toBe(clock.now);
    byName(pool, 'a').breaker.throttled(7_000);
    byName(pool, 'b').breaker.throttled(4_000);
    expect(pool.soonestAvailableAt()).toBe(clock.now); // c is still usable
    for (let i = 0; i < GATEWAY_BREAKER_FAILURES; i++) byName(pool, 'c').breaker.failure();
    expect(pool.plan()).toEqual([]);
    expect(pool.soonestAvailableAt()).toBe(clock.now + 4_000);
    clock.now += 4_000;
    expect(pool.soonestAvailableAt()).toBe(clock.now);
    expect(names(pool)).toEqual(['b']);
  });

  it('reports each backend in status(), breaker included', () => {
    const { pool, clock } = poolOf([spec('a', 0, 2), spec('b', 1)]);
    byName(pool, 'b').breaker.throttled(1_500);
    byName(pool, 'b').noteFailure('429: cooling for 1500 ms', 'throttled');
    const [a, b] = pool.status();
    expect(a).toMatchObject({ name: 'a', priority: 0, weight: 2, breaker: { state: 'closed' }, credential: { kind: 'none' }, requests: 0, failures: 0, throttled: 0 });
    expect(a!.lastError).toBeUndefined();
    expect(b).toMatchObject({
      name: 'b', breaker: { state: 'cooling', until: new Date(clock.now + 1_500).toISOString() }, throttled: 1,
      lastError: { message: '429: cooling for 1500 ms' },
    });
  });
});
