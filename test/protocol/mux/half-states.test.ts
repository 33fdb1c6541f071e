// A stream's two named half-states (yamux style): every legal path of the send half and of the
// receive half, driven through a real session by a hand-driven peer, with the state checked at
// each step; the transition tables refuse every other move with WICKET_ERR_INTERNAL; and a peer's
// protocol violation in any state still closes the session with WICKET_ERR_MUX_PROTOCOL.

import { describe, expect, it } from 'vitest';
import { ERROR_CODES, WicketError } from '../../../protocol/errors.js';
import { Lifecycle } from '../../../protocol/lifecycle.js';
import { FrameType, frameHeader } from '../../../protocol/mux/frames.js';
import { MuxSession } from '../../../protocol/mux/session.js';
import {
  RECEIVE_TRANSITIONS,
  SEND_TRANSITIONS,
  type MuxStream,
  type ReceiveState,
  type SendState,
} from '../../../protocol/mux/stream.js';
import { parseMessage, type ParsedFrame } from './sim.js';

/** Our side (responder) of one stream the hand-driven peer opened as stream 1 with `window`. */
function accepted(window = 1000) {
  const sent: Buffer[] = [];
  const closes: (WicketError | undefined)[] = [];
  const session = new MuxSession({
    role: 'responder',
    now: () => 0,
    initialWindow: window,
    send: (parts) => {
      sent.push(Buffer.concat(parts));
      return true;
    },
  });
  session.on('close', (err?: WicketError) => closes.push(err));
  let stream: MuxStream | undefined;
  session.on('stream', (s: MuxStream) => (stream = s));
  const feed = (...parts: Buffer[]) => session.receive(Buffer.concat(parts));
  feed(frameHeader(FrameType.OPEN, 1, window));
  const s = stream!;
  const events: string[] = [];
  for (const name of ['end', 'close', 'reset']) s.on(name, () => events.push(`${name} ${s.sendState}/${s.receiveState}`));
  return {
    session,
    s,
    events,
    closes,
    feed,
    frames: (): ParsedFrame[] => sent.flatMap(parseMessage),
    states: (): [SendState, ReceiveState] => [s.sendState, s.receiveState],
  };
}

const data = (id: number, payload: Buffer) => Buffer.concat([frameHeader(FrameType.DATA, id, payload.length), payload]);
const fin = (id: number) => frameHeader(FrameType.FIN, id, 0);
const window = (id: number, increment: number) => frameHeader(FrameType.WINDOW, id, increment);
const reset = (id: number) => frameHeader(FrameType.RESET, id, ERROR_CODES.WICKET_ERR_TARGET_UNREACHABLE.num);

describe('stream half-states: send half', () => {
  it('open -> fin-sent at once when end() finds nothing queued', () => {
    const t = accepted();
    expect(t.states()).toEqual(['open', 'open']);
    t.s.write(Buffer.from('response'));
    t.s.end();
    expect(t.states()).toEqual(['fin-sent', 'open']);
    expect(t.frames().filter((f) => f.stream === 1).map((f) => f.type)).toEqual([FrameType.DATA, FrameType.FIN]);
    expect(t.s.closed).toBe(false);
  });

  it('open -> ending -> fin-sent when end() finds bytes waiting for credit, FIN after the last byte', () => {
    const t = accepted(1000);
    t.s.write(Buffer.alloc(2500));
    t.s.end();
    expect(t.states()).toEqual(['ending', 'open']);
    expect(t.s.write(Buffer.from('late'))).toBe(false); // refused while ending
    t.feed(window(1, 1000));
    expect(t.states()).toEqual(['ending', 'open']);
    t.feed(window(1, 1000));
    expect(t.states()).toEqual(['fin-sent', 'open']);
    const ours = t.frames().filter((f) => f.stream === 1 && f.type !== FrameType.WINDOW);
    expect(ours.map((f) => f.value)).toEqual([1000, 1000, 500, 0]);
    expect(ours.at(-1)!.type).toBe(FrameType.FIN);
  });

  it('open -> reset and ending -> reset: a local reset() cuts whichever half was unfinished', () => {
    const open = accepted();
    open.s.reset();
    expect(open.states()).toEqual(['reset', 'reset']);
    expect(open.events).toEqual(['close reset/reset']);

    const ending = accepted(1000);
    ending.s.write(Buffer.alloc(1500));
    ending.s.end();
    expect(ending.states()).toEqual(['ending', 'open']);
    ending.s.reset();
    expect(ending.states()).toEqual(['reset', 'reset']);
    expect(ending.s.queuedBytes).toBe(0);
    // No FIN ever left: the peer sees a reset, never a clean end.
    expect(ending.frames().filter((f) => f.stream === 1).map((f) => f.type)).toEqual([FrameType.DATA, FrameType.RESET]);
  });

  it('fin-sent is final: a reset after our FIN cuts only the receive half', () => {
    const t = accepted();
    t.s.end();
    t.feed(reset(1));
    expect(t.states()).toEqual(['fin-sent', 'reset']);
    expect(t.events).toEqual(['reset fin-sent/reset', 'close fin-sent/reset']);
    expect(t.s.closed).toBe(true);
    expect(t.session.streamCount).toBe(0);
  });
});

