// Seeded property test: two sessions over a simulated link (random delays, link rates,
// congestion), many streams opened by both sides, random write sizes, random pauses, some
// streams reset midway. Proves: every byte of every stream arrives once and in order; the bytes a
// sender has outstanding (sent, not yet consumed by the reader) never exceed the receiver's
// window, checked at every send, and what a session holds never exceeds its session window, also
// when that window is smaller than the streams' (session credit then binds); half-closed streams
// keep working the other way; resets reach the other side without disturbing the rest; no session
// ever closes.

import { describe, expect, it } from 'vitest';
import { ERROR_CODES, type WicketError } from '../../../protocol/errors.js';
import { STREAM_MAX_WINDOW } from '../../../protocol/limits.js';
import { FrameType } from '../../../protocol/mux/frames.js';
import type { MuxSession } from '../../../protocol/mux/session.js';
import type { MuxStream } from '../../../protocol/mux/stream.js';
import { MuxPair, parseMessage, seededRandom, type Rng } from './sim.js';

type Side = 'a' | 'b';
const other = (side: Side): Side => (side === 'a' ? 'b' : 'a');

/** Deterministic bytes: a random 4 KiB block, xored with the block index (catches reordering). */
function pattern(rng: Rng, length: number): Buffer {
  const block = rng.bytes(4096);
  const out = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) out[i] = block[i & 4095]! ^ ((i >>> 12) & 0xff);
  return out;
}

interface Direction {
  data: Buffer;
  written: number;
  blocked: boolean;
  ended: boolean;
  received: Buffer[];
  receivedBytes: number;
  gotEnd: boolean;
}

interface StreamPlan {
  opener: Side;
  id: number;
  ends: Partial<Record<Side, MuxStream>>;
  /** keyed by the sending side */
  dirs: Record<Side, Direction>;
  /** reset by this side once it has written `resetAfter` bytes */
  resetBy?: Side;
  resetAfter: number;
  resetDone: boolean;
  resets: Partial<Record<Side, WicketError>>;
  closed: Partial<Record<Side, boolean>>;
}

function pick<T>(rng: Rng, items: readonly T[]): T {
  return items[rng.int(0, items.length - 1)]!;
}

