// A seeded, simulated-time link between two MuxSessions: every message is copied (as the secure
// channel's encryption would), delayed by a seeded random amount without reordering (the relay
// path is reliable and ordered), serialized at a link rate, and the sender is told the transport
// is congested when too many bytes wait to be serialized (or at random). Time is the injected
// clock of both sessions, so RTT and window auto-tuning are deterministic; nothing waits for
// real time.
//
// `legacy` makes one side behave on the wire like a build before session credit (issue 12): its
// first frame is never the hello, and a WINDOW on stream 0 reaching it is recorded in
// `legacyViolations` (that build's frames.ts refuses it with FRAME_MALFORMED and closes the
// session) and dropped. The side is still a current MuxSession whose hello the link strips both
// ways, so each side sees the other as an older peer: no announcement, no session credit enforced
// by the sender, credit the receiver keeps to itself. (The real older build would also answer the
// hello with PONG(0), which the current side ignores; attacks.test.ts checks that on its own.)

import { MuxSession, type MuxSessionOptions } from '../../../protocol/mux/session.js';
import { FrameType, SESSION_HELLO, frameHeader, readFrameHeader } from '../../../protocol/mux/frames.js';
import { MUX_FRAME_HEADER_LEN } from '../../../protocol/limits.js';
import { seededRandom as uniform } from '../../helpers/seeded.js';

export interface Rng {
  next(): number;
  /** Integer in [lo, hi]. */
  int(lo: number, hi: number): number;
  chance(p: number): boolean;
  bytes(n: number): Buffer;
}

/** mulberry32: small, fast, and the same sequence everywhere for a given seed. */
export function seededRandom(seed: number): Rng {
  const next = uniform(seed);
  return {
    next,
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    chance: (p) => next() < p,
    bytes: (n) => {
      const out = Buffer.allocUnsafe(n);
      for (let i = 0; i < n; i++) out[i] = Math.floor(next() * 256);
      return out;
    },
  };
}

export interface LinkOptions {
  /** One-way propagation delay, drawn per message in [min, max] ms. */
  delayMs: [number, number];
  /** Serialization rate; Infinity for none. */
  bytesPerMs: number;
  /** send() returns false while more than this many bytes wait to be serialized. */
  congestAboveBytes: number;
  /** Probability that a send() reports congestion anyway (drained after a random short delay). */
  randomCongestion: number;
}

const DEFAULT_LINK: LinkOptions = { delayMs: [0, 0], bytesPerMs: Infinity, congestAboveBytes: Infinity, randomCongestion: 0 };

interface InFlight {
  serializedAt: number;
  deliverAt: number;
  message: Buffer;
}

/** One direction of the simulated path. */
class Link {
  readonly #queue: InFlight[] = [];
  #head = 0;
  #linkFreeAt = 0;
  #lastDeliverAt = 0;
  #congested = false;
  #randomDrainAt: number | undefined;
  receiver: MuxSession | undefined;
  sender: MuxSession | undefined;
  /** Rewrites each message as sent (the legacy emulation); undefined drops it. */
  transform: ((message: Buffer) => Buffer | undefined) | undefined;

  constructor(
    private readonly clock: { now: number },
    private readonly options: LinkOptions,
    private readonly rng: Rng,
    private readonly onSend: (message: Buffer) => void,
  ) {}

