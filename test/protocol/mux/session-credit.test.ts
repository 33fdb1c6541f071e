// Session credit (issue 12): one window for the DATA of all streams of a session, announced with
// WINDOW(0) to peers that say hello, enforced by every receiver. Proves: data stops for every
// stream when the session credit is spent and resumes with WINDOW(0), control frames still
// going and round robin still fair; every byte that leaves the receiver's hands returns its
// credit (read, dropped by a reset either way, or for a stream already gone), so nothing leaks
// over thousands of resets; a build before session credit still interoperates; and 10,000
// concurrent streams fit in one session.

import { describe, expect, it } from 'vitest';
import { ERROR_CODES, type WicketError } from '../../../protocol/errors.js';
import {
  MAX_STREAMS_PER_CHANNEL,
  MUX_LEGACY_MAX_STREAMS,
  MUX_MAX_DATA_PAYLOAD,
  MUX_SESSION_RECEIVE_WINDOW,
  MUX_SESSION_STREAM_STATE_BUDGET,
  MUX_SESSION_WINDOW_BUDGET,
  MUX_STREAM_STATE_BYTES,
  STREAM_INITIAL_WINDOW,
} from '../../../protocol/limits.js';
import { FrameType, SESSION_HELLO, frameHeader } from '../../../protocol/mux/frames.js';
import { MuxSession, type MuxSessionOptions } from '../../../protocol/mux/session.js';
import { SessionReceiveWindow, SessionSendCredit } from '../../../protocol/mux/session-window.js';
import type { MuxStream } from '../../../protocol/mux/stream.js';
import { MuxPair, parseMessage, seededRandom, type ParsedFrame } from './sim.js';

const hello = () => frameHeader(FrameType.PING, 0, SESSION_HELLO);
const open = (id: number, window = STREAM_INITIAL_WINDOW) => frameHeader(FrameType.OPEN, id, window);
const data = (id: number, n: number) => Buffer.concat([frameHeader(FrameType.DATA, id, n), Buffer.alloc(n, id)]);
const reset = (id: number) => frameHeader(FrameType.RESET, id, ERROR_CODES.WICKET_ERR_STREAM_RESET.num);

/** A responder facing a hand-driven peer; `pause` holds every accepted stream's data. */
function responder(options: Partial<MuxSessionOptions> & { pause?: boolean } = {}) {
  const sent: Buffer[] = [];
  const closes: (WicketError | undefined)[] = [];
  const streams = new Map<number, MuxStream>();
  const session = new MuxSession({ role: 'responder', now: () => 0, send: (parts) => sent.push(Buffer.concat(parts)) > 0, ...options });
  session.on('close', (err?: WicketError) => closes.push(err));
  session.on('stream', (s: MuxStream) => {
    streams.set(s.id, s);
    s.on('data', () => undefined);
    s.on('reset', () => undefined);
    if (options.pause === true) s.pause();
  });
  const frames = (): ParsedFrame[] => sent.flatMap(parseMessage);
  return {
    session,
    closes,
    streams,
    frames,
    /** Credit returned so far with WINDOW(0), the announcement aside. */
    returned: () => frames().filter((f) => f.type === FrameType.WINDOW && f.stream === 0).slice(1).reduce((n, f) => n + f.value, 0),
    feed: (...parts: Buffer[]) => session.receive(Buffer.concat(parts)),
  };
}

/** Sessions that exchanged hellos and announcements before any data. */
function announcedPair(o: ConstructorParameters<typeof MuxPair>[0]): MuxPair {
  const pair = new MuxPair(o);
  pair.a.ping();
  pair.b.ping();
  pair.settle();
  return pair;
}

