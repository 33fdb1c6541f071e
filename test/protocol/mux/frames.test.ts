// The mux frame codec: every frame type round-trips, and every statically invalid header is
// refused with its code before anything is sliced.

import { describe, expect, it } from 'vitest';
import { WicketError, type ErrorCode } from '../../../protocol/errors.js';
import { MUX_FRAME_HEADER_LEN, MUX_MAX_DATA_PAYLOAD, NOISE_MAX_PLAINTEXT } from '../../../protocol/limits.js';
import { FRAME_TYPE_COUNT, FrameType, frameHeader, readFrameHeader } from '../../../protocol/mux/frames.js';
import { MuxSession } from '../../../protocol/mux/session.js';

function codeOf(fn: () => unknown): ErrorCode | 'no error' {
  try {
    fn();
    return 'no error';
  } catch (err) {
    if (err instanceof WicketError) return err.code;
    throw err;
  }
}

describe('mux frame codec', () => {
  it('round-trips every frame type through the 9-byte header', () => {
    const cases: [FrameType, number, number][] = [
      [FrameType.DATA, 1, 3],
      [FrameType.WINDOW, 0xffff_fffe, 0xffff_ffff],
      [FrameType.WINDOW, 0, 335_544_320], // stream 0: the session's credit
      [FrameType.OPEN, 7, 262_144],
      [FrameType.FIN, 2, 0],
      [FrameType.RESET, 3, 0xffff],
      [FrameType.PING, 0, 0xdead_beef],
      [FrameType.PONG, 0, 0],
    ];
    for (const [type, stream, value] of cases) {
      const header = frameHeader(type, stream, value);
      expect(header.length).toBe(MUX_FRAME_HEADER_LEN);
      const message = type === FrameType.DATA ? Buffer.concat([header, Buffer.from('abc')]) : header;
      expect(readFrameHeader(message, 0)).toEqual({ type, stream, value });
    }
  });

  it('the largest data frame exactly fills one Noise plaintext', () => {
    expect(MUX_FRAME_HEADER_LEN + MUX_MAX_DATA_PAYLOAD).toBe(NOISE_MAX_PLAINTEXT);
  });

  it('refuses a header cut short at every length', () => {
    const header = frameHeader(FrameType.WINDOW, 1, 1);
    for (let n = 1; n < MUX_FRAME_HEADER_LEN; n++) {
      expect(codeOf(() => readFrameHeader(header.subarray(0, n), 0))).toBe('WICKET_ERR_FRAME_TRUNCATED');
    }
  });

  it('refuses every unknown type byte before reading further (the range check before dispatch)', () => {
    for (let type = FRAME_TYPE_COUNT; type < 256; type++) {
      const header = Buffer.alloc(MUX_FRAME_HEADER_LEN);
      header[0] = type;
      expect(codeOf(() => readFrameHeader(header, 0))).toBe('WICKET_ERR_FRAME_UNKNOWN_TYPE');
    }
  });

  it.each([
    ['an empty DATA payload', frameHeader(FrameType.DATA, 1, 0), 'WICKET_ERR_FRAME_MALFORMED'],
    ['a DATA payload over the cap', frameHeader(FrameType.DATA, 1, MUX_MAX_DATA_PAYLOAD + 1), 'WICKET_ERR_FRAME_TOO_LARGE'],
    ['a DATA length past the message end', Buffer.concat([frameHeader(FrameType.DATA, 1, 10), Buffer.alloc(9)]), 'WICKET_ERR_FRAME_TRUNCATED'],
    ['a zero WINDOW increment', frameHeader(FrameType.WINDOW, 1, 0), 'WICKET_ERR_FRAME_MALFORMED'],
    ['a FIN with a value', frameHeader(FrameType.FIN, 1, 1), 'WICKET_ERR_FRAME_MALFORMED'],
    ['a RESET number beyond u16', frameHeader(FrameType.RESET, 1, 0x1_0000), 'WICKET_ERR_FRAME_MALFORMED'],
    ['a PING on a stream', frameHeader(FrameType.PING, 1, 0), 'WICKET_ERR_FRAME_MALFORMED'],
    ['a PONG on a stream', frameHeader(FrameType.PONG, 2, 0), 'WICKET_ERR_FRAME_MALFORMED'],
    ['DATA on stream 0', Buffer.concat([frameHeader(FrameType.DATA, 0, 1), Buffer.alloc(1)]), 'WICKET_ERR_FRAME_MALFORMED'],
    ['OPEN of stream 0', frameHeader(FrameType.OPEN, 0, 1), 'WICKET_ERR_FRAME_MALFORMED'],
    ['FIN of stream 0', frameHeader(FrameType.FIN, 0, 0), 'WICKET_ERR_FRAME_MALFORMED'],
    ['RESET of stream 0', frameHeader(FrameType.RESET, 0, 1), 'WICKET_ERR_FRAME_MALFORMED'],
    ['a zero session WINDOW increment', frameHeader(FrameType.WINDOW, 0, 0), 'WICKET_ERR_FRAME_MALFORMED'],
  ] as const)('refuses %s', (_name, message, code) => {
    expect(codeOf(() => readFrameHeader(message, 0))).toBe(code);
  });

  it('a session refuses a message larger than one Noise plaintext before parsing it', () => {
    const session = new MuxSession({ role: 'responder', send: () => true });
    const closes: WicketError[] = [];
    session.on('close', (err: WicketError) => closes.push(err));
    session.receive(Buffer.alloc(NOISE_MAX_PLAINTEXT + 1));
    expect(closes.map((e) => e.code)).toEqual(['WICKET_ERR_FRAME_TOO_LARGE']);
  });
});
