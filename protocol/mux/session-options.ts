// A mux session's options, their documented defaults (protocol/limits.ts) and their checks: a
// nonsensical value is refused with WICKET_ERR_ARGUMENT when the session is made, never later.

import { wicketError } from '../errors.js';
import {
  MAX_STREAMS_PER_CHANNEL,
  MUX_SESSION_RECEIVE_WINDOW,
  MUX_SESSION_WINDOW_BUDGET,
  STREAM_INITIAL_WINDOW,
  STREAM_MAX_WINDOW,
  STREAM_WRITE_HIGH_WATER,
} from '../limits.js';

export interface MuxSessionOptions {
  role: 'initiator' | 'responder';
  /**
   * Hands one plaintext Noise message, as parts (e.g. [header, payload]), to the secure channel.
   * The parts are views of the writers' buffers: encrypt or copy them before returning, or keep
   * them untouched. Returns false when the transport is congested: data stops until
   * transportDrained(); control frames still go out.
   */
  send: (parts: Buffer[]) => boolean;
  now?: () => number;
  /** Concurrent streams (MAX_STREAMS_PER_CHANNEL: a budget for stream state over a stream's cost). */
  maxStreams?: number;
  /** Our receive window for new streams (advertised in OPEN, or raised to on accept). */
  initialWindow?: number;
  /** Cap on any one stream's receive window after auto-tuning. */
  maxWindow?: number;
  /**
   * Cap on the sum of receive window above initialWindow across streams (auto-tuning growth and
   * peers' larger OPEN windows; see MUX_SESSION_WINDOW_BUDGET).
   */
  windowBudget?: number;
  /** Our session receive window: DATA bytes of all streams held or in flight (MUX_SESSION_RECEIVE_WINDOW). */
  sessionWindow?: number;
  /** Per-stream write() high-water mark. */
  writeHighWater?: number;
  /**
   * Schedules the end of the event-loop turn (an agent passes setImmediate): short data writes
   * wait for it and leave together with the turn's other writes; a full frame or control frames
   * go at once when first in their turn (flush-timing.ts). Without it every write flushes at once.
   */
  deferFlush?: (flush: () => void) => void;
}

export interface SessionSettings {
  initiator: boolean;
  now: () => number;
  maxStreams: number;
  initialWindow: number;
  maxWindow: number;
  windowBudget: number;
  sessionWindow: number;
  writeHighWater: number;
  deferFlush: ((flush: () => void) => void) | undefined;
}

/** A WINDOW or OPEN value is a u32, and so are stream ids. */
const U32_MAX = 0xffff_ffff;

/** Fills in the defaults and checks every value; throws WICKET_ERR_ARGUMENT. */
export function sessionSettings(o: MuxSessionOptions): SessionSettings {
  const maxWindow = o.maxWindow ?? STREAM_MAX_WINDOW;
  const settings: SessionSettings = {
    initiator: o.role === 'initiator',
    now: o.now ?? Date.now,
    maxStreams: o.maxStreams ?? MAX_STREAMS_PER_CHANNEL,
    maxWindow,
    initialWindow: o.initialWindow ?? Math.min(STREAM_INITIAL_WINDOW, maxWindow),
    windowBudget: o.windowBudget ?? MUX_SESSION_WINDOW_BUDGET,
    sessionWindow: o.sessionWindow ?? MUX_SESSION_RECEIVE_WINDOW,
    writeHighWater: o.writeHighWater ?? STREAM_WRITE_HIGH_WATER,
    deferFlush: o.deferFlush,
  };
  checkPositiveInteger('maxStreams', settings.maxStreams, U32_MAX);
  checkPositiveInteger('maxWindow', settings.maxWindow, U32_MAX);
  checkPositiveInteger('initialWindow', settings.initialWindow, settings.maxWindow);
  checkPositiveInteger('sessionWindow', settings.sessionWindow, U32_MAX);
  checkPositiveInteger('writeHighWater', settings.writeHighWater, Number.MAX_SAFE_INTEGER);
  return settings;
}

function checkPositiveInteger(name: string, value: number, max: number): void {
  if (!Number.isSafeInteger(value) || value < 1 || value > max) {
    throw wicketError('WICKET_ERR_ARGUMENT', `mux option ${name} must be an integer in 1..${max}, got ${value}`);
  }
}