describe('session credit: announcement', () => {
  it('each side opens with the hello, and answers the peer\'s hello with WINDOW(0, its whole window)', () => {
    const sent: { from: 'a' | 'b'; frames: ParsedFrame[] }[] = [];
    const pair = new MuxPair({ seed: 21, a: { sessionWindow: 100_000 }, b: { sessionWindow: 200_000 }, onSend: (from, m) => sent.push({ from, frames: parseMessage(m) }) });
    pair.a.openStream();
    pair.settle();
    const first = (side: 'a' | 'b') => sent.find((m) => m.from === side)!.frames;
    const windows = (side: 'a' | 'b') => sent.filter((m) => m.from === side).flatMap((m) => m.frames).filter((f) => f.type === FrameType.WINDOW && f.stream === 0);
    expect(first('a')[0]).toEqual({ type: FrameType.PING, stream: 0, value: SESSION_HELLO });
    // b answers a's first message: its own hello first, then its announcement.
    expect(first('b').slice(0, 2)).toEqual([
      { type: FrameType.PING, stream: 0, value: SESSION_HELLO },
      { type: FrameType.WINDOW, stream: 0, value: 200_000 },
    ]);
    expect(windows('a')).toEqual([{ type: FrameType.WINDOW, stream: 0, value: 100_000 }]);
    expect(pair.a.sessionCredit).toBe(200_000);
    expect(pair.b.sessionCredit).toBe(100_000);
  });

  it('before the announcement a sender assumes its own window: a burst on many streams in the first round trip cannot overrun the peer', () => {
    const window = 64 * 1024;
    const pair = new MuxPair({ seed: 22, link: { delayMs: [10, 10] }, both: { sessionWindow: window } });
    const accepted: MuxStream[] = [];
    pair.b.on('stream', (s: MuxStream) => {
      accepted.push(s);
      s.pause();
    });
    // 32 streams with 256 KiB of stream credit each write at once, before any message has crossed.
    const streams = Array.from({ length: 32 }, () => pair.a.openStream());
    for (const s of streams) s.write(Buffer.alloc(10_000, 1));
    pair.settle();
    expect(pair.b.closed).toBe(false);
    expect(pair.b.heldBytes).toBe(window);
    expect(pair.a.sessionCredit).toBe(0);
    expect(streams.reduce((n, s) => n + s.bytesSent, 0)).toBe(window);
  });
});

describe('session credit: sending', () => {
  it('stops data for every stream once spent, lets control frames through, and resumes with WINDOW(0)', () => {
    const window = 64 * 1024;
    let dataFrames = 0;
    const pair = announcedPair({
      seed: 23,
      both: { sessionWindow: window },
      onSend: (from, m) => {
        if (from === 'a') dataFrames += parseMessage(m).filter((f) => f.type === FrameType.DATA).length;
      },
    });
    const accepted: MuxStream[] = [];
    const received = new Map<number, number>();
    pair.b.on('stream', (s: MuxStream) => {
      accepted.push(s);
      s.pause(); // readers that do not read yet: every byte stays held
      s.on('data', (c: Buffer) => received.set(s.id, (received.get(s.id) ?? 0) + c.length));
    });
    const streams = Array.from({ length: 16 }, () => pair.a.openStream());
    for (const s of streams) s.write(Buffer.alloc(40_000, s.id));
    pair.settle();
    expect(pair.b.heldBytes).toBe(window);
    expect(pair.a.sessionCredit).toBe(0);
    // The waiting streams have bytes and stream credit: only the session's credit holds them.
    const waiting = streams.filter((s) => s.queuedBytes > 0);
    expect(waiting.length).toBeGreaterThanOrEqual(14);
    for (const s of waiting) expect(s.sendCredit).toBeGreaterThan(0);
    // Control frames still go (a ping round trip), and nothing spins or sends data meanwhile.
    const stalledAt = dataFrames;
    pair.a.ping();
    pair.a.transportDrained();
    streams[5]!.write(Buffer.from('more'));
    pair.settle();
    expect(pair.a.rttMs).toBeDefined();
    expect(dataFrames).toBe(stalledAt);
    // Reading returns credit and every stream finishes.
    for (const s of accepted) s.resume();
    pair.settle();
    for (const s of streams) expect(received.get(s.id)).toBe(s.id === streams[5]!.id ? 40_004 : 40_000);
    expect(pair.b.heldBytes).toBe(0);
  });

  it('keeps round robin fair while credit trickles in: when the first stream finishes, every other is within a few frames', () => {
    const pair = announcedPair({ seed: 24, link: { delayMs: [1, 1] }, both: { sessionWindow: 128 * 1024 } });
    const total = 1024 * 1024;
    const received = new Map<number, number>();
    let firstDone: number[] | undefined;
    const streams: MuxStream[] = [];
    pair.b.on('stream', (s: MuxStream) =>
      s.on('data', (c: Buffer) => {
        received.set(s.id, (received.get(s.id) ?? 0) + c.length);
        if (firstDone === undefined && received.get(s.id) === total) firstDone = streams.map((t) => received.get(t.id) ?? 0);
      }),
    );
    for (let i = 0; i < 20; i++) streams.push(pair.a.openStream());
    for (const s of streams) s.write(Buffer.alloc(total));
    pair.settle();
    expect(streams.every((s) => received.get(s.id) === total)).toBe(true);
    // A turn is one frame; a frame cut short by the session credit keeps its turn (before that fix,
    // streams whose turns fell on slivers of credit had 728 bytes when the first one finished).
    expect(Math.min(...firstDone!)).toBeGreaterThanOrEqual(total - 3 * MUX_MAX_DATA_PAYLOAD);
  });
});

