// Hostile peers, one test per attack (yamux style). A session is fed hand-built messages; every
// violation must close the session with its code and reset its streams, and nothing may throw
// out of receive().

import { describe, expect, it } from 'vitest';
import { ERROR_CODES, WicketError, type ErrorCode } from '../../../protocol/errors.js';
import { MUX_MAX_DATA_PAYLOAD, NOISE_MAX_PLAINTEXT, STREAM_INITIAL_WINDOW } from '../../../protocol/limits.js';
import { FrameType, frameHeader } from '../../../protocol/mux/frames.js';
import { MuxSession, type MuxSessionOptions } from '../../../protocol/mux/session.js';
import type { MuxStream } from '../../../protocol/mux/stream.js';
import { parseMessage, seededRandom, type ParsedFrame } from './sim.js';

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
    v.feed(frameHeader(FrameType.PONG, 0, 1), frameHeader(FrameType.PONG, 0, 12345));
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
