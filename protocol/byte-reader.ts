import { wicketError, type ErrorCode } from './errors.js';

/**
 * A bounds-checked cursor over untrusted bytes. Every read checks the remaining length first, and
 * every length-prefixed read checks the declared length against a caller-given cap before it
 * slices, so a hostile length never makes us allocate. Errors carry the caller's context
 * (`what`) and the code the caller chose for malformed input.
 */
export class ByteReader {
  #offset = 0;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly what: string,
    private readonly truncatedCode: ErrorCode = 'WICKET_ERR_FRAME_TRUNCATED',
  ) {}

  get offset(): number {
    return this.#offset;
  }

  get remaining(): number {
    return this.bytes.length - this.#offset;
  }

  #need(n: number, field: string): void {
    if (n > this.remaining) {
      throw wicketError(this.truncatedCode, `${this.what}: ${field} needs ${n} bytes, ${this.remaining} left`);
    }
  }

  u8(field: string): number {
    this.#need(1, field);
    return this.bytes[this.#offset++]!;
  }

  u16(field: string): number {
    this.#need(2, field);
    const v = (this.bytes[this.#offset]! << 8) | this.bytes[this.#offset + 1]!;
    this.#offset += 2;
    return v;
  }

  u32(field: string): number {
    this.#need(4, field);
    const b = this.bytes;
    const o = this.#offset;
    const v = ((b[o]! << 24) >>> 0) + (b[o + 1]! << 16) + (b[o + 2]! << 8) + b[o + 3]!;
    this.#offset += 4;
    return v;
  }

  /** Unsigned 64-bit as a JS number; values above 2^53 are refused as malformed. */
  u64(field: string): number {
    const hi = this.u32(field);
    const lo = this.u32(field);
    if (hi > 0x1fffff) throw wicketError('WICKET_ERR_FRAME_MALFORMED', `${this.what}: ${field} out of range`);
    return hi * 2 ** 32 + lo;
  }

  /** Exactly n bytes (a view, not a copy). */
  fixed(n: number, field: string): Uint8Array {
    this.#need(n, field);
    const out = this.bytes.subarray(this.#offset, this.#offset + n);
    this.#offset += n;
    return out;
  }

  /** u16-length-prefixed bytes, the length checked against `max` before slicing. */
  bytes16(field: string, max: number): Uint8Array {
    const len = this.u16(field);
    if (len > max) throw wicketError('WICKET_ERR_FRAME_TOO_LARGE', `${this.what}: ${field} is ${len} bytes, cap ${max}`);
    return this.fixed(len, field);
  }

  /** u16-length-prefixed UTF-8 text; invalid UTF-8 is malformed, not replaced. */
  string16(field: string, max: number): string {
    const raw = this.bytes16(field, max);
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(raw);
    } catch {
      throw wicketError('WICKET_ERR_FRAME_MALFORMED', `${this.what}: ${field} is not valid UTF-8`);
    }
  }

  /** Asserts the whole input was consumed: trailing bytes are malformed (canonical encodings). */
  end(): void {
    if (this.remaining !== 0) {
      throw wicketError('WICKET_ERR_FRAME_MALFORMED', `${this.what}: ${this.remaining} trailing bytes`);
    }
  }
}