describe('session credit: every byte that leaves our hands returns its credit', () => {
  it('read, dropped by our reset, dropped by the peer\'s reset, and received for a stream already gone', () => {
    const window = 40_000;
    const v = responder({ sessionWindow: window, pause: true });
    v.feed(hello(), open(1), open(3), open(5), open(7));
    expect(v.frames().filter((f) => f.type === FrameType.WINDOW && f.stream === 0)).toEqual([{ type: FrameType.WINDOW, stream: 0, value: window }]);
    v.feed(data(1, 10_000), data(3, 10_000), data(5, 10_000), data(7, 10_000));
    expect(v.session.heldBytes).toBe(window);
    v.streams.get(1)!.resume(); // read
    expect(v.returned()).toBe(10_000);
    v.streams.get(3)!.reset(); // dropped by our reset
    expect(v.returned()).toBe(20_000);
    v.feed(reset(5)); // dropped by the peer's reset
    expect(v.returned()).toBe(30_000);
    v.streams.get(7)!.reset(); // ...and what was in flight arrives for a stream already gone
    v.feed(data(7, 10_000));
    expect(v.returned()).toBe(50_000);
    expect(v.session.heldBytes).toBe(0);
    // Nothing leaked: the whole window is the peer's again, and not a byte more.
    v.feed(open(9), data(9, window));
    expect(v.session.closed).toBe(false);
    expect(v.session.heldBytes).toBe(window);
    v.feed(data(9, 1));
    expect(v.closes.map((e) => e?.code)).toEqual(['WICKET_ERR_MUX_WINDOW_EXCEEDED']);
  });

  it('after thousands of streams reset with data held or in flight, either way, data still flows at full window', () => {
    const window = 256 * 1024;
    const pair = announcedPair({ seed: 25, link: { delayMs: [1, 4] }, both: { sessionWindow: window } });
    const rng = pair.rng;
    let resetsByB = 0;
    pair.b.on('stream', (s: MuxStream) => {
      s.on('reset', () => undefined);
      const fate = rng.int(0, 2);
      if (fate === 0) s.pause(); // holds its data until the reset below
      s.on('data', () => {
        if (fate === 1 && !s.closed) {
          resetsByB++;
          s.reset(); // the rest of the peer's bytes are in flight: they arrive for a gone stream
        }
      });
      if (fate === 0) pair.schedule(pair.clock.now + rng.int(1, 5), () => (resetsByB++, s.reset()));
    });
    let sent = 0;
    for (let batch = 0; batch < 40; batch++) {
      const streams = Array.from({ length: 50 }, () => pair.a.openStream());
      for (const s of streams) {
        s.on('reset', () => undefined);
        s.write(Buffer.alloc(20_000, 7));
        sent += 20_000;
        if (rng.chance(0.25)) pair.schedule(pair.clock.now + rng.int(0, 3), () => s.reset()); // a resets with data in flight
      }
      pair.settle();
    }
    expect(sent).toBeGreaterThan(100 * window);
    expect(resetsByB).toBeGreaterThan(500);
    expect(pair.a.closed || pair.b.closed).toBe(false);
    expect(pair.b.heldBytes).toBe(0);
    // Credit not yet returned stays under the update threshold, so the sender holds >= 3/4 of it.
    expect(pair.a.sessionCredit).toBeGreaterThanOrEqual((window * 3) / 4);
    let got = 0;
    pair.b.removeAllListeners('stream');
    pair.b.on('stream', (s: MuxStream) => s.on('data', (c: Buffer) => (got += c.length)));
    pair.a.openStream().write(Buffer.alloc(4 * 1024 * 1024));
    pair.settle();
    expect(got).toBe(4 * 1024 * 1024);
  });
});

