import { describe, expect, it } from 'vitest';
import { AEAD_LIBSODIUM_BELOW } from '../../../protocol/limits.js';
import { CIPHERS, type CipherName } from '../../../protocol/noise/index.js';
import { SeededBytes, referenceEncrypt, referenceNonce } from '../../helpers/noble-noise-reference.js';
import { codeOf } from '../secure-channel/channel-fixtures.js';

// The cipher functions themselves, below CipherState (ChaChaPoly on libsodium or OpenSSL by size,
// AESGCM on OpenSSL): sealing a message given as several parts into a larger buffer, and opening
// only what verifies. @noble/ciphers is the independent reference.

const NAMES: readonly CipherName[] = ['ChaChaPoly', 'AESGCM'];
// Around the block sizes where ChaCha20 and Poly1305 code switches between scalar and SIMD paths,
// and around AEAD_LIBSODIUM_BELOW, where ChaChaPoly moves from libsodium to OpenSSL.
const LENGTHS = [0, 1, 15, 16, 17, 63, 64, 65, 127, 128, 255, 256, 257, 511, 512, 513, 1024, 1100, 4096, AEAD_LIBSODIUM_BELOW - 1, AEAD_LIBSODIUM_BELOW, AEAD_LIBSODIUM_BELOW + 1, 65_519];
const SENTINEL = 0xa5;

/** The nonce for n, encoded by the reference (not by the code under test). */
function nonceFor(name: CipherName, n: bigint): Buffer {
  return Buffer.from(referenceNonce(name, n));
}

/** `bytes` cut at random points into 1..5 parts (some empty), each its own buffer. */
function split(bytes: Uint8Array, random: SeededBytes): Buffer[] {
  const count = 1 + random.int(5);
  const cuts = Array.from({ length: count - 1 }, () => random.int(bytes.length + 1)).sort((x, y) => x - y);
  const edges = [0, ...cuts, bytes.length];
  return edges.slice(1).map((end, i) => Buffer.from(bytes.subarray(edges[i]!, end)));
}

describe('cipher functions: sealInto matches @noble/ciphers for any split of the plaintext', () => {
  for (const name of NAMES) {
    it(`${name}: every length around the SIMD block sizes, 1 to 5 parts, at an offset, with and without associated data`, () => {
      const random = new SeededBytes(`seal-into-${name}`);
      const fn = CIPHERS[name];
      for (const length of LENGTHS) {
        for (let trial = 0; trial < 4; trial++) {
          const key = Buffer.from(random.next(32));
          const n = BigInt(random.int(2 ** 31));
          const nonce = nonceFor(name, n);
          const ad = random.next(trial % 2 === 0 ? 0 : 32);
          const plaintext = random.next(length);
          const parts = split(plaintext, random);
          const copies = parts.map((part) => Buffer.from(part));
          const offset = random.int(40);
          const out = Buffer.alloc(offset + length + 16 + 24, SENTINEL);

          const written = fn.sealInto(key, nonce, ad, parts, out, offset);

          const label = `${name} length ${length} parts ${parts.length}`;
          expect(written, label).toBe(length + 16);
          expect(Buffer.from(referenceEncrypt(name, key, n, ad, plaintext)).equals(out.subarray(offset, offset + written)), label).toBe(true);
          expect(out.subarray(0, offset).every((b) => b === SENTINEL), `${label}: bytes before the offset untouched`).toBe(true);
          expect(out.subarray(offset + written).every((b) => b === SENTINEL), `${label}: bytes after the message untouched`).toBe(true);
          parts.forEach((part, i) => expect(part.equals(copies[i]!), `${label}: part ${i} unchanged`).toBe(true));
          expect(fn.open(key, nonce, ad, out.subarray(offset, offset + written))?.equals(Buffer.from(plaintext)), label).toBe(true);
        }
      }
    });

    it(`${name}: a buffer without room for the whole message throws WICKET_ERR_INTERNAL and is left untouched`, () => {
      const fn = CIPHERS[name];
      for (const size of [100, AEAD_LIBSODIUM_BELOW + 10]) {
        const out = Buffer.alloc(size, SENTINEL);
        const fits = size - 16;
        const attempts: Buffer[][] = [[Buffer.alloc(fits + 1, 2)], [Buffer.alloc(fits - 10, 2), Buffer.alloc(11, 3)], [Buffer.alloc(fits, 2)]];
        for (const [i, parts] of attempts.entries()) {
          const offset = i === 2 ? 1 : 0; // the last one would fit without its offset
          expect(codeOf(() => fn.sealInto(Buffer.alloc(32, 1), nonceFor(name, 0n), new Uint8Array(0), parts, out, offset)), `size ${size} attempt ${i}`).toBe('WICKET_ERR_INTERNAL');
          expect(out.every((b) => b === SENTINEL), `size ${size} attempt ${i}: nothing written`).toBe(true);
        }
      }
    });
  }
});

describe('cipher functions: open releases nothing that does not verify', () => {
  for (const name of NAMES) {
    it(`${name}: a flipped bit (about 24 positions across body and tag), another nonce, key or associated data, or a message shorter than a tag: undefined`, () => {
      const random = new SeededBytes(`open-${name}`);
      const fn = CIPHERS[name];
      const key = Buffer.from(random.next(32));
      const ad = random.next(16);
      const nonce = nonceFor(name, 7n);
      for (const length of [0, 1, 64, 1100, AEAD_LIBSODIUM_BELOW + 5]) {
        const plaintext = random.next(length);
        const sealed = Buffer.from(referenceEncrypt(name, key, 7n, ad, plaintext));
        expect(fn.open(key, nonce, ad, sealed)?.equals(Buffer.from(plaintext))).toBe(true);
        for (let bit = 0; bit < sealed.length * 8; bit += Math.max(1, Math.floor(sealed.length / 3))) {
          const tampered = Buffer.from(sealed);
          tampered[bit >> 3]! ^= 1 << (bit & 7);
          expect(fn.open(key, nonce, ad, tampered), `${name} length ${length} bit ${bit}`).toBeUndefined();
        }
        expect(fn.open(key, nonceFor(name, 8n), ad, sealed), 'next nonce').toBeUndefined();
        expect(fn.open(Buffer.from(random.next(32)), nonce, ad, sealed), 'another key').toBeUndefined();
        expect(fn.open(key, nonce, random.next(16), sealed), 'other associated data').toBeUndefined();
        expect(fn.open(key, nonce, new Uint8Array(0), sealed), 'associated data left out').toBeUndefined();
      }
      for (const short of [0, 1, 15]) expect(fn.open(key, nonce, ad, Buffer.alloc(short)), `${short} bytes`).toBeUndefined();
    });
  }
});