function runScenario(seed: number): { plans: StreamPlan[]; pair: MuxPair; sessionCreditSpent: boolean } {
  const rng = seededRandom(seed ^ 0x5eed);
  const maxWindow = pick(rng, [64 * 1024, 1024 * 1024, STREAM_MAX_WINDOW]);
  const windows: Record<Side, number> = {
    a: Math.min(maxWindow, pick(rng, [4096, 20_000, 65_536, 256 * 1024])),
    b: Math.min(maxWindow, pick(rng, [4096, 20_000, 65_536, 256 * 1024])),
  };
  // undefined: the default (320 MiB, never reached here); the others bind below the streams' windows.
  const sessionWindow = pick(rng, [undefined, undefined, 70_000, 300_000]);
  const sent: Record<Side, Map<number, number>> = { a: new Map(), b: new Map() };
  let sessionCreditSpent = false;
  const plans = new Map<number, StreamPlan>();
  const violations: string[] = [];

  const pair = new MuxPair({
    seed,
    link: {
      delayMs: [0, pick(rng, [0, 1, 20])],
      bytesPerMs: pick(rng, [Infinity, 2_000, 100_000]),
      congestAboveBytes: pick(rng, [Infinity, 70_000, 300_000]),
      randomCongestion: pick(rng, [0, 0.05, 0.3]),
    },
    both: { maxWindow, writeHighWater: pick(rng, [1, 64 * 1024, 256 * 1024]), sessionWindow },
    a: { initialWindow: windows.a },
    b: { initialWindow: windows.b },
    onSend: (from, message) => {
      for (const frame of parseMessage(message)) {
        if (frame.type !== FrameType.DATA) continue;
        const total = (sent[from].get(frame.stream) ?? 0) + frame.value;
        sent[from].set(frame.stream, total);
        // The instrument: outstanding bytes (sent, not consumed by the reader) <= its window.
        const plan = plans.get(frame.stream);
        const reader = plan?.ends[other(from)];
        const consumed = plan?.dirs[from].receivedBytes ?? 0;
        const bound = reader !== undefined && !plan!.closed[other(from)] ? reader.receiveWindow : maxWindow;
        if (total - consumed > bound) violations.push(`stream ${frame.stream} from ${from}: ${total - consumed} > ${bound}`);
      }
      const receiver = from === 'a' ? pair.b : pair.a;
      if ((from === 'a' ? pair.a : pair.b).sessionCredit === 0) sessionCreditSpent = true;
      if (sessionWindow !== undefined && receiver.heldBytes > sessionWindow) violations.push(`${other(from)} holds ${receiver.heldBytes} > ${sessionWindow}`);
    },
  });
  const sessions: Record<Side, MuxSession> = { a: pair.a, b: pair.b };
  const sessionCloses: unknown[] = [];
  pair.a.on('close', (err) => sessionCloses.push(err));
  pair.b.on('close', (err) => sessionCloses.push(err));

  const attach = (plan: StreamPlan, side: Side, stream: MuxStream): void => {
    plan.ends[side] = stream;
    const incoming = plan.dirs[other(side)];
    stream.on('data', (chunk: Buffer) => {
      incoming.received.push(chunk);
      incoming.receivedBytes += chunk.length;
      // A reader whose socket says "full" pauses inside its data handler.
      if (rng.chance(0.1)) stream.pause();
    });
    stream.on('end', () => {
      incoming.gotEnd = true;
    });
    stream.on('drain', () => {
      plan.dirs[side].blocked = false;
    });
    stream.on('reset', (err: WicketError) => {
      plan.resets[side] = err;
    });
    stream.on('close', () => {
      plan.closed[side] = true;
    });
  };

  for (const side of ['a', 'b'] as const) {
    sessions[side].on('stream', (stream: MuxStream) => {
      const plan = plans.get(stream.id);
      if (plan === undefined) throw new Error(`unexpected stream ${stream.id}`);
      attach(plan, side, stream);
    });
  }

  const newDirection = (length: number): Direction => ({
    data: pattern(rng, length),
    written: 0,
    blocked: false,
    ended: false,
    received: [],
    receivedBytes: 0,
    gotEnd: false,
  });
  const streamTarget = rng.int(1, 10);
  let opened = 0;
  const openOne = (): void => {
    const opener: Side = rng.chance(0.5) ? 'a' : 'b';
    const stream = sessions[opener].openStream();
    const plan: StreamPlan = {
      opener,
      id: stream.id,
      ends: {},
      dirs: {
        a: newDirection(rng.chance(0.2) ? 0 : rng.int(1, 300_000)),
        b: newDirection(rng.chance(0.2) ? 0 : rng.int(1, 300_000)),
      },
      resetAfter: 0,
      resetDone: false,
      resets: {},
      closed: {},
    };
    if (rng.chance(0.2)) {
      plan.resetBy = rng.chance(0.5) ? 'a' : 'b';
      plan.resetAfter = rng.int(0, plan.dirs[plan.resetBy].data.length);
    }
    plans.set(stream.id, plan);
    attach(plan, opener, stream);
    opened++;
  };

  const drive = (): void => {
    if (opened < streamTarget && rng.chance(0.3)) openOne();
    for (const plan of plans.values()) {
      for (const side of ['a', 'b'] as const) {
        const stream = plan.ends[side];
        if (stream === undefined || plan.closed[side]) continue;
        if (stream.paused && rng.chance(0.3)) stream.resume();
        const dir = plan.dirs[side];
        if (plan.resetBy === side && !plan.resetDone && dir.written >= plan.resetAfter) {
          plan.resetDone = true;
          stream.reset('WICKET_ERR_TARGET_UNREACHABLE');
          continue;
        }
        if (dir.ended || dir.blocked || !rng.chance(0.5)) continue;
        const size = rng.chance(0.3) ? rng.int(1, 100) : rng.int(1, 100_000);
        let end = Math.min(dir.data.length, dir.written + size);
        if (plan.resetBy === side && !plan.resetDone) end = Math.min(end, Math.max(plan.resetAfter, dir.written + 1));
        if (end > dir.written) {
          const ok = stream.write(dir.data.subarray(dir.written, end));
          dir.written = end;
          if (!ok) dir.blocked = true;
        }
        const mayEnd = plan.resetBy !== side || plan.resetDone;
        if (dir.written === dir.data.length && mayEnd && rng.chance(0.5)) {
          dir.ended = true;
          stream.end();
        }
      }
    }
  };

  const allDone = (): boolean =>
    opened === streamTarget &&
    pair.pending === 0 &&
    [...plans.values()].every((p) => p.closed.a === true && p.closed.b === true);

  let idleRounds = 0;
  for (let round = 0; round < 200_000 && !allDone(); round++) {
    drive();
    if (!pair.step()) {
      // Nothing in flight: wake every paused reader so the run cannot stall on the test itself.
      for (const plan of plans.values()) for (const side of ['a', 'b'] as const) plan.ends[side]?.resume();
      if (++idleRounds > 5_000) break;
    }
  }
  expect(violations).toEqual([]);
  expect(sessionCloses).toEqual([]);
  const unfinished = [...plans.values()]
    .filter((p) => !(p.closed.a === true && p.closed.b === true))
    .map((p) => ({
      id: p.id,
      resetBy: p.resetBy,
      closed: p.closed,
      ...Object.fromEntries(
        (['a', 'b'] as const).map((side) => {
          const s = p.ends[side];
          const d = p.dirs[side];
          return [side, { len: d.data.length, written: d.written, ended: d.ended, blocked: d.blocked, peerGot: d.receivedBytes, peerEnd: d.gotEnd,
            queued: s?.queuedBytes, credit: s?.sendCredit, paused: s?.paused, held: s?.heldBytes }];
        }),
      ),
    }));
  expect(unfinished, `seed ${seed} (t=${pair.clock.now}, pending ${pair.pending}): every stream closed on both sides`).toEqual([]);
  expect(opened).toBe(streamTarget);
  expect(pair.a.streamCount).toBe(0);
  expect(pair.b.streamCount).toBe(0);
  return { plans: [...plans.values()], pair, sessionCreditSpent };
}

