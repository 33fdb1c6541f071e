// Stream lifecycle between two real sessions over the simulated link: open, half-close, reset,
// session close, and the exact API the agents code against.

import { describe, expect, it } from 'vitest';
import { WicketError } from '../../../protocol/errors.js';
import { STREAM_INITIAL_WINDOW } from '../../../protocol/limits.js';
import { FrameType, SESSION_HELLO } from '../../../protocol/mux/frames.js';
import { MuxSession } from '../../../protocol/mux/session.js';
import type { MuxStream } from '../../../protocol/mux/stream.js';
import { MuxPair, parseMessage, type ParsedFrame } from './sim.js';

function collect(stream: MuxStream) {
  const log = { data: [] as Buffer[], events: [] as string[], resetErr: undefined as WicketError | undefined };
  stream.on('data', (c: Buffer) => log.data.push(c));
  for (const name of ['end', 'close', 'drain']) stream.on(name, () => log.events.push(name));
  stream.on('reset', (err: WicketError) => {
    log.resetErr = err;
    log.events.push('reset');
  });
  return log;
}

function pairWithAccepted(seed = 1) {
  const sent: { from: 'a' | 'b'; frames: ParsedFrame[] }[] = [];
  const pair = new MuxPair({ seed, link: { delayMs: [0, 3] }, onSend: (from, m) => sent.push({ from, frames: parseMessage(m) }) });
  const accepted: MuxStream[] = [];
  pair.b.on('stream', (s: MuxStream) => accepted.push(s));
  return { pair, accepted, sent };
}

