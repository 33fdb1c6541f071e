/**
 * Builds a canonical encoding: big-endian integers, u16-length-prefixed byte strings.
 * Used for small control objects (credentials, tickets); never on the data path.
 */
export class ByteWriter {
  readonly #parts: Buffer[] = [];

  u8(v: number): this {
    this.#parts.push(Buffer.from([v & 0xff]));
    return this;
  }

  u16(v: number): this {
    const b = Buffer.allocUnsafe(2);
    b.writeUInt16BE(v);
    this.#parts.push(b);
    return this;
  }

  u32(v: number): this {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32BE(v >>> 0);
    this.#parts.push(b);
    return this;
  }

  u64(v: number): this {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`u64 out of range: ${v}`);
    return this.u32(Math.floor(v / 2 ** 32)).u32(v % 2 ** 32);
  }

  fixed(bytes: Uint8Array): this {
    this.#parts.push(Buffer.from(bytes));
    return this;
  }

  bytes16(bytes: Uint8Array): this {
    if (bytes.length > 0xffff) throw new RangeError(`field too long: ${bytes.length}`);
    return this.u16(bytes.length).fixed(bytes);
  }

  string16(text: string): this {
    return this.bytes16(Buffer.from(text, 'utf8'));
  }

  finish(): Buffer {
    return Buffer.concat(this.#parts);
  }
}