describe('mux delivery under seeded interleavings', () => {
  const seeds = Array.from({ length: 40 }, (_, i) => 1000 + i);

  it.each(seeds)('seed %i: every byte of every stream arrives once, in order, within the window', (seed) => {
    const { plans } = runScenario(seed);
    for (const plan of plans) {
      for (const side of ['a', 'b'] as const) {
        const dir = plan.dirs[side];
        const got = Buffer.concat(dir.received);
        if (plan.resetBy === undefined) {
          // Clean streams: everything, then 'end'.
          expect(got.equals(dir.data), `stream ${plan.id} from ${side}`).toBe(true);
          expect(dir.gotEnd).toBe(true);
        } else {
          // Reset streams: a prefix of what was written, and never an 'end' after the reset.
          expect(got.equals(dir.data.subarray(0, got.length)), `stream ${plan.id} prefix from ${side}`).toBe(true);
        }
      }
      if (plan.resetBy !== undefined) {
        const victim = other(plan.resetBy);
        // The other side learns the code, unless it had already finished both directions.
        const err = plan.resets[victim];
        if (err !== undefined) expect(err.code).toBe('WICKET_ERR_TARGET_UNREACHABLE');
        expect(plan.resets[plan.resetBy]).toBeUndefined();
      }
    }
  });

  it('the seeds exercise resets, zero-length directions, paused readers, many streams and spent session credit', () => {
    let resets = 0;
    let victimsTold = 0;
    let empty = 0;
    let creditSpent = 0;
    for (const seed of seeds.slice(0, 20)) {
      const { plans, sessionCreditSpent } = runScenario(seed);
      if (sessionCreditSpent) creditSpent++;
      for (const plan of plans) {
        if (plan.resetBy !== undefined) {
          resets++;
          if (plan.resets[other(plan.resetBy)]?.num === ERROR_CODES.WICKET_ERR_TARGET_UNREACHABLE.num) victimsTold++;
        }
        if (plan.dirs.a.data.length === 0 || plan.dirs.b.data.length === 0) empty++;
      }
    }
    expect(resets).toBeGreaterThan(3);
    expect(victimsTold).toBeGreaterThan(0);
    expect(empty).toBeGreaterThan(3);
    expect(creditSpent).toBeGreaterThan(2);
  });
});
