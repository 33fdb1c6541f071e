import { describe, expect, it } from 'vitest';
import { FlushTiming } from '../../../protocol/mux/flush-timing.js';

// When a mux session flushes: without a defer hook, at every request; with one, the first request
// of a turn at once and the rest of the turn's requests in one flush at its end.

function harness(withDefer: boolean) {
  const ends: (() => void)[] = [];
  let flushes = 0;
  const timing = new FlushTiming(withDefer ? (run) => ends.push(run) : undefined, () => flushes++);
  const endTurn = () => {
    for (const run of ends.splice(0)) run();
  };
  return { timing, endTurn, flushes: () => flushes, scheduled: () => ends.length };
}

describe('flush timing', () => {
  it('without a defer hook every request flushes at once', () => {
    const h = harness(false);
    for (let i = 0; i < 5; i++) h.timing.request();
    expect(h.flushes()).toBe(5);
    expect(h.scheduled()).toBe(0);
  });

  it("a turn's first request flushes at once: a lone request waits for nothing", () => {
    const h = harness(true);
    h.timing.request();
    expect(h.flushes()).toBe(1);
    h.endTurn();
    expect(h.flushes()).toBe(1); // nothing else was asked for: no second flush
  });

  it("the rest of a turn's requests share one flush at the turn's end", () => {
    const h = harness(true);
    for (let i = 0; i < 64; i++) h.timing.request();
    expect(h.flushes()).toBe(1);
    expect(h.scheduled()).toBe(1);
    h.endTurn();
    expect(h.flushes()).toBe(2);
    // The next turn starts afresh: its first request goes at once again.
    h.timing.request();
    expect(h.flushes()).toBe(3);
    h.endTurn();
    expect(h.flushes()).toBe(3);
  });
});
