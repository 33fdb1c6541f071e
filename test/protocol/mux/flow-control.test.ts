// Flow control over a simulated path (injected clock, no real time): slow readers stay isolated
// and bounded, windows grow toward the bandwidth-delay product and never past their caps.

import { describe, expect, it } from 'vitest';
import { STREAM_INITIAL_WINDOW, STREAM_MAX_WINDOW } from '../../../protocol/limits.js';
import type { MuxStream } from '../../../protocol/mux/stream.js';
import { MuxPair, type LinkOptions, type PairOptions } from './sim.js';

const CHUNK = Buffer.alloc(64 * 1024, 0x5a);

/** Keeps `stream` written with CHUNK until `total` bytes, respecting write()'s backpressure. */
function pump(stream: MuxStream, total: number): { written: () => number } {
  let written = 0;
  const fill = (): void => {
    while (written < total) {
      const n = Math.min(CHUNK.length, total - written);
      written += n;
      if (!stream.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n))) return;
    }
    stream.end();
  };
  stream.on('drain', fill);
  fill();
  return { written: () => written };
}

interface Reader {
  received: number;
  ended: boolean;
  /** [time, bytes received so far] after each chunk */
  samples: [number, number][];
}

/** Counts what arrives; with `bytesPerMs`, reads no faster than that (pause, resume later). */
function read(pair: MuxPair, stream: MuxStream, bytesPerMs = Infinity): Reader {
  const reader: Reader = { received: 0, ended: false, samples: [] };
  stream.on('data', (chunk: Buffer) => {
    reader.received += chunk.length;
    reader.samples.push([pair.clock.now, reader.received]);
    if (bytesPerMs !== Infinity) {
      stream.pause();
      pair.schedule(pair.clock.now + chunk.length / bytesPerMs, () => stream.resume());
    }
  });
  stream.on('end', () => {
    reader.ended = true;
  });
  return reader;
}

/** Bytes the reader got per ms over the second half of its run. */
function lateThroughput(reader: Reader): number {
  const last = reader.samples[reader.samples.length - 1]!;
  const half = reader.samples.find(([t]) => t >= last[0] / 2)!;
  return (last[1] - half[1]) / (last[0] - half[0]);
}

// 100 MB/s with 20 ms each way: BDP = 100,000 B/ms x 40 ms = 4,000,000 bytes.
const FAST_PATH: Partial<LinkOptions> = { delayMs: [20, 20], bytesPerMs: 100_000, congestAboveBytes: 1024 * 1024 };
const BDP = 100_000 * 40;

function oneStream(o: Omit<PairOptions, 'seed'>, total: number, readerRate = Infinity) {
  const pair = new MuxPair({ seed: 7, ...o });
  let accepted: MuxStream | undefined;
  let reader: Reader | undefined;
  const windows: number[] = [];
  pair.b.on('stream', (s: MuxStream) => {
    accepted = s;
    reader = read(pair, s, readerRate);
    s.on('data', () => windows.push(s.receiveWindow));
  });
  const sender = pair.a.openStream();
  pump(sender, total);
  pair.runUntil(() => reader?.ended === true, 200_000);
  return { pair, accepted: accepted!, reader: reader!, windows };
}

describe('window auto-tuning', () => {
  it('grows the window toward the bandwidth-delay product of a 40 ms path and fills the link', () => {
    const { accepted, reader, windows, pair } = oneStream({ link: FAST_PATH }, 96 * 1024 * 1024);
    expect(accepted.receiveWindow).toBeGreaterThanOrEqual(BDP);
    expect(accepted.receiveWindow).toBeLessThanOrEqual(STREAM_MAX_WINDOW);
    // Growth is by doubling from the initial window, and never shrinks.
    for (let i = 1; i < windows.length; i++) expect(windows[i]).toBeGreaterThanOrEqual(windows[i - 1]!);
    expect(Number.isInteger(Math.log2(accepted.receiveWindow / STREAM_INITIAL_WINDOW))).toBe(true);
    // The RTT the sessions measured with ping/pong is the path's (plus some queueing).
    expect(pair.a.rttMs).toBeGreaterThanOrEqual(40);
    expect(pair.a.rttMs).toBeLessThan(60);
    expect(lateThroughput(reader)).toBeGreaterThan(0.8 * 100_000);
  });

  it('without auto-tuning the same path stalls at window / RTT (why the window must grow)', () => {
    const { reader, accepted } = oneStream(
      { link: FAST_PATH, both: { maxWindow: STREAM_INITIAL_WINDOW } },
      16 * 1024 * 1024,
    );
    expect(accepted.receiveWindow).toBe(STREAM_INITIAL_WINDOW);
    expect(lateThroughput(reader)).toBeLessThan(0.2 * 100_000);
  });

  it('never grows a window past maxWindow', () => {
    const cap = 1024 * 1024;
    const { accepted, windows } = oneStream({ link: FAST_PATH, both: { maxWindow: cap } }, 32 * 1024 * 1024);
    expect(Math.max(...windows)).toBe(cap);
    expect(accepted.receiveWindow).toBe(cap);
  });

  it('never grows the window of a reader slower than the link', () => {
    // 2,000 B/ms x 40 ms x 2 = 160 KB < the 256 KiB initial window: no growth is warranted.
    const { accepted, reader } = oneStream({ link: FAST_PATH }, 4 * 1024 * 1024, 2_000);
    expect(reader.ended).toBe(true);
    expect(accepted.receiveWindow).toBe(STREAM_INITIAL_WINDOW);
  });

  it('keeps total growth across streams within the session window budget', () => {
    const budget = 1024 * 1024;
    const pair = new MuxPair({ seed: 8, link: FAST_PATH, both: { windowBudget: budget } });
    const accepted: MuxStream[] = [];
    const readers: Reader[] = [];
    pair.b.on('stream', (s: MuxStream) => {
      accepted.push(s);
      readers.push(read(pair, s));
    });
    for (let i = 0; i < 3; i++) pump(pair.a.openStream(), 24 * 1024 * 1024);
    let maxGrowth = 0;
    pair.runUntil(() => {
      const growth = accepted.reduce((sum, s) => sum + s.receiveWindow - STREAM_INITIAL_WINDOW, 0);
      maxGrowth = Math.max(maxGrowth, growth);
      return readers.length === 3 && readers.every((r) => r.ended);
    }, 400_000);
    expect(maxGrowth).toBeGreaterThan(0);
    expect(maxGrowth).toBeLessThanOrEqual(budget);
  });
});

