// The shape of the data path (DESIGN.md, performance principles): bulk writes become full-size
// frames sent as [header, payload views] with no copy, received data is emitted as views of the
// decrypted message, and control frames raised by one message leave together.

import { describe, expect, it } from 'vitest';
import { MUX_FRAME_HEADER_LEN, MUX_MAX_DATA_PAYLOAD, NOISE_MAX_PLAINTEXT } from '../../../protocol/limits.js';
import { FrameType, frameHeader } from '../../../protocol/mux/frames.js';
import { MuxSession } from '../../../protocol/mux/session.js';
import type { MuxStream } from '../../../protocol/mux/stream.js';
import { parseMessage } from './sim.js';

function capture(options: { congested?: () => boolean; initialWindow?: number; deferFlush?: (flush: () => void) => void } = {}) {
  const messages: Buffer[][] = [];
  const session = new MuxSession({
    role: 'initiator',
    now: () => 0,
    initialWindow: options.initialWindow,
    deferFlush: options.deferFlush,
    send: (parts) => {
      messages.push(parts);
      return !(options.congested?.() ?? false);
    },
  });
  return { session, messages };
}

const sameMemory = (view: Buffer, of: Buffer) =>
  view.buffer === of.buffer && view.byteOffset >= of.byteOffset && view.byteOffset + view.length <= of.byteOffset + of.length;