describe('stream half-states: receive half', () => {
  it('open -> fin-received while held bytes remain -> ended when the reader drains them', () => {
    const t = accepted();
    t.s.pause();
    t.feed(data(1, Buffer.from('held')), fin(1));
    expect(t.states()).toEqual(['open', 'fin-received']);
    expect(t.s.heldBytes).toBe(4);
    t.s.resume();
    expect(t.states()).toEqual(['open', 'ended']);
    expect(t.s.closed).toBe(false); // our direction is still open
    expect(t.s.write(Buffer.from('answer'))).toBe(true);
  });

  it("'ended' follows the 'end' event: listeners see fin-received, and end() inside one closes after them", () => {
    const t = accepted();
    const seen: string[] = [];
    t.s.on('end', () => {
      seen.push(t.s.receiveState);
      t.s.end(); // an echo server: done reading, done writing
      seen.push(`${t.s.sendState} closed=${t.s.closed}`);
    });
    t.s.on('end', () => seen.push(`second listener closed=${t.s.closed}`));
    t.feed(fin(1));
    expect(seen).toEqual(['fin-received', 'fin-sent closed=false', 'second listener closed=false']);
    expect(t.events).toEqual(['end open/fin-received', 'close fin-sent/ended']); // its 'end' listener ran first
  });

  it('open -> reset and fin-received -> reset: a peer reset cuts the unfinished receive half', () => {
    const open = accepted();
    open.feed(reset(1));
    expect(open.states()).toEqual(['reset', 'reset']);

    const finReceived = accepted();
    finReceived.s.pause();
    finReceived.feed(data(1, Buffer.from('held')), fin(1), reset(1));
    expect(finReceived.states()).toEqual(['reset', 'reset']);
    expect(finReceived.s.heldBytes).toBe(0);
    expect(finReceived.events).toEqual(['reset reset/reset', 'close reset/reset']);
  });

  it('a reset from inside an "end" listener after our FIN still resets the peer (the stream was not yet closed)', () => {
    const t = accepted();
    t.s.end();
    t.s.on('end', () => t.s.reset('WICKET_ERR_TARGET_UNREACHABLE'));
    t.feed(fin(1));
    expect(t.states()).toEqual(['fin-sent', 'reset']);
    expect(t.frames().filter((f) => f.stream === 1).map((f) => f.type)).toEqual([FrameType.FIN, FrameType.RESET]);
    expect(t.events).toEqual(['end fin-sent/fin-received', 'close fin-sent/reset']);
  });

  it("ended is final: the stream closes when both halves finished cleanly, either order", () => {
    const weFirst = accepted();
    weFirst.s.end();
    weFirst.feed(fin(1));
    expect(weFirst.states()).toEqual(['fin-sent', 'ended']);
    expect(weFirst.events).toEqual(['end fin-sent/fin-received', 'close fin-sent/ended']);

    const peerFirst = accepted();
    peerFirst.feed(fin(1));
    expect(peerFirst.states()).toEqual(['open', 'ended']);
    peerFirst.s.end();
    expect(peerFirst.states()).toEqual(['fin-sent', 'ended']);
    expect(peerFirst.events).toEqual(['end open/fin-received', 'close fin-sent/ended']);
    // Closed is inert: nothing moves any more, nothing throws.
    peerFirst.s.reset();
    peerFirst.s.end();
    expect(peerFirst.states()).toEqual(['fin-sent', 'ended']);
    expect(peerFirst.session.streamCount).toBe(0);
  });

  it('a session close resets both unfinished halves', () => {
    const t = accepted();
    t.session.close();
    expect(t.states()).toEqual(['reset', 'reset']);
  });
});

describe('stream half-states: illegal moves', () => {
  it('the tables list exactly the documented moves; fin-sent, ended and reset are final', () => {
    expect(SEND_TRANSITIONS).toEqual({ open: ['ending', 'fin-sent', 'reset'], ending: ['fin-sent', 'reset'], 'fin-sent': [], reset: [] });
    expect(RECEIVE_TRANSITIONS).toEqual({ open: ['fin-received', 'reset'], 'fin-received': ['ended', 'reset'], ended: [], reset: [] });
  });

  it('every move the tables do not list throws WICKET_ERR_INTERNAL and leaves the state alone', () => {
    for (const table of [SEND_TRANSITIONS, RECEIVE_TRANSITIONS] as Record<string, readonly string[]>[]) {
      const states = Object.keys(table);
      let refused = 0;
      for (const from of states) {
        for (const to of states) {
          const half = new Lifecycle<string>('stream 1 half', table, from);
          if (table[from]!.includes(to)) {
            half.to(to);
            expect(half.state).toBe(to);
            continue;
          }
          expect(() => half.to(to)).toThrowError(expect.objectContaining({ code: 'WICKET_ERR_INTERNAL' }));
          expect(half.state).toBe(from);
          refused++;
        }
      }
      expect(refused).toBeGreaterThan(0);
    }
  });

  it('a peer breaking the protocol in any receive state closes the session with MUX_PROTOCOL, not INTERNAL', () => {
    // DATA or FIN after the peer's FIN: while fin-received (held bytes) and once ended.
    for (const paused of [true, false]) {
      for (const after of [data(1, Buffer.from('late')), fin(1)]) {
        const t = accepted();
        if (paused) t.s.pause();
        t.feed(data(1, Buffer.from('x')), fin(1));
        expect(t.s.receiveState).toBe(paused ? 'fin-received' : 'ended');
        t.feed(after);
        expect(t.closes.map((e) => e?.code)).toEqual(['WICKET_ERR_MUX_PROTOCOL']);
      }
    }
    // Called directly, the stream's own check speaks before the table would.
    const t = accepted();
    t.s.pause();
    t.s._receiveFin();
    expect(() => t.s._receiveFin()).toThrowError(expect.objectContaining({ code: 'WICKET_ERR_MUX_PROTOCOL' }));
    expect(() => t.s._receiveData(Buffer.from('x'), 10)).toThrowError(expect.objectContaining({ code: 'WICKET_ERR_MUX_PROTOCOL' }));
  });
});