describe('slow streams', () => {
  it('a paused reader on one stream does not stall the others, and holds at most its window', () => {
    const pair = new MuxPair({ seed: 9, link: { delayMs: [1, 5], bytesPerMs: 50_000, congestAboveBytes: 256 * 1024 } });
    const accepted: MuxStream[] = [];
    const readers: Reader[] = [];
    pair.b.on('stream', (s: MuxStream) => {
      if (accepted.length === 0) s.pause(); // the first stream's reader never reads
      accepted.push(s);
      readers.push(read(pair, s));
    });
    const senders = Array.from({ length: 4 }, () => pair.a.openStream());
    for (const s of senders) pump(s, 8 * 1024 * 1024);
    let maxHeld = 0;
    let maxQueued = 0;
    pair.runUntil(() => {
      const slow = accepted[0];
      if (slow !== undefined) {
        maxHeld = Math.max(maxHeld, slow.heldBytes);
        expect(slow.heldBytes).toBeLessThanOrEqual(slow.receiveWindow);
      }
      maxQueued = Math.max(maxQueued, senders[0]!.queuedBytes);
      return readers.length === 4 && readers.slice(1).every((r) => r.ended);
    }, 200_000);
    const slow = accepted[0]!;
    // The others finished; the slow one holds exactly the credit it was given, and no more.
    expect(readers[0]!.received).toBe(0);
    expect(slow.receiveWindow).toBe(STREAM_INITIAL_WINDOW);
    expect(maxHeld).toBe(STREAM_INITIAL_WINDOW);
    expect(senders[0]!.bytesSent).toBe(STREAM_INITIAL_WINDOW);
    // The writer was held back by write()'s return value: its queue stays near the high-water mark.
    expect(maxQueued).toBeLessThanOrEqual(256 * 1024 + CHUNK.length);
    // Resuming lets it finish.
    slow.resume();
    pair.runUntil(() => readers[0]!.ended, 200_000);
    expect(readers[0]!.received).toBe(8 * 1024 * 1024);
  });

  it('a reader that pauses inside its data handler returns no credit until it resumes', () => {
    const pair = new MuxPair({ seed: 10, both: { initialWindow: 64 * 1024 } });
    let accepted: MuxStream | undefined;
    let received = 0;
    pair.b.on('stream', (s: MuxStream) => {
      accepted = s;
      s.on('data', (chunk: Buffer) => {
        received += chunk.length;
        s.pause(); // like a socket whose write() returned false
      });
    });
    const sender = pair.a.openStream();
    pump(sender, 1024 * 1024);
    pair.settle();
    // One window's worth crossed (part of it emitted, the rest held), and no credit came back.
    expect(sender.bytesSent).toBe(64 * 1024);
    expect(received + accepted!.heldBytes).toBe(64 * 1024);
    for (let i = 0; i < 1000 && received < 1024 * 1024; i++) {
      accepted!.resume();
      pair.settle();
    }
    expect(received).toBe(1024 * 1024);
  });
});

describe('round-trip time', () => {
  it('ping() measures the path RTT on the injected clock', () => {
    const pair = new MuxPair({ seed: 11, link: { delayMs: [15, 15] } });
    expect(pair.a.rttMs).toBeUndefined();
    pair.a.ping();
    pair.settle();
    expect(pair.a.rttMs).toBe(30);
    expect(pair.b.rttMs).toBeUndefined();
  });
});
