// Mux frame codec (protocol/README.md, "Stream multiplexing"). One plaintext Noise message carries
// one or more frames back to back. Every frame starts with the same 9-byte header:
//
//   type:u8 ‖ stream:u32 ‖ value:u32
//
// `value` is the payload length for DATA and a type-specific number for every other frame, so
// only DATA has a body. Lengths and values are checked here, as soon as the header is read and
// before anything is sliced; checks that need session state (which ids exist, windows) live in
// session.ts.

import { wicketError } from '../errors.js';
import { MUX_FRAME_HEADER_LEN, MUX_MAX_DATA_PAYLOAD, NOISE_MAX_PLAINTEXT } from '../limits.js';

/** Frame types. The numbers are the wire bytes; the session's dispatch table is indexed by them. */
export const FrameType = {
  /** stream data; value = payload length (1..MUX_MAX_DATA_PAYLOAD), payload follows */
  DATA: 0,
  /** grant credit; value = increment in bytes (>= 1). Stream 0 is the session's credit
   * (session-window.ts): its first WINDOW(0) announces the whole window, later ones add to it */
  WINDOW: 1,
  /** open a stream; value = the opener's initial receive window, which is also the initial
   * window in the other direction (the acceptor takes that much before it can answer, charging
   * what exceeds its own initial window to its session budget, or refuses the stream with
   * RESET(MUX_WINDOW_BUDGET)) */
  OPEN: 2,
  /** half-close: the sender will send no more data on this stream; value = 0 */
  FIN: 3,
  /** abort both directions; value = a WICKET error number (u16) */
  RESET: 4,
  /** stream 0; value = opaque id, echoed by PONG (id 0 is SESSION_HELLO) */
  PING: 5,
  /** stream 0; value = the id of the PING it answers */
  PONG: 6,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

/**
 * PING id 0, as the first frame a session sends: "I speak session credit; announce yours". No
 * build ever used id 0 for a real ping (ids count from 1 and wrap to 1), and a build that predates
 * session credit answers it with PONG(0), which nobody awaits, so the hello is safe to send to
 * any peer, whereas a WINDOW on stream 0 would close an older peer's session (FRAME_MALFORMED).
 */
export const SESSION_HELLO = 0;

/** One past the largest known type: the range check before dispatch. */
export const FRAME_TYPE_COUNT = 7;

export const FRAME_NAMES: readonly string[] = ['DATA', 'WINDOW', 'OPEN', 'FIN', 'RESET', 'PING', 'PONG'];

export interface FrameHeader {
  type: FrameType;
  stream: number;
  value: number;
}

/** Writes a header into `into` at `offset` (no allocation: callers pack several into one buffer). */
export function writeFrameHeader(into: Buffer, offset: number, type: FrameType, stream: number, value: number): void {
  into[offset] = type;
  into.writeUInt32BE(stream >>> 0, offset + 1);
  into.writeUInt32BE(value >>> 0, offset + 5);
}

/** A fresh 9-byte header (the data path sends it as the first part of [header, payload...]). */
export function frameHeader(type: FrameType, stream: number, value: number): Buffer {
  const header = Buffer.allocUnsafe(MUX_FRAME_HEADER_LEN);
  writeFrameHeader(header, 0, type, stream, value);
  return header;
}

/**
 * Reads and statically validates the header at `offset` of one plaintext message. Throws a
 * WicketError (FRAME_TRUNCATED / FRAME_UNKNOWN_TYPE / FRAME_TOO_LARGE / FRAME_MALFORMED); the
 * session turns it into a session close, never lets it escape receive().
 */
export function readFrameHeader(message: Buffer, offset: number): FrameHeader {
  const left = message.length - offset;
  if (left < MUX_FRAME_HEADER_LEN) {
    throw wicketError('WICKET_ERR_FRAME_TRUNCATED', `mux frame header needs ${MUX_FRAME_HEADER_LEN} bytes, ${left} left`);
  }
  const type = message[offset]!;
  // Range check first: the dispatch table is only ever indexed with a known type.
  if (type >= FRAME_TYPE_COUNT) {
    throw wicketError('WICKET_ERR_FRAME_UNKNOWN_TYPE', `mux frame type ${type}`);
  }
  const stream = message.readUInt32BE(offset + 1);
  const value = message.readUInt32BE(offset + 5);
  switch (type) {
    case FrameType.DATA:
      if (value === 0) throw wicketError('WICKET_ERR_FRAME_MALFORMED', 'mux DATA frame with an empty payload');
      if (value > MUX_MAX_DATA_PAYLOAD) {
        throw wicketError('WICKET_ERR_FRAME_TOO_LARGE', `mux DATA payload ${value} bytes, cap ${MUX_MAX_DATA_PAYLOAD}`);
      }
      if (value > left - MUX_FRAME_HEADER_LEN) {
        throw wicketError('WICKET_ERR_FRAME_TRUNCATED', `mux DATA payload ${value} bytes, ${left - MUX_FRAME_HEADER_LEN} left`);
      }
      break;
    case FrameType.WINDOW:
      if (value === 0) throw wicketError('WICKET_ERR_FRAME_MALFORMED', 'mux WINDOW frame with a zero increment');
      break;
    case FrameType.FIN:
      if (value !== 0) throw wicketError('WICKET_ERR_FRAME_MALFORMED', `mux FIN frame with value ${value}`);
      break;
    case FrameType.RESET:
      if (value > 0xffff) throw wicketError('WICKET_ERR_FRAME_MALFORMED', `mux RESET error number ${value} is not a u16`);
      break;
    default:
      break;
  }
  // PING and PONG belong to the session (stream 0), DATA, OPEN, FIN and RESET to a stream; WINDOW
  // to either (stream 0: session credit).
  if (type !== FrameType.WINDOW) {
    const sessionFrame = type === FrameType.PING || type === FrameType.PONG;
    if (sessionFrame !== (stream === 0)) {
      throw wicketError('WICKET_ERR_FRAME_MALFORMED', `mux ${FRAME_NAMES[type]} frame on stream ${stream}`);
    }
  }
  return { type: type as FrameType, stream, value };
}

/** Checks a whole plaintext message's size before any frame is read. */
export function checkMessageSize(message: Buffer): void {
  if (message.length > NOISE_MAX_PLAINTEXT) {
    throw wicketError('WICKET_ERR_FRAME_TOO_LARGE', `mux message ${message.length} bytes, cap ${NOISE_MAX_PLAINTEXT}`);
  }
}
