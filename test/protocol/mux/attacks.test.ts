// Hostile peers, one test per attack (yamux style). A session is fed hand-built messages; every
// violation must close the session with its code and reset its streams, and nothing may throw
// out of receive().

import { describe, expect, it } from 'vitest';
import { ERROR_CODES, WicketError, type ErrorCode } from '../../../protocol/errors.js';
import { MUX_MAX_DATA_PAYLOAD, NOISE_MAX_PLAINTEXT, STREAM_INITIAL_WINDOW, STREAM_MAX_WINDOW } from '../../../protocol/limits.js';
import { FrameType, frameHeader } from '../../../protocol/mux/frames.js';
import { MuxSession, type MuxSessionOptions } from '../../../protocol/mux/session.js';
import type { MuxStream } from '../../../protocol/mux/stream.js';
import { MuxPair, parseMessage, seededRandom, type ParsedFrame } from './sim.js';

/** A responder session facing a hand-driven peer (the "initiator", whose streams are odd). */
function victim(options: Partial<MuxSessionOptions> = {}) {
  const sent: Buffer[] = [];
  let congested = false;
  const closes: (WicketError | undefined)[] = [];
  const streams: MuxStream[] = [];
  const resets: WicketError[] = [];
  const session = new MuxSession({
    role: 'responder',
    now: () => 0,
    send: (parts) => {
      sent.push(Buffer.concat(parts));
      return !congested;
    },
    ...options,
  });
  session.on('close', (err?: WicketError) => closes.push(err));
  session.on('stream', (s: MuxStream) => {
    streams.push(s);
    s.on('reset', (err: WicketError) => resets.push(err));
  });
  return {
    session,
    sent,
    closes,
    streams,
    resets,
    setCongested: (v: boolean) => {
      congested = v;
    },
    frames: (): ParsedFrame[] => sent.flatMap(parseMessage),
    feed: (...parts: Buffer[]) => session.receive(Buffer.concat(parts)),
  };
}

const open = (id: number, window = STREAM_INITIAL_WINDOW) => frameHeader(FrameType.OPEN, id, window);
const data = (id: number, payload: Buffer) => Buffer.concat([frameHeader(FrameType.DATA, id, payload.length), payload]);
const fin = (id: number) => frameHeader(FrameType.FIN, id, 0);
const reset = (id: number, code: ErrorCode) => frameHeader(FrameType.RESET, id, ERROR_CODES[code].num);

function expectClosedWith(v: ReturnType<typeof victim>, code: ErrorCode): void {
  expect(v.session.closed).toBe(true);
  expect(v.closes).toHaveLength(1);
  expect(v.closes[0]).toBeInstanceOf(WicketError);
  expect(v.closes[0]!.code).toBe(code);
  expect(v.session.streamCount).toBe(0);
}