describe('stream lifecycle', () => {
  it('initiator streams are odd, responder streams even, and peers see them as "stream" events', () => {
    const { pair, accepted } = pairWithAccepted();
    const fromA = [pair.a.openStream(), pair.a.openStream()];
    const fromB: MuxStream[] = [];
    pair.a.on('stream', (s: MuxStream) => fromB.push(s));
    const opened = [pair.b.openStream(), pair.b.openStream()];
    pair.settle();
    expect(fromA.map((s) => s.id)).toEqual([1, 3]);
    expect(opened.map((s) => s.id)).toEqual([2, 4]);
    expect(accepted.map((s) => s.id)).toEqual([1, 3]);
    expect(fromB.map((s) => s.id)).toEqual([2, 4]);
    expect(pair.a.streamCount).toBe(4);
    expect(pair.b.streamCount).toBe(4);
  });

  it('OPEN names no destination: it is one 9-byte header carrying only the window (security property 7)', () => {
    const { pair, sent } = pairWithAccepted();
    pair.a.openStream();
    // One message: the session's hello (its first frame ever), the OPEN, and the first PING that
    // starts measuring the RTT.
    expect(sent).toHaveLength(1);
    expect(sent[0]!.frames).toEqual([
      { type: FrameType.PING, stream: 0, value: SESSION_HELLO },
      { type: FrameType.OPEN, stream: 1, value: STREAM_INITIAL_WINDOW },
      { type: FrameType.PING, stream: 0, value: 1 },
    ]);
  });

  it('half-close: after one side sends FIN the other keeps sending, then both close', () => {
    const { pair, accepted } = pairWithAccepted();
    const client = pair.a.openStream();
    const clientLog = collect(client);
    client.write(Buffer.from('GET / HTTP/1.1\r\n\r\n'));
    client.end();
    pair.settle();
    const server = accepted[0]!;
    const serverLog = collect(server);
    // The request arrived before our listener: data is emitted as it arrives. Check 'end' came.
    expect(server.bytesReceived).toBe(18);
    pair.settle();
    expect(client.write(Buffer.from('more'))).toBe(false); // writes after end() are refused, not thrown
    server.write(Buffer.from('HTTP/1.1 200 OK\r\n\r\n'));
    server.write(Buffer.from('body'));
    pair.settle();
    expect(Buffer.concat(clientLog.data).toString()).toBe('HTTP/1.1 200 OK\r\n\r\nbody');
    expect(clientLog.events).toEqual([]);
    server.end();
    pair.settle();
    expect(clientLog.events).toEqual(['end', 'close']);
    expect(serverLog.events).toEqual(['close']);
    expect(pair.a.streamCount).toBe(0);
    expect(pair.b.streamCount).toBe(0);
  });

  it('FIN waits for queued data: end() while credit is exhausted sends FIN only after the last byte', () => {
    const pair = new MuxPair({ seed: 2, both: { initialWindow: 1000 } });
    const chunks: Buffer[] = [];
    let ended = false;
    pair.b.on('stream', (s: MuxStream) => {
      s.on('data', (c: Buffer) => chunks.push(c));
      s.on('end', () => (ended = true));
    });
    const s = pair.a.openStream();
    const body = Buffer.alloc(10_000, 7);
    s.write(body);
    s.end();
    expect(s.queuedBytes).toBe(9_000);
    pair.settle();
    expect(ended).toBe(true);
    expect(Buffer.concat(chunks).equals(body)).toBe(true);
  });

  it('reset propagates with its code; the other streams carry on', () => {
    const { pair, accepted } = pairWithAccepted();
    const doomed = pair.a.openStream();
    const healthy = pair.a.openStream();
    pair.settle();
    const [farDoomed, farHealthy] = accepted as [MuxStream, MuxStream];
    const doomedLog = collect(doomed);
    const farDoomedLog = collect(farDoomed);
    const farHealthyLog = collect(farHealthy);
    farDoomed.write(Buffer.alloc(5000)); // in flight when the reset crosses it
    doomed.reset('WICKET_ERR_TARGET_UNREACHABLE');
    healthy.write(Buffer.from('still here'));
    pair.settle();
    expect(doomedLog.events).toEqual(['close']); // a local reset reports only 'close'
    expect(farDoomedLog.events).toEqual(['reset', 'close']);
    expect(farDoomedLog.resetErr).toBeInstanceOf(WicketError);
    expect(farDoomedLog.resetErr!.code).toBe('WICKET_ERR_TARGET_UNREACHABLE');
    expect(Buffer.concat(farHealthyLog.data).toString()).toBe('still here');
    expect(pair.a.closed || pair.b.closed).toBe(false);
    expect(pair.a.streamCount).toBe(1);
    expect(pair.b.streamCount).toBe(1);
    // The reset stream is inert: writes are dropped, never thrown.
    expect(doomed.write(Buffer.from('x'))).toBe(false);
    expect(() => doomed.end()).not.toThrow();
    expect(() => doomed.reset()).not.toThrow();
  });

  it('both sides resetting the same stream at once is a tolerated race', () => {
    const { pair, accepted } = pairWithAccepted();
    const s = pair.a.openStream();
    pair.settle();
    s.reset();
    accepted[0]!.reset('WICKET_ERR_TARGET_UNREACHABLE');
    pair.settle();
    expect(pair.a.closed).toBe(false);
    expect(pair.b.closed).toBe(false);
    expect(pair.a.streamCount + pair.b.streamCount).toBe(0);
  });

  it('an unknown error number in a reset becomes STREAM_RESET', () => {
    const { pair } = pairWithAccepted();
    const s = pair.a.openStream();
    const log = collect(s);
    pair.settle();
    // A hand-built RESET for stream 1 carrying error number 0xfedc, which this version does not know.
    pair.a.receive(Buffer.from([FrameType.RESET, 0, 0, 0, 1, 0, 0, 0xfe, 0xdc]));
    expect(log.resetErr!.code).toBe('WICKET_ERR_STREAM_RESET');
    expect(log.resetErr!.message).toContain(String(0xfedc));
  });

  it('close() resets every stream with the given error, emits "close", and refuses new streams', () => {
    const { pair, accepted } = pairWithAccepted();
    const streams = [pair.a.openStream(), pair.a.openStream()];
    const logs = streams.map(collect);
    pair.settle();
    const closes: unknown[] = [];
    pair.a.on('close', (err) => closes.push(err));
    const why = new WicketError('WICKET_ERR_REVOKED', 'peer revoked');
    pair.a.close(why);
    expect(pair.a.closed).toBe(true);
    expect(pair.a.streamCount).toBe(0);
    expect(closes).toEqual([why]);
    for (const log of logs) {
      expect(log.events).toEqual(['reset', 'close']);
      expect(log.resetErr).toBe(why);
    }
    expect(() => pair.a.openStream()).toThrowError(/WICKET_ERR_CHANNEL_CLOSED/);
    expect(streams[0]!.write(Buffer.from('x'))).toBe(false);
    pair.a.close(); // idempotent
    expect(closes).toHaveLength(1);
    // Without an error the streams get CHANNEL_CLOSED.
    const b = collect(accepted[0]!);
    pair.b.close();
    expect(b.resetErr!.code).toBe('WICKET_ERR_CHANNEL_CLOSED');
  });

  it('a send callback that throws closes the session instead of throwing into the writer', () => {
    const session = new MuxSession({
      role: 'initiator',
      send: () => {
        throw new WicketError('WICKET_ERR_CHANNEL_CLOSED', 'channel gone');
      },
    });
    const closes: WicketError[] = [];
    session.on('close', (err: WicketError) => closes.push(err));
    expect(() => session.openStream()).not.toThrow();
    expect(closes.map((e) => e.code)).toEqual(['WICKET_ERR_CHANNEL_CLOSED']);
  });

  it('write() reports the high-water mark and "drain" follows once the queue is sent', () => {
    const pair = new MuxPair({ seed: 3, both: { initialWindow: 1000, writeHighWater: 4000 } });
    pair.b.on('stream', (s: MuxStream) => s.on('data', () => undefined));
    const s = pair.a.openStream();
    const log = collect(s);
    expect(s.write(Buffer.alloc(2000))).toBe(true); // 1000 sent, 1000 queued
    expect(s.write(Buffer.alloc(3000))).toBe(false); // 4000 queued
    pair.settle();
    expect(log.events).toEqual(['drain']);
    expect(s.bytesSent).toBe(5000);
  });

  it('rejects nonsensical options with WICKET_ERR_ARGUMENT', () => {
    const send = () => true;
    expect(() => new MuxSession({ role: 'initiator', send, initialWindow: 0 })).toThrowError(/WICKET_ERR_ARGUMENT/);
    expect(() => new MuxSession({ role: 'initiator', send, initialWindow: 2048, maxWindow: 1024 })).toThrowError(/WICKET_ERR_ARGUMENT/);
    expect(() => new MuxSession({ role: 'initiator', send, maxStreams: 0 })).toThrowError(/WICKET_ERR_ARGUMENT/);
  });

  it('an acceptor with a larger initial window raises it at once with a WINDOW frame', () => {
    const sent: { from: string; frames: ParsedFrame[] }[] = [];
    const pair = new MuxPair({ seed: 4, a: { initialWindow: 4096 }, b: { initialWindow: 65_536 }, onSend: (from, m) => sent.push({ from, frames: parseMessage(m) }) });
    let accepted: MuxStream | undefined;
    pair.b.on('stream', (s: MuxStream) => (accepted = s));
    const s = pair.a.openStream();
    pair.settle();
    expect(accepted!.receiveWindow).toBe(65_536);
    expect(s.receiveWindow).toBe(4096);
    const fromB = sent.filter((m) => m.from === 'b').flatMap((m) => m.frames);
    expect(fromB).toContainEqual({ type: FrameType.WINDOW, stream: 1, value: 65_536 - 4096 });
    expect(s.sendCredit).toBe(65_536);
  });
});