describe('session credit: hostile peers', () => {
  it('SessionWindowOverrun: data past the session window across streams closes the session with WINDOW_EXCEEDED, each stream within its own', () => {
    for (const saysHello of [true, false]) {
      // Receivers always enforce: a peer cannot escape the bound by skipping the hello.
      const v = responder({ sessionWindow: 100_000, pause: true });
      v.feed(...(saysHello ? [hello()] : []), open(1), open(3), open(5));
      for (const [id, n] of [[1, 40_000], [3, 40_000], [5, 20_000]] as const) v.feed(data(id, n));
      expect(v.session.closed).toBe(false);
      const resets: string[] = [];
      for (const s of v.streams.values()) s.on('reset', (e: WicketError) => resets.push(e.code));
      v.feed(data(5, 1));
      expect(v.closes.map((e) => e?.code)).toEqual(['WICKET_ERR_MUX_WINDOW_EXCEEDED']);
      expect(v.closes[0]!.message).toContain('session credit');
      expect(resets).toEqual(Array(3).fill('WICKET_ERR_MUX_WINDOW_EXCEEDED'));
      expect(v.session.streamCount).toBe(0);
    }
  });

  it('SessionCreditOverflow: WINDOW(0) past 2^32-1 of credit closes the session with MUX_PROTOCOL', () => {
    const v = responder();
    v.feed(hello(), frameHeader(FrameType.WINDOW, 0, 0xffff_ffff));
    expect(v.session.closed).toBe(false);
    v.feed(frameHeader(FrameType.WINDOW, 0, 1));
    expect(v.closes.map((e) => e?.code)).toEqual(['WICKET_ERR_MUX_PROTOCOL']);
  });

  it('HelloAgain: a PING(0) after the first frame is an ordinary ping, and earns no second announcement', () => {
    const v = responder();
    v.feed(hello(), open(1));
    v.feed(frameHeader(FrameType.PING, 0, SESSION_HELLO));
    v.feed(frameHeader(FrameType.PING, 0, SESSION_HELLO), frameHeader(FrameType.PING, 0, SESSION_HELLO));
    const session = v.frames().filter((f) => f.stream === 0 && f.type !== FrameType.PING);
    expect(session).toEqual([
      { type: FrameType.WINDOW, stream: 0, value: MUX_SESSION_RECEIVE_WINDOW },
      { type: FrameType.PONG, stream: 0, value: 0 },
      { type: FrameType.PONG, stream: 0, value: 0 },
    ]);
    expect(v.session.closed).toBe(false);
  });

  it('NoHello: a peer whose first frame is not the hello is never sent a WINDOW(0), whatever it sends later', () => {
    const v = responder();
    v.feed(open(1), frameHeader(FrameType.PING, 0, 7));
    v.feed(frameHeader(FrameType.PING, 0, SESSION_HELLO), data(1, 60_000));
    v.streams.get(1)!.reset();
    expect(v.frames().filter((f) => f.type === FrameType.WINDOW && f.stream === 0)).toEqual([]);
    expect(v.session.sessionCredit).toBe(Infinity);
  });
});