describe('mux attacks', () => {
  it('WindowOverrun: data beyond the granted credit closes the session with WINDOW_EXCEEDED', () => {
    const v = victim();
    v.session.on('stream', (s: MuxStream) => s.pause()); // a reader that returns no credit
    const full = Buffer.alloc(MUX_MAX_DATA_PAYLOAD);
    v.feed(open(1));
    // Four full frames fit in 256 KiB of credit; the fifth overruns it.
    for (let i = 0; i < 4; i++) v.feed(data(1, full));
    expect(v.session.closed).toBe(false);
    v.feed(data(1, full));
    expectClosedWith(v, 'WICKET_ERR_MUX_WINDOW_EXCEEDED');
    expect(v.resets.map((e) => e.code)).toEqual(['WICKET_ERR_MUX_WINDOW_EXCEEDED']);
  });

  it('WindowOverrun: the overrun is caught even while the reader is paused and credit is held', () => {
    const v = victim({ initialWindow: 1000 });
    v.session.on('stream', (s: MuxStream) => s.pause());
    v.feed(open(1, 1000), data(1, Buffer.alloc(600)), data(1, Buffer.alloc(400)));
    expect(v.streams[0]!.heldBytes).toBe(1000);
    v.feed(data(1, Buffer.alloc(1)));
    expectClosedWith(v, 'WICKET_ERR_MUX_WINDOW_EXCEEDED');
  });

  it('UnknownStream: frames for a stream never opened close the session', () => {
    for (const frame of [data(7, Buffer.from('x')), frameHeader(FrameType.WINDOW, 7, 10), fin(9), reset(11, 'WICKET_ERR_STREAM_RESET')]) {
      const v = victim();
      v.feed(frame);
      expectClosedWith(v, 'WICKET_ERR_MUX_UNKNOWN_STREAM');
    }
    // Our own parity: an id we never handed out.
    const v = victim();
    v.feed(frameHeader(FrameType.WINDOW, 2, 10));
    expectClosedWith(v, 'WICKET_ERR_MUX_UNKNOWN_STREAM');
  });

  it('DuplicateOpen: reopening an id, going back to an older id, or using our parity is refused', () => {
    const cases: Buffer[][] = [
      [open(1), open(1)],
      [open(5), open(3)],
      [open(2)],
    ];
    for (const frames of cases) {
      const v = victim();
      v.feed(...frames);
      expectClosedWith(v, 'WICKET_ERR_MUX_PROTOCOL');
    }
    // Even once the first stream is gone, its id is never reusable.
    const v = victim();
    v.feed(open(1));
    v.streams[0]!.reset();
    v.feed(open(1));
    expectClosedWith(v, 'WICKET_ERR_MUX_PROTOCOL');
  });

  it('DataAfterFin: data or a second FIN after the peer half-closed closes the session', () => {
    for (const after of [data(1, Buffer.from('late')), fin(1)]) {
      const v = victim();
      v.feed(open(1), data(1, Buffer.from('body')), fin(1));
      expect(v.session.closed).toBe(false);
      v.feed(after);
      expectClosedWith(v, 'WICKET_ERR_MUX_PROTOCOL');
    }
  });

  it('OversizedOpenWindow: an OPEN demanding more buffer than our cap closes the session', () => {
    const v = victim({ maxWindow: 1024 * 1024 });
    v.feed(open(1, 1024 * 1024 + 1));
    expectClosedWith(v, 'WICKET_ERR_MUX_PROTOCOL');
  });

  it('CreditOverflow: window updates past 2^32-1 close the session', () => {
    const v = victim();
    v.feed(open(1), frameHeader(FrameType.WINDOW, 1, 0xffff_ffff));
    expectClosedWith(v, 'WICKET_ERR_MUX_PROTOCOL');
  });

  it('StreamFlood: opens past maxStreams are reset with TOO_MANY_STREAMS and the session lives', () => {
    const v = victim({ maxStreams: 8 });
    for (let i = 0; i < 100; i++) v.feed(open(2 * i + 1), data(2 * i + 1, Buffer.from('hello')));
    expect(v.session.closed).toBe(false);
    expect(v.session.streamCount).toBe(8);
    expect(v.streams).toHaveLength(8);
    const refusals = v.frames().filter((f) => f.type === FrameType.RESET);
    expect(refusals).toHaveLength(92);
    expect(refusals.every((f) => f.value === ERROR_CODES.WICKET_ERR_MUX_TOO_MANY_STREAMS.num)).toBe(true);
    // Our own opens hit the same limit, with a clear error.
    expect(() => v.session.openStream()).toThrowError(/WICKET_ERR_MUX_TOO_MANY_STREAMS/);
    // A closed slot is reusable.
    v.streams[0]!.reset();
    expect(v.session.openStream().id).toBe(2);
  });

  it('StreamFlood: a peer that keeps opening past the limit while we are congested loses the session', () => {
    const v = victim({ maxStreams: 4 });
    v.setCongested(true);
    v.session.ping(); // any send marks the transport congested
    for (let i = 0; i < 4 + 4 + 1 && !v.session.closed; i++) v.feed(open(2 * i + 1));
    expectClosedWith(v, 'WICKET_ERR_MUX_TOO_MANY_STREAMS');
  });

  it('refuses OPEN windows beyond the session budget: 32 streams of 16 MiB against a reader that never reads hold at most the budget', () => {
    const MiB = 1024 * 1024;
    const budget = 32 * MiB; // room for two 16 MiB windows' excess over 256 KiB, not a third
    const v = victim({ windowBudget: budget });
    let pauseNew = true; // our target never reads: every stream it accepts stays paused
    v.session.on('stream', (s: MuxStream) => {
      if (pauseNew) s.pause();
    });
    const bound = 32 * STREAM_INITIAL_WINDOW + budget;
    const held = () => v.streams.reduce((sum, s) => sum + s.heldBytes, 0);
    const ids = Array.from({ length: 32 }, (_, i) => 2 * i + 1);
    v.feed(...ids.map((id) => open(id, STREAM_MAX_WINDOW)));
    // Then full windows of DATA on every stream, round robin, in full-size frames (one reused
    // message per stream: the views we hold alias it, which is all a byte count needs).
    const payload = Buffer.alloc(MUX_MAX_DATA_PAYLOAD, 0x41);
    const full = new Map(ids.map((id) => [id, data(id, payload)]));
    let maxHeld = 0;
    for (let sent = 0; sent < STREAM_MAX_WINDOW; sent += MUX_MAX_DATA_PAYLOAD) {
      const n = Math.min(MUX_MAX_DATA_PAYLOAD, STREAM_MAX_WINDOW - sent);
      for (const id of ids) {
        v.session.receive(n === MUX_MAX_DATA_PAYLOAD ? full.get(id)! : data(id, payload.subarray(0, n)));
        maxHeld = Math.max(maxHeld, held());
      }
    }
    expect(v.session.closed).toBe(false);
    expect(maxHeld).toBeLessThanOrEqual(bound);
    // Two streams took 16 MiB windows (and hold them, full); the other 30 were refused.
    expect(v.streams.map((s) => [s.id, s.receiveWindow, s.heldBytes])).toEqual([
      [1, STREAM_MAX_WINDOW, STREAM_MAX_WINDOW],
      [3, STREAM_MAX_WINDOW, STREAM_MAX_WINDOW],
    ]);
    const resets = v.frames().filter((f) => f.type === FrameType.RESET);
    expect(resets.map((f) => f.stream)).toEqual(ids.slice(2));
    expect(resets.every((f) => f.value === ERROR_CODES.WICKET_ERR_MUX_WINDOW_BUDGET.num)).toBe(true);

    // The session still works: a well-behaved stream (default window, charged nothing) delivers,
    // both ways, with the budget spent.
    pauseNew = false;
    v.feed(open(65));
    const good = v.streams.at(-1)!;
    expect(good.id).toBe(65);
    const got: Buffer[] = [];
    good.on('data', (c: Buffer) => got.push(c));
    v.feed(data(65, Buffer.from('GET / HTTP/1.1\r\n\r\n')));
    expect(Buffer.concat(got).toString()).toBe('GET / HTTP/1.1\r\n\r\n');
    good.write(Buffer.from('HTTP/1.1 200 OK\r\n\r\n'));
    expect(v.frames().some((f) => f.type === FrameType.DATA && f.stream === 65)).toBe(true);
    // A third big window is still refused while the two are held...
    v.feed(open(67, STREAM_MAX_WINDOW));
    expect(v.frames().at(-1)).toEqual({ type: FrameType.RESET, stream: 67, value: ERROR_CODES.WICKET_ERR_MUX_WINDOW_BUDGET.num });
    // ...and closing the held streams gives the budget back: big-window OPENs are accepted again.
    v.streams[0]!.reset();
    v.streams[1]!.reset();
    v.feed(open(69, STREAM_MAX_WINDOW), open(71, STREAM_MAX_WINDOW));
    expect(v.streams.slice(-2).map((s) => [s.id, s.receiveWindow])).toEqual([
      [69, STREAM_MAX_WINDOW],
      [71, STREAM_MAX_WINDOW],
    ]);
    expect(v.session.closed).toBe(false);
  });

  it('OpenWindowFlood: a peer that keeps opening over-budget streams while we are congested loses the session', () => {
    const v = victim({ maxStreams: 4, windowBudget: 0 });
    v.setCongested(true);
    v.session.ping(); // any send marks the transport congested
    for (let i = 0; i < 4 + 1 && !v.session.closed; i++) v.feed(open(2 * i + 1, STREAM_MAX_WINDOW));
    expectClosedWith(v, 'WICKET_ERR_MUX_WINDOW_BUDGET');
  });

  it('never refuses a legitimate peer with the default windows: maxStreams streams open even after auto-tuning spent the budget', () => {
    // A 40 ms, 100 MB/s path: a bulk stream's window doubles until the (small) budget is spent.
    const growth = 768 * 1024; // 256 KiB -> 512 KiB -> 1 MiB
    // maxStreams as the default was before issue 12 (now 61,008): enough to show the point, and fast.
    const maxStreams = 1_024;
    const pair = new MuxPair({ seed: 11, link: { delayMs: [20, 20], bytesPerMs: 100_000, congestAboveBytes: 1024 * 1024 }, b: { windowBudget: growth, maxStreams } });
    const accepted: MuxStream[] = [];
    const got = new Map<number, number>();
    pair.b.on('stream', (s: MuxStream) => {
      accepted.push(s);
      s.on('data', (c: Buffer) => got.set(s.id, (got.get(s.id) ?? 0) + c.length));
    });
    const resets: string[] = [];
    const bulk = pair.a.openStream();
    bulk.on('reset', (e: WicketError) => resets.push(e.code));
    const chunk = Buffer.alloc(64 * 1024);
    let written = 0;
    const fill = (): void => {
      while (written < 16 * 1024 * 1024) {
        written += chunk.length;
        if (!bulk.write(chunk)) return;
      }
    };
    bulk.on('drain', fill);
    fill();
    pair.runUntil(() => got.get(1) === 16 * 1024 * 1024);
    expect(accepted[0]!.receiveWindow).toBe(STREAM_INITIAL_WINDOW + growth); // the budget is spent

    const streams = Array.from({ length: maxStreams - 1 }, () => pair.a.openStream()); // up to maxStreams
    for (const s of streams) {
      s.on('reset', (e: WicketError) => resets.push(e.code));
      s.write(Buffer.alloc(1000, 1));
    }
    pair.settle();
    expect(resets).toEqual([]);
    expect(accepted).toHaveLength(maxStreams);
    expect(streams.every((s) => got.get(s.id) === 1000)).toBe(true);
  });

  it('PingFlood: one pong per message at most, and none queued while the transport is congested', () => {
    const v = victim();
    const pings = Buffer.alloc(Math.floor(NOISE_MAX_PLAINTEXT / 9) * 9);
    for (let i = 0; i < pings.length / 9; i++) frameHeader(FrameType.PING, 0, i).copy(pings, i * 9);
    const pongs = () => v.frames().filter((f) => f.type === FrameType.PONG);
    for (let i = 0; i < 50; i++) v.feed(pings);
    expect(pongs()).toHaveLength(50); // one per message, answering its last ping
    expect(pongs()[0]!.value).toBe(pings.length / 9 - 1);
    v.setCongested(true);
    v.session.ping(); // learn that the transport is congested
    const before = pongs().length;
    for (let i = 0; i < 200; i++) v.feed(pings);
    expect(pongs().length).toBe(before);
    v.setCongested(false);
    v.session.transportDrained();
    expect(pongs().length).toBe(before + 1);
    expect(v.session.closed).toBe(false);
  });

  it('UnsolicitedPong: pongs we did not ask for are ignored and give no RTT sample', () => {
    const v = victim();
    // PONG(0) is also how a build before session credit answers our hello.
    v.feed(frameHeader(FrameType.PONG, 0, 1), frameHeader(FrameType.PONG, 0, 12345), frameHeader(FrameType.PONG, 0, 0));
    expect(v.session.closed).toBe(false);
    expect(v.session.rttMs).toBeUndefined();
  });

  it('ResetRace: frames for a stream we already reset are tolerated, the session lives', () => {
    const v = victim();
    v.feed(open(1));
    v.streams[0]!.reset('WICKET_ERR_TARGET_UNREACHABLE');
    v.feed(data(1, Buffer.from('in flight')), frameHeader(FrameType.WINDOW, 1, 100), fin(1), reset(1, 'WICKET_ERR_STREAM_RESET'));
    expect(v.session.closed).toBe(false);
    const sentReset = v.frames().find((f) => f.type === FrameType.RESET);
    expect(sentReset).toEqual({ type: FrameType.RESET, stream: 1, value: ERROR_CODES.WICKET_ERR_TARGET_UNREACHABLE.num });
  });

  it('HandlerThrows: an exception in our own event handler closes the session, never escapes receive()', () => {
    const v = victim();
    v.session.on('stream', (s: MuxStream) =>
      s.on('data', () => {
        throw new Error('bug in a data handler');
      }),
    );
    expect(() => v.feed(open(1), data(1, Buffer.from('x')))).not.toThrow();
    expectClosedWith(v, 'WICKET_ERR_INTERNAL');
  });

  it('GarbageFrames: seeded random and mutated messages only ever close the session with a code', () => {
    const allowed = new Set<ErrorCode>([
      'WICKET_ERR_FRAME_TRUNCATED',
      'WICKET_ERR_FRAME_TOO_LARGE',
      'WICKET_ERR_FRAME_MALFORMED',
      'WICKET_ERR_FRAME_UNKNOWN_TYPE',
      'WICKET_ERR_MUX_PROTOCOL',
      'WICKET_ERR_MUX_UNKNOWN_STREAM',
      'WICKET_ERR_MUX_WINDOW_EXCEEDED',
    ]);
    const rng = seededRandom(0x6a7ba6e);
    const valid = Buffer.concat([open(1), data(1, Buffer.from('hello world')), frameHeader(FrameType.WINDOW, 1, 100), frameHeader(FrameType.PING, 0, 1), fin(1)]);
    const seen = new Set<ErrorCode>();
    let survived = 0;
    for (let round = 0; round < 2_000; round++) {
      const v = victim({ maxStreams: 4 });
      for (let m = 0; m < 5 && !v.session.closed; m++) {
        let message: Buffer;
        const kind = rng.int(0, 2);
        if (kind === 0) {
          message = rng.bytes(rng.int(0, 300));
        } else {
          message = Buffer.from(valid);
          const flips = rng.int(1, 4);
          for (let f = 0; f < flips; f++) message[rng.int(0, message.length - 1)] = rng.int(0, 255);
          if (kind === 2) message = message.subarray(0, rng.int(0, message.length));
        }
        expect(() => v.session.receive(message)).not.toThrow();
        if (!v.session.closed) survived++;
      }
      if (v.session.closed) {
        const err = v.closes[0]!;
        expect(err).toBeInstanceOf(WicketError);
        expect(allowed.has(err.code), err.message).toBe(true);
        seen.add(err.code);
        expect(v.session.streamCount).toBe(0);
      }
    }
    // The generator reaches the interesting paths, not just one error.
    expect(seen.size).toBeGreaterThanOrEqual(6);
    expect(survived).toBeGreaterThan(0);
  });
});
