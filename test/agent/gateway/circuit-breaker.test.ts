import { describe, expect, it } from 'vitest';
import { CircuitBreaker } from '../../../agent/gateway/circuit-breaker.js';
import { GATEWAY_BREAKER_COOLDOWN_MS, GATEWAY_BREAKER_FAILURES, GATEWAY_MAX_RETRY_AFTER_MS } from '../../../protocol/limits.js';

// One backend's breaker, driven by an injected clock: a 429 cools it for exactly its retry-after;
// GATEWAY_BREAKER_FAILURES failures in a row open it for a cooldown that doubles (to 16×) while
// each half-open trial fails; a success closes it and forgets the failures.

function breakerAt(start = 1_000_000): { breaker: CircuitBreaker; clock: { now: number } } {
  const clock = { now: start };
  return { breaker: new CircuitBreaker(() => clock.now), clock };
}

function fail(breaker: CircuitBreaker, times: number): void {
  for (let i = 0; i < times; i++) breaker.failure();
}

describe('CircuitBreaker: cooling after a 429', () => {
  it('goes closed → cooling on throttled(retryAfter) and straight back to closed when it has passed', () => {
    const { breaker, clock } = breakerAt();
    expect(breaker.state).toBe('closed');
    expect(breaker.tryAcquire()).toBe(true);
    breaker.throttled(3_000);
    expect(breaker.state).toBe('cooling');
    expect(breaker.tryAcquire()).toBe(false);
    expect(breaker.availableAt).toBe(clock.now + 3_000);
    expect(breaker.status()).toEqual({ state: 'cooling', until: new Date(clock.now + 3_000).toISOString(), consecutiveFailures: 0 });

    clock.now += 2_999;
    expect(breaker.tryAcquire()).toBe(false);
    clock.now += 1;
    // Azure's retry-after is exact: no half-open probe, every request may go again.
    expect(breaker.state).toBe('closed');
    expect(breaker.tryAcquire()).toBe(true);
    expect(breaker.tryAcquire()).toBe(true);
    expect(breaker.availableAt).toBe(clock.now);
    expect(breaker.status()).toEqual({ state: 'closed', consecutiveFailures: 0 });
  });

  it('caps a retry-after at GATEWAY_MAX_RETRY_AFTER_MS and treats a negative one as none', () => {
    const { breaker, clock } = breakerAt();
    breaker.throttled(24 * 3_600_000);
    expect(breaker.availableAt).toBe(clock.now + GATEWAY_MAX_RETRY_AFTER_MS);
    clock.now += GATEWAY_MAX_RETRY_AFTER_MS;
    expect(breaker.state).toBe('closed');

    breaker.throttled(-5_000);
    expect(breaker.state).toBe('closed');
    expect(breaker.tryAcquire()).toBe(true);
  });

  it('a 429 on an open breaker keeps it open at least as long as it was going to be', () => {
    const { breaker, clock } = breakerAt();
    fail(breaker, GATEWAY_BREAKER_FAILURES);
    const openUntil = clock.now + GATEWAY_BREAKER_COOLDOWN_MS;
    breaker.throttled(1_000);
    expect(breaker.state).toBe('open');
    expect(breaker.availableAt).toBe(openUntil);
    breaker.throttled(GATEWAY_BREAKER_COOLDOWN_MS * 3);
    expect(breaker.availableAt).toBe(clock.now + GATEWAY_BREAKER_COOLDOWN_MS * 3);
  });
});