describe('mux data path', () => {
  it('a 64 KiB write leaves as one full-size frame [header, view] plus the 26-byte remainder', () => {
    const { session, messages } = capture();
    const stream = session.openStream();
    messages.length = 0;
    const chunk = Buffer.alloc(64 * 1024, 1);
    stream.write(chunk);
    expect(messages).toHaveLength(2);
    const [full, rest] = messages as [Buffer[], Buffer[]];
    expect(full).toHaveLength(2);
    expect(full[0]!.length).toBe(MUX_FRAME_HEADER_LEN);
    expect(full[1]!.length).toBe(MUX_MAX_DATA_PAYLOAD);
    expect(full[1]!.buffer).toBe(chunk.buffer);
    expect(full[1]!.byteOffset).toBe(chunk.byteOffset);
    expect(full[0]!.length + full[1]!.length).toBe(NOISE_MAX_PLAINTEXT);
    expect(rest[1]!.length).toBe(64 * 1024 - MUX_MAX_DATA_PAYLOAD);
    expect(sameMemory(rest[1]!, chunk)).toBe(true);
  });

  it("with a turn hook, short writes of several streams and a FIN leave as one message at the turn's end; a full frame at once", () => {
    const turnEnds: (() => void)[] = [];
    const { session, messages } = capture({ deferFlush: (run) => turnEnds.push(run) });
    const endTurn = () => {
      for (const run of turnEnds.splice(0)) run();
    };
    const streams = Array.from({ length: 3 }, () => session.openStream());
    endTurn();
    messages.length = 0;
    for (const [i, stream] of streams.entries()) stream.write(Buffer.alloc(1024, i));
    streams[0]!.end();
    expect(messages).toHaveLength(0);
    endTurn();
    expect(messages).toHaveLength(1);
    const frames = parseMessage(Buffer.concat(messages[0]!));
    expect(frames.filter((f) => f.type === FrameType.DATA).map((f) => f.stream)).toEqual(streams.map((s) => s.id));
    expect(frames.some((f) => f.type === FrameType.FIN && f.stream === streams[0]!.id)).toBe(true);

    messages.length = 0;
    streams[1]!.write(Buffer.alloc(64 * 1024, 9));
    // Before the turn ends: the full frame, and with it everything else ready (the 26-byte rest).
    expect(messages.map((parts) => parts[1]!.length)).toEqual([MUX_MAX_DATA_PAYLOAD, 64 * 1024 - MUX_MAX_DATA_PAYLOAD]);
    endTurn();
    expect(messages).toHaveLength(2);
  });

  it('bytes queued during congestion leave in full-size frames spanning writes, still without copies', () => {
    let congested = false;
    const { session, messages } = capture({ congested: () => congested });
    congested = true;
    const stream = session.openStream(); // OPEN goes out (control), and the transport says "full"
    messages.length = 0;
    const writes = Array.from({ length: 4 }, (_, i) => Buffer.alloc(64 * 1024, i));
    for (const w of writes) stream.write(w);
    expect(messages).toHaveLength(0);
    congested = false;
    session.transportDrained();
    const sizes = messages.map((parts) => parts.reduce((n, p) => n + p.length, 0));
    expect(sizes).toEqual([NOISE_MAX_PLAINTEXT, NOISE_MAX_PLAINTEXT, NOISE_MAX_PLAINTEXT, NOISE_MAX_PLAINTEXT, 4 * 64 * 1024 - 4 * MUX_MAX_DATA_PAYLOAD + MUX_FRAME_HEADER_LEN]);
    expect(messages[1]).toHaveLength(3); // header, tail of write 1, head of write 2
    for (const parts of messages) {
      for (const payload of parts.slice(1)) expect(writes.some((w) => sameMemory(payload, w))).toBe(true);
    }
  });

  it('emits received data as views of the decrypted message (no copy on receive)', () => {
    const session = new MuxSession({ role: 'responder', send: () => true });
    const chunks: Buffer[] = [];
    session.on('stream', (s: MuxStream) => s.on('data', (c: Buffer) => chunks.push(c)));
    const message = Buffer.concat([frameHeader(FrameType.OPEN, 1, 262_144), frameHeader(FrameType.DATA, 1, 5), Buffer.from('hello')]);
    session.receive(message);
    expect(chunks).toHaveLength(1);
    expect(chunks[0]!.toString()).toBe('hello');
    expect(sameMemory(chunks[0]!, message)).toBe(true);
  });

  it('window updates raised by one incoming message leave together in one message', () => {
    const sent: Buffer[] = [];
    const session = new MuxSession({ role: 'responder', initialWindow: 1000, send: (parts) => sent.push(Buffer.concat(parts)) > 0 });
    session.on('stream', (s: MuxStream) => s.on('data', () => undefined));
    const frames: Buffer[] = [];
    for (let id = 1; id <= 19; id += 2) frames.push(frameHeader(FrameType.OPEN, id, 1000));
    session.receive(Buffer.concat(frames));
    sent.length = 0;
    const data = [];
    for (let id = 1; id <= 19; id += 2) data.push(frameHeader(FrameType.DATA, id, 600), Buffer.alloc(600));
    session.receive(Buffer.concat(data));
    expect(sent).toHaveLength(1);
    const windows = parseMessage(sent[0]!).filter((f) => f.type === FrameType.WINDOW);
    expect(windows).toHaveLength(10);
  });
});

describe('mux scheduling', () => {
  it('streams with bytes and credit take turns, one frame each, so no stream hogs the channel', () => {
    let congested = true;
    const { session, messages } = capture({ congested: () => congested, initialWindow: 4 * 1024 * 1024 });
    const streams = [session.openStream(), session.openStream(), session.openStream()];
    // Grant each stream plenty of credit, as the peer would.
    session.receive(Buffer.concat(streams.map((s) => frameHeader(FrameType.WINDOW, s.id, 4 * 1024 * 1024))));
    messages.length = 0;
    for (const s of streams) s.write(Buffer.alloc(10 * MUX_MAX_DATA_PAYLOAD));
    congested = false;
    session.transportDrained();
    const order = messages.map((parts) => parseMessage(Buffer.concat(parts))[0]!.stream);
    expect(order).toHaveLength(30);
    expect(order.slice(0, 6)).toEqual([1, 3, 5, 1, 3, 5]);
    for (let i = 3; i < order.length; i++) expect(order[i]).toBe(order[i - 3]);
  });
});
