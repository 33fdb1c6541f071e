import { describe, expect, it } from 'vitest';
import { FlushTiming } from '../../../protocol/mux/flush-timing.js';

// When a mux session flushes: without a defer hook, at every request; with one, short data waits
// for the turn's end, anything else goes at once when it is the turn's first request, and every
// later request of the turn joins the one flush at its end.

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
  it('without a defer hook every request flushes at once, short data too', () => {
    const h = harness(false);
    for (let i = 0; i < 5; i++) h.timing.request(i % 2 === 0);
    expect(h.flushes()).toBe(5);
    expect(h.scheduled()).toBe(0);
  });

  it("a full frame or credit first in its turn flushes at once, and the turn's end adds nothing", () => {
    const h = harness(true);
    h.timing.request(false);
    expect(h.flushes()).toBe(1);
    h.endTurn();
    expect(h.flushes()).toBe(1);
  });

  it("short data waits for the turn's end, where the turn's other requests join it in one flush", () => {
    const h = harness(true);
    h.timing.request(true);
    expect(h.flushes()).toBe(0);
    for (let i = 0; i < 63; i++) h.timing.request(i % 3 === 0); // short data, FINs, credit
    expect(h.flushes()).toBe(0);
    expect(h.scheduled()).toBe(1);
    h.endTurn();
    expect(h.flushes()).toBe(1);
    h.endTurn();
    expect(h.flushes()).toBe(1); // nothing left over for a later turn
  });

  it("after an immediate flush the rest of the turn's requests share one flush at its end", () => {
    const h = harness(true);
    h.timing.request(false);
    for (let i = 0; i < 64; i++) h.timing.request(true);
    expect(h.flushes()).toBe(1);
    expect(h.scheduled()).toBe(1);
    h.endTurn();
    expect(h.flushes()).toBe(2);
    // The next turn starts afresh.
    h.timing.request(false);
    expect(h.flushes()).toBe(3);
    h.endTurn();
    expect(h.flushes()).toBe(3);
  });
});