  send(parts: Buffer[]): boolean {
    const sent = Buffer.concat(parts); // the secure channel's encryption copies too
    const message = this.transform === undefined ? sent : this.transform(sent);
    if (message === undefined) return !this.#congested;
    this.onSend(message);
    const now = this.clock.now;
    const serializedAt = Math.max(this.#linkFreeAt, now) + message.length / this.options.bytesPerMs;
    this.#linkFreeAt = serializedAt;
    const [lo, hi] = this.options.delayMs;
    const delay = lo + this.rng.next() * (hi - lo);
    const deliverAt = Math.max(this.#lastDeliverAt, serializedAt + delay);
    this.#lastDeliverAt = deliverAt;
    this.#queue.push({ serializedAt, deliverAt, message });
    if (this.options.congestAboveBytes !== Infinity && this.waitingBytes() > this.options.congestAboveBytes) this.#congested = true;
    if (!this.#congested && this.options.randomCongestion > 0 && this.rng.chance(this.options.randomCongestion)) {
      this.#congested = true;
      this.#randomDrainAt = now + this.rng.next() * 2;
    }
    return !this.#congested;
  }

  /** Bytes sent and not yet serialized onto the wire at the current time. */
  waitingBytes(): number {
    let bytes = 0;
    for (let i = this.#head; i < this.#queue.length; i++) {
      const m = this.#queue[i]!;
      if (m.serializedAt > this.clock.now) bytes += m.message.length;
    }
    return bytes;
  }

  get pending(): number {
    return this.#queue.length - this.#head;
  }

  /** Earliest time at which this link has something to do. */
  nextEventAt(): number {
    let at = Infinity;
    const first = this.#queue[this.#head];
    if (first !== undefined) at = first.deliverAt;
    if (this.#congested) {
      if (this.#randomDrainAt !== undefined) at = Math.min(at, this.#randomDrainAt);
      for (let i = this.#head; i < this.#queue.length; i++) {
        const m = this.#queue[i]!;
        if (m.serializedAt > this.clock.now) {
          at = Math.min(at, m.serializedAt);
          break;
        }
      }
    }
    return at;
  }

  /** Delivers what is due and tells the sender when congestion is over. */
  process(): void {
    const now = this.clock.now;
    while (this.#head < this.#queue.length && this.#queue[this.#head]!.deliverAt <= now) {
      const m = this.#queue[this.#head]!;
      this.#queue[this.#head] = undefined as unknown as InFlight;
      this.#head++;
      this.receiver!.receive(m.message);
    }
    if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue.splice(0, this.#head);
      this.#head = 0;
    }
    if (this.#randomDrainAt !== undefined && this.#randomDrainAt <= now) this.#randomDrainAt = undefined;
    if (this.#congested && this.#randomDrainAt === undefined && this.waitingBytes() <= this.options.congestAboveBytes / 2) {
      this.#congested = false;
      this.sender!.transportDrained();
    }
  }
}

export interface PairOptions {
  seed: number;
  link?: Partial<LinkOptions>;
  /** Options for both sessions, then per side. */
  both?: Partial<MuxSessionOptions>;
  a?: Partial<MuxSessionOptions>;
  b?: Partial<MuxSessionOptions>;
  /** Sees every message as sent (from 'a' means a -> b). */
  onSend?: (from: 'a' | 'b', message: Buffer) => void;
  /** This side speaks the mux as builds before session credit did (see the top of this file). */
  legacy?: 'a' | 'b';
}

/** Two sessions, a = initiator and b = responder, joined by two simulated links. */
export class MuxPair {
  readonly clock = { now: 0 };
  readonly rng: Rng;
  readonly a: MuxSession;
  readonly b: MuxSession;
  readonly #aToB: Link;
  readonly #bToA: Link;
  /** WINDOW(0) frames that reached the legacy side (each would have closed its session). */
  readonly legacyViolations: ParsedFrame[] = [];

  constructor(o: PairOptions) {
    this.rng = seededRandom(o.seed);
    const link = { ...DEFAULT_LINK, ...o.link };
    this.#aToB = new Link(this.clock, link, this.rng, (m) => o.onSend?.('a', m));
    this.#bToA = new Link(this.clock, link, this.rng, (m) => o.onSend?.('b', m));
    const now = (): number => this.clock.now;
    this.a = new MuxSession({ now, ...o.both, ...o.a, role: 'initiator', send: (parts) => this.#aToB.send(parts) });
    this.b = new MuxSession({ now, ...o.both, ...o.b, role: 'responder', send: (parts) => this.#bToA.send(parts) });
    this.#aToB.sender = this.a;
    this.#aToB.receiver = this.b;
    this.#bToA.sender = this.b;
    this.#bToA.receiver = this.a;
    if (o.legacy !== undefined) {
      const [toLegacy, fromLegacy] = o.legacy === 'a' ? [this.#bToA, this.#aToB] : [this.#aToB, this.#bToA];
      toLegacy.transform = legacyFilter((frame) => {
        if (frame.type !== FrameType.WINDOW || frame.stream !== 0) return true;
        this.legacyViolations.push(frame);
        return false;
      });
      fromLegacy.transform = legacyFilter(() => true);
    }
  }

  readonly #timers: { at: number; fn: () => void }[] = [];

  /** Runs `fn` when the simulated clock reaches `at` (a reader's pace, a caller's ping timer). */
  schedule(at: number, fn: () => void): void {
    this.#timers.push({ at, fn });
  }

  /** Messages sent and not yet delivered, both directions. */
  get pending(): number {
    return this.#aToB.pending + this.#bToA.pending;
  }

  /**
   * Advances the clock to the next event and processes everything due, the two directions in a
   * seeded random order. Returns false when nothing is scheduled.
   */
  step(): boolean {
    let at = Math.min(this.#aToB.nextEventAt(), this.#bToA.nextEventAt());
    for (const timer of this.#timers) at = Math.min(at, timer.at);
    if (at === Infinity) return false;
    this.clock.now = Math.max(this.clock.now, at);
    const due = this.#timers.filter((t) => t.at <= this.clock.now);
    if (due.length > 0) {
      this.#timers.splice(0, this.#timers.length, ...this.#timers.filter((t) => t.at > this.clock.now));
      for (const timer of due) timer.fn();
    }
    const [first, second] = this.rng.chance(0.5) ? [this.#aToB, this.#bToA] : [this.#bToA, this.#aToB];
    first.process();
    second.process();
    return true;
  }

  /** Steps until `done()` or nothing is scheduled; fails after `maxSteps` (never hangs). */
  runUntil(done: () => boolean, maxSteps = 100_000): void {
    for (let i = 0; i < maxSteps; i++) {
      if (done()) return;
      if (!this.step()) {
        if (done()) return;
        throw new Error(`simulation idle at t=${this.clock.now} ms before the condition held`);
      }
    }
    throw new Error(`simulation did not finish within ${maxSteps} steps`);
  }

  /** Steps until both links are empty (bounded). */
  settle(maxSteps = 100_000): void {
    this.runUntil(() => this.pending === 0, maxSteps);
  }
}

export interface ParsedFrame {
  type: FrameType;
  stream: number;
  value: number;
  payload?: Buffer;
}

/** Serializes frames back into one message. */
export function buildMessage(frames: ParsedFrame[]): Buffer {
  return Buffer.concat(frames.flatMap((f) => [frameHeader(f.type, f.stream, f.value), ...(f.payload === undefined ? [] : [f.payload])]));
}

/**
 * One direction of a link with a legacy side: strips the hello that opens the first message, and
 * keeps only the frames `keep` accepts; a message left empty is not sent.
 */
function legacyFilter(keep: (frame: ParsedFrame) => boolean): (message: Buffer) => Buffer | undefined {
  let first = true;
  return (message) => {
    let frames = parseMessage(message);
    const head = frames[0];
    if (first && head?.type === FrameType.PING && head.value === SESSION_HELLO) frames = frames.slice(1);
    first = false;
    frames = frames.filter(keep);
    return frames.length === 0 ? undefined : buildMessage(frames);
  };
}

/** Parses one (valid) message into frames: for instrumentation and assertions. */
export function parseMessage(message: Buffer): ParsedFrame[] {
  const frames: ParsedFrame[] = [];
  let offset = 0;
  while (offset < message.length) {
    const h = readFrameHeader(message, offset);
    offset += MUX_FRAME_HEADER_LEN;
    if (h.type === FrameType.DATA) {
      frames.push({ ...h, payload: message.subarray(offset, offset + h.value) });
      offset += h.value;
    } else {
      frames.push({ ...h });
    }
  }
  return frames;
}