describe('session credit: a peer built before it', () => {
  it.each(['a', 'b'] as const)('interoperates with an older %s: never sent a WINDOW(0), never limited, and its credit returned to ourselves', (legacy) => {
    // The current side's window covers everything the older side's streams may hold (4 x 16 KiB),
    // as MUX_SESSION_RECEIVE_WINDOW covers an older build's 1,024 streams; it still carries 16x
    // that, which it could not if the credit an older peer cannot be told of were never returned.
    const window = 4 * 16 * 1024;
    const current = legacy === 'a' ? 'b' : 'a';
    const pair = new MuxPair({
      seed: legacy === 'a' ? 26 : 27,
      link: { delayMs: [0, 3], bytesPerMs: 50_000, congestAboveBytes: 256 * 1024 },
      legacy,
      both: { initialWindow: 16 * 1024, maxWindow: 16 * 1024 },
      [legacy]: { maxStreams: MUX_LEGACY_MAX_STREAMS },
      [current]: { sessionWindow: window },
    });
    const total = 1024 * 1024;
    const got: Record<'a' | 'b', Map<number, number>> = { a: new Map(), b: new Map() };
    let maxHeld = 0;
    const readers: MuxStream[] = [];
    const attach = (side: 'a' | 'b', s: MuxStream) => {
      readers.push(s);
      s.on('data', (c: Buffer) => got[side].set(s.id, (got[side].get(s.id) ?? 0) + c.length));
    };
    const done = () => (['a', 'b'] as const).every((side) => got[side].size === 4 && [...got[side].values()].every((n) => n === total));
    // Readers that fall behind now and then: windows fill and data waits, held.
    const hiccup = (): void => {
      if (done()) return;
      const s = readers[pair.rng.int(0, readers.length - 1)]!;
      s.pause();
      pair.schedule(pair.clock.now + pair.rng.int(5, 20), () => s.resume());
      pair.schedule(pair.clock.now + 3, hiccup);
    };
    pair.b.on('stream', (s: MuxStream) => {
      attach('b', s);
      s.write(Buffer.alloc(total, 2));
    });
    for (let i = 0; i < 4; i++) {
      const s = pair.a.openStream();
      attach('a', s);
      s.write(Buffer.alloc(total, 1));
    }
    hiccup();
    pair.runUntil(() => {
      maxHeld = Math.max(maxHeld, pair[current].heldBytes);
      return done();
    }, 400_000);
    pair.settle();
    expect(pair.legacyViolations).toEqual([]);
    expect(pair.a.closed || pair.b.closed).toBe(false);
    for (const side of ['a', 'b'] as const) expect([...got[side].values()]).toEqual(Array(4).fill(total));
    expect(pair[current].sessionCredit).toBe(Infinity);
    expect(maxHeld).toBeGreaterThan(0);
    expect(maxHeld).toBeLessThanOrEqual(window);
  });

  it('the default session window covers all an older peer may legitimately have outstanding', () => {
    expect(MUX_SESSION_RECEIVE_WINDOW).toBeGreaterThanOrEqual(MUX_LEGACY_MAX_STREAMS * STREAM_INITIAL_WINDOW + MUX_SESSION_WINDOW_BUDGET);
    expect(MUX_SESSION_RECEIVE_WINDOW).toBeLessThanOrEqual(0xffff_ffff); // one WINDOW(0) announces it
  });

  it('an older peer\'s PONG(0), its answer to our hello, is ignored', () => {
    const v = responder();
    v.session.ping();
    v.feed(open(1), frameHeader(FrameType.PONG, 0, SESSION_HELLO));
    expect(v.session.closed).toBe(false);
    expect(v.session.rttMs).toBeUndefined();
  });
});