describe('CircuitBreaker: open after failures, half-open trial', () => {
  it(`stays closed below ${GATEWAY_BREAKER_FAILURES} failures in a row, opens at ${GATEWAY_BREAKER_FAILURES}, and a success in between resets the count`, () => {
    const { breaker, clock } = breakerAt();
    fail(breaker, GATEWAY_BREAKER_FAILURES - 1);
    expect(breaker.state).toBe('closed');
    expect(breaker.status().consecutiveFailures).toBe(GATEWAY_BREAKER_FAILURES - 1);
    breaker.success();
    expect(breaker.status().consecutiveFailures).toBe(0);
    fail(breaker, GATEWAY_BREAKER_FAILURES - 1);
    expect(breaker.state).toBe('closed');
    breaker.failure();
    expect(breaker.state).toBe('open');
    expect(breaker.tryAcquire()).toBe(false);
    expect(breaker.availableAt).toBe(clock.now + GATEWAY_BREAKER_COOLDOWN_MS);
    expect(breaker.status()).toEqual({ state: 'open', until: new Date(clock.now + GATEWAY_BREAKER_COOLDOWN_MS).toISOString(), consecutiveFailures: GATEWAY_BREAKER_FAILURES });
  });

  it('admits ONE trial when half-open, and a successful trial closes it', () => {
    const { breaker, clock } = breakerAt();
    fail(breaker, GATEWAY_BREAKER_FAILURES);
    clock.now += GATEWAY_BREAKER_COOLDOWN_MS - 1;
    expect(breaker.tryAcquire()).toBe(false);
    clock.now += 1;
    expect(breaker.state).toBe('half-open');
    expect(breaker.availableAt).toBe(clock.now);
    expect(breaker.tryAcquire()).toBe(true);
    expect(breaker.tryAcquire()).toBe(false); // the trial is in flight: nobody else
    breaker.success();
    expect(breaker.state).toBe('closed');
    expect(breaker.status()).toEqual({ state: 'closed', consecutiveFailures: 0 });
    expect(breaker.tryAcquire()).toBe(true);
    expect(breaker.tryAcquire()).toBe(true);
    // Closed again: it takes GATEWAY_BREAKER_FAILURES new failures (not one) to open it, for the base cooldown.
    fail(breaker, GATEWAY_BREAKER_FAILURES - 1);
    expect(breaker.state).toBe('closed');
    breaker.failure();
    expect(breaker.availableAt).toBe(clock.now + GATEWAY_BREAKER_COOLDOWN_MS);
  });

  it('a failed trial opens it again with the cooldown doubled, up to 16×', () => {
    const { breaker, clock } = breakerAt();
    fail(breaker, GATEWAY_BREAKER_FAILURES);
    const cooldowns: number[] = [GATEWAY_BREAKER_COOLDOWN_MS];
    for (let i = 0; i < 6; i++) {
      clock.now = breaker.availableAt;
      expect(breaker.state).toBe('half-open');
      expect(breaker.tryAcquire()).toBe(true);
      breaker.failure(); // one failed trial is enough: no GATEWAY_BREAKER_FAILURES needed
      expect(breaker.state).toBe('open');
      cooldowns.push(breaker.availableAt - clock.now);
    }
    const base = GATEWAY_BREAKER_COOLDOWN_MS;
    expect(cooldowns).toEqual([base, 2 * base, 4 * base, 8 * base, 16 * base, 16 * base, 16 * base]);
  });

  it('abandon() gives the trial slot back (the request went nowhere: nothing learned)', () => {
    const { breaker, clock } = breakerAt();
    fail(breaker, GATEWAY_BREAKER_FAILURES);
    clock.now += GATEWAY_BREAKER_COOLDOWN_MS;
    expect(breaker.tryAcquire()).toBe(true);
    expect(breaker.tryAcquire()).toBe(false);
    breaker.abandon();
    expect(breaker.state).toBe('half-open');
    expect(breaker.tryAcquire()).toBe(true);
    expect(breaker.tryAcquire()).toBe(false);
  });

  it('a 429 on the half-open trial cools it for the retry-after, then it is closed', () => {
    const { breaker, clock } = breakerAt();
    fail(breaker, GATEWAY_BREAKER_FAILURES);
    clock.now += GATEWAY_BREAKER_COOLDOWN_MS;
    expect(breaker.tryAcquire()).toBe(true);
    breaker.throttled(2_000);
    expect(breaker.state).toBe('cooling');
    clock.now += 2_000;
    expect(breaker.state).toBe('closed');
  });

  it('failures of requests already in flight when it opened neither extend nor double the cooldown', () => {
    // Under load many requests are in flight to a backend when it starts failing: they all fail
    // after the breaker opened. The cooldown doubles per failed trial, not per late failure.
    const { breaker, clock } = breakerAt();
    for (let i = 0; i < 20; i++) expect(breaker.tryAcquire()).toBe(true);
    fail(breaker, GATEWAY_BREAKER_FAILURES);
    const openedAt = clock.now;
    clock.now += 50;
    fail(breaker, 17);
    expect(breaker.state).toBe('open');
    expect(breaker.availableAt).toBe(openedAt + GATEWAY_BREAKER_COOLDOWN_MS);
    clock.now = openedAt + GATEWAY_BREAKER_COOLDOWN_MS;
    expect(breaker.tryAcquire()).toBe(true);
    breaker.failure();
    expect(breaker.availableAt - clock.now).toBe(2 * GATEWAY_BREAKER_COOLDOWN_MS);
  });
});
