import { describe, expect, it } from 'vitest';
import { ByteReader } from '../../protocol/byte-reader.js';
import { ByteWriter } from '../../protocol/byte-writer.js';
import { isWicketError } from '../../protocol/errors.js';
import { seededRandom } from '../helpers/seeded.js';
import { codeOf } from '../helpers/error-code.js';

describe('ByteReader / ByteWriter', () => {
  it('round trips every field kind, big-endian', () => {
    const encoded = new ByteWriter()
      .u8(0xfe)
      .u16(0xbeef)
      .u32(0xdeadbeef)
      .u64(Number.MAX_SAFE_INTEGER)
      .u64(0)
      .fixed(Buffer.from([1, 2, 3]))
      .bytes16(Buffer.from('raw'))
      .string16('ünïcödé ✓')
      .finish();
    expect(encoded.subarray(0, 7).toString('hex')).toBe('febeefdeadbeef');
    const r = new ByteReader(encoded, 'test');
    expect(r.u8('a')).toBe(0xfe);
    expect(r.u16('b')).toBe(0xbeef);
    expect(r.u32('c')).toBe(0xdeadbeef);
    expect(r.u64('d')).toBe(Number.MAX_SAFE_INTEGER);
    expect(r.u64('e')).toBe(0);
    expect(Buffer.from(r.fixed(3, 'f'))).toEqual(Buffer.from([1, 2, 3]));
    expect(Buffer.from(r.bytes16('g', 10)).toString()).toBe('raw');
    expect(r.string16('h', 100)).toBe('ünïcödé ✓');
    expect(r.remaining).toBe(0);
    r.end();
  });

  it('truncation at every length of an encoding is a truncation error naming the field, with the chosen code', () => {
    const encoded = new ByteWriter().u8(1).u16(2).u32(3).u64(4).string16('hello').fixed(Buffer.alloc(8)).finish();
    for (let length = 0; length < encoded.length; length++) {
      const r = new ByteReader(encoded.subarray(0, length), 'thing', 'WICKET_ERR_CREDENTIAL_MALFORMED');
      let message = '';
      try {
        r.u8('one');
        r.u16('two');
        r.u32('three');
        r.u64('four');
        r.string16('five', 100);
        r.fixed(8, 'six');
        expect.fail(`length ${length} accepted`);
      } catch (err) {
        expect(isWicketError(err, 'WICKET_ERR_CREDENTIAL_MALFORMED'), String(err)).toBe(true);
        message = (err as Error).message;
      }
      expect(message).toMatch(/^WICKET_ERR_CREDENTIAL_MALFORMED: thing: (one|two|three|four|five|six) needs \d+ bytes, \d+ left$/);
    }
  });

  it('the default code for truncation is WICKET_ERR_FRAME_TRUNCATED', () => {
    expect(codeOf(() => new ByteReader(Buffer.alloc(0), 'x').u8('a'))).toBe('WICKET_ERR_FRAME_TRUNCATED');
  });

  it('a declared length over the cap is refused as TOO_LARGE before the bytes are sliced (length bomb)', () => {
    // 0xffff declared, 2 bytes present: a reader that sliced first would report truncation.
    const bomb = Buffer.from([0xff, 0xff, 0x41, 0x41]);
    expect(codeOf(() => new ByteReader(bomb, 'x').bytes16('field', 100))).toBe('WICKET_ERR_FRAME_TOO_LARGE');
    expect(codeOf(() => new ByteReader(bomb, 'x').string16('field', 100))).toBe('WICKET_ERR_FRAME_TOO_LARGE');
    // Exactly at the cap is fine.
    const atCap = new ByteWriter().bytes16(Buffer.alloc(100, 7)).finish();
    expect(new ByteReader(atCap, 'x').bytes16('field', 100).length).toBe(100);
  });

  it('fixed() returns a view, not a copy (no allocation proportional to hostile input)', () => {
    const bytes = Buffer.from([1, 2, 3, 4]);
    const view = new ByteReader(bytes, 'x').fixed(4, 'all');
    expect(view.buffer).toBe(bytes.buffer);
  });

  it('u64 above 2^53 - 1 is refused as malformed, never rounded', () => {
    const over = Buffer.from([0x00, 0x20, 0, 0, 0, 0, 0, 0]); // 2^53
    expect(codeOf(() => new ByteReader(over, 'x').u64('t'))).toBe('WICKET_ERR_FRAME_MALFORMED');
    expect(codeOf(() => new ByteReader(Buffer.alloc(8, 0xff), 'x').u64('t'))).toBe('WICKET_ERR_FRAME_MALFORMED');
  });

  describe('invalid UTF-8 is refused, never replaced with U+FFFD', () => {
    const cases: [string, number[]][] = [
      ['a lone continuation byte', [0x80]],
      ['an overlong encoding of /', [0xc0, 0xaf]],
      ['a truncated 3-byte sequence', [0xe2, 0x82]],
      ['an encoded UTF-16 surrogate', [0xed, 0xa0, 0x80]],
      ['a code point above U+10FFFF', [0xf4, 0x90, 0x80, 0x80]],
      ['the byte 0xff', [0xff]],
    ];
    for (const [name, bytes] of cases) {
      it(name, () => {
        const encoded = new ByteWriter().bytes16(Buffer.from([0x61, ...bytes, 0x62])).finish();
        expect(codeOf(() => new ByteReader(encoded, 'x').string16('s', 100))).toBe('WICKET_ERR_FRAME_MALFORMED');
      });
    }
  });

  it('end() refuses trailing bytes (canonical encodings)', () => {
    const r = new ByteReader(Buffer.from([1, 2]), 'x');
    r.u8('a');
    expect(codeOf(() => r.end())).toBe('WICKET_ERR_FRAME_MALFORMED');
  });

  it('the writer refuses values it cannot encode faithfully', () => {
    for (const bad of [-1, 1.5, 2 ** 53, Number.NaN]) expect(() => new ByteWriter().u64(bad)).toThrow(RangeError);
    expect(() => new ByteWriter().bytes16(Buffer.alloc(0x10000))).toThrow(RangeError);
  });

  it('seeded fuzz: random reads over random buffers only ever throw WicketErrors', () => {
    const random = seededRandom(0xb17e5);
    const seen = new Set<string>();
    for (let i = 0; i < 3000; i++) {
      const bytes = Buffer.from(Array.from({ length: Math.floor(random() * 64) }, () => Math.floor(random() * 256)));
      const r = new ByteReader(bytes, 'fuzz');
      const code = codeOf(() => {
        for (let op = 0; op < 20; op++) {
          switch (Math.floor(random() * 8)) {
            case 0: r.u8('a'); break;
            case 1: r.u16('b'); break;
            case 2: r.u32('c'); break;
            case 3: r.u64('d'); break;
            case 4: r.fixed(Math.floor(random() * 16), 'e'); break;
            case 5: r.bytes16('f', Math.floor(random() * 64)); break;
            case 6: r.string16('g', Math.floor(random() * 64)); break;
            default: r.end();
          }
        }
      });
      expect(code).not.toBe('foreign error');
      seen.add(code);
    }
    // The fuzz exercised the interesting paths, not just one.
    for (const code of ['WICKET_ERR_FRAME_TRUNCATED', 'WICKET_ERR_FRAME_TOO_LARGE', 'WICKET_ERR_FRAME_MALFORMED']) expect(seen).toContain(code);
  });
});