describe('many streams on one session', () => {
  it('10,000 concurrent streams open, each carries a byte both ways, and all close cleanly', () => {
    const count = 10_000;
    const pair = new MuxPair({ seed: 28 });
    const accepted: MuxStream[] = [];
    const problems: string[] = [];
    pair.b.on('stream', (s: MuxStream) => {
      accepted.push(s);
      s.on('data', (c: Buffer) => s.write(Buffer.from(c.toString() === 'x' ? 'y' : '?')));
      s.on('end', () => s.end());
      s.on('reset', (e: WicketError) => problems.push(e.code));
    });
    const opened: MuxStream[] = [];
    const replies = new Map<number, string>();
    for (let i = 0; i < count; i++) {
      const s = pair.a.openStream();
      s.on('data', (c: Buffer) => replies.set(s.id, (replies.get(s.id) ?? '') + c.toString()));
      s.on('reset', (e: WicketError) => problems.push(e.code));
      s.write(Buffer.from('x'));
      opened.push(s);
    }
    pair.settle(1_000_000);
    // All open at once, each answered.
    expect(pair.a.streamCount).toBe(count);
    expect(pair.b.streamCount).toBe(count);
    expect(accepted).toHaveLength(count);
    expect(opened.every((s) => replies.get(s.id) === 'y')).toBe(true);
    let closed = 0;
    for (const s of opened) {
      s.on('close', () => closed++);
      s.end();
    }
    pair.settle(1_000_000);
    expect(closed).toBe(count);
    expect(problems).toEqual([]);
    expect(pair.a.streamCount + pair.b.streamCount).toBe(0);
    expect(pair.a.closed || pair.b.closed).toBe(false);
  });

  it('the stream cap is a memory budget far above 10,000, and past it a stream is still refused with MUX_TOO_MANY_STREAMS', () => {
    expect(MAX_STREAMS_PER_CHANNEL).toBe(Math.floor(MUX_SESSION_STREAM_STATE_BUDGET / MUX_STREAM_STATE_BYTES));
    expect(MAX_STREAMS_PER_CHANNEL).toBeGreaterThan(50_000);
    // The same rule with a small cap on the accepting side: the opener learns it by the stream's reset.
    const pair = new MuxPair({ seed: 29, b: { maxStreams: 100 } });
    const accepted: MuxStream[] = [];
    pair.b.on('stream', (s: MuxStream) => accepted.push(s));
    const resets = new Map<number, string>();
    const streams = Array.from({ length: 101 }, () => {
      const s = pair.a.openStream();
      s.on('reset', (e: WicketError) => resets.set(s.id, e.code));
      return s;
    });
    pair.settle();
    expect(accepted).toHaveLength(100);
    expect([...resets]).toEqual([[streams[100]!.id, 'WICKET_ERR_MUX_TOO_MANY_STREAMS']]);
    accepted[0]!.reset();
    const again = pair.a.openStream();
    pair.settle();
    expect(accepted.at(-1)!.id).toBe(again.id);
  });
});

describe('SessionReceiveWindow and SessionSendCredit in isolation', () => {
  it('keep allowance + held + unannounced = size, return credit at a quarter (or once it is all the peer has left), and never to an older peer', () => {
    const rng = seededRandom(12);
    for (const hello of [true, false]) {
      const w = new SessionReceiveWindow(100_000);
      w.peerSpoke(hello);
      expect(w.takeFrame()).toBe(hello ? 100_000 : 0); // the announcement, or nothing ever
      let held = 0;
      let returned = 0;
      for (let i = 0; i < 5_000; i++) {
        if (rng.chance(0.5)) {
          const n = rng.int(1, 30_000);
          const allowance = w.allowance;
          expect(w.receive(n)).toBe(n <= allowance);
          if (n <= allowance) held += n;
        } else if (held > 0) {
          const n = rng.int(1, held);
          held -= n;
          const due = w.release(n);
          const value = w.takeFrame();
          expect(value > 0).toBe(due);
          if (!hello) expect(value).toBe(0);
          if (value > 0) expect(value * 4 >= w.size || value >= w.allowance - value).toBe(true);
          returned += value;
        }
        expect(w.held).toBe(held);
        expect(w.allowance + held).toBeLessThanOrEqual(w.size);
      }
      if (hello) expect(returned).toBeGreaterThan(0);
    }
  });

  it('a sender assumes its own window, drops the limit for an older peer, and counts the announcement from the start', () => {
    const older = new SessionSendCredit(1000);
    older.spend(600);
    expect(older.available).toBe(400);
    older.peerSpoke(false);
    expect(older.available).toBe(Infinity);

    const current = new SessionSendCredit(1000);
    current.spend(600);
    current.peerSpoke(true);
    expect(current.available).toBe(400); // still assumed until the announcement
    current.grant(5000); // the announcement: 5000 from the start, 600 of which are spent
    expect(current.available).toBe(4400);
    current.spend(4400);
    expect(current.available).toBe(0);
    current.grant(100);
    expect(current.available).toBe(100);
    expect(current.state).toBe('limited');
  });
});
