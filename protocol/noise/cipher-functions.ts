import { createCipheriv, createDecipheriv, type CipherGCM, type DecipherGCM } from 'node:crypto';
import { AEAD_GATHER_MAX, AEAD_TAG_LEN, CIPHER_KEY_LEN } from '../limits.js';

// Noise §5.1 cipher functions ENCRYPT(k, n, ad, plaintext) / DECRYPT(k, n, ad, ciphertext) on
// node:crypto, and Noise §12.3 / §12.4 nonce encodings:
//   ChaChaPoly: 96-bit nonce = 32 bits of zeros ‖ little-endian encoding of n (RFC 8439)
//   AESGCM:     96-bit nonce = 32 bits of zeros ‖ big-endian encoding of n
// Both append a 16-byte tag. Nothing here loops over bytes in JS: OpenSSL does the work.
// Each is split in two: making the OpenSSL context for (k, n), and its one use (sealInto,
// openWith), so that CipherState can make the next context before the message arrives.

export type CipherName = 'ChaChaPoly' | 'AESGCM';

export interface CipherFunctions {
  readonly name: CipherName;
  /** The OpenSSL algorithm name. */
  readonly algorithm: 'chacha20-poly1305' | 'aes-256-gcm';
  /**
   * Writes the 8-byte counter n = hi * 2^32 + lo (two u32 halves: no BigInt on the data path) into
   * bytes 4..11 of a 12-byte nonce whose bytes 0..3 are zero.
   */
  writeNonce(nonce: Buffer, hi: number, lo: number): void;
}

export const CHACHA_POLY: CipherFunctions = {
  name: 'ChaChaPoly',
  algorithm: 'chacha20-poly1305',
  writeNonce: (nonce, hi, lo) => {
    nonce.writeUInt32LE(lo, 4);
    nonce.writeUInt32LE(hi, 8);
  },
};

export const AES_GCM: CipherFunctions = {
  name: 'AESGCM',
  algorithm: 'aes-256-gcm',
  writeNonce: (nonce, hi, lo) => {
    nonce.writeUInt32BE(hi, 4);
    nonce.writeUInt32BE(lo, 8);
  },
};

export const CIPHERS: Readonly<Record<CipherName, CipherFunctions>> = { ChaChaPoly: CHACHA_POLY, AESGCM: AES_GCM };

/** A fresh 12-byte nonce buffer with its 4 leading zero bytes; reused per CipherState. */
export function newNonceBuffer(): Buffer {
  return Buffer.alloc(12);
}

/** An OpenSSL AEAD context set up with a key and a nonce: good for exactly one message. */
export type EncryptContext = CipherGCM;
export type DecryptContext = DecipherGCM;

/**
 * The context for ENCRYPT(k, n, …). Making it (cipher lookup, key and nonce set-up in OpenSSL) is
 * about a third of the cost of sealing 1 KiB, which is why CipherState can make it ahead of time.
 */
export function newEncryptContext(fn: CipherFunctions, key: Buffer, nonce: Buffer): EncryptContext {
  return createCipheriv(fn.algorithm as 'aes-256-gcm', key, nonce, { authTagLength: AEAD_TAG_LEN });
}

/** The context for DECRYPT(k, n, …); see newEncryptContext. */
export function newDecryptContext(fn: CipherFunctions, key: Buffer, nonce: Buffer): DecryptContext {
  return createDecipheriv(fn.algorithm as 'aes-256-gcm', key, nonce, { authTagLength: AEAD_TAG_LEN });
}

/**
 * ENCRYPT with a fresh context into `out` at `offset`: the ciphertext of the concatenation of
 * `parts`, then the tag. Returns the number of bytes written (plaintext length + 16). `out` must
 * have room.
 */
export function sealInto(cipher: EncryptContext, ad: Uint8Array, parts: readonly Uint8Array[], out: Buffer, offset: number): number {
  if (ad.length > 0) cipher.setAAD(ad);
  let at = offset;
  const gathered = gatherSmallParts(parts, out, offset);
  // ChaCha20 and GCM are stream modes: update() returns exactly as many bytes as it is given.
  if (gathered > 0) at += put(out, at, cipher.update(out.subarray(offset, offset + gathered)));
  else {
    for (const part of parts) {
      if (part.length > 0) at += put(out, at, cipher.update(part));
    }
  }
  at += put(out, at, cipher.final());
  at += put(out, at, cipher.getAuthTag());
  return at - offset;
}

/** Writes `bytes` into `out` at `at`; returns its length. (Uint8Array.set: Buffer.copy's argument checks cost more than these short copies.) */
function put(out: Buffer, at: number, bytes: Uint8Array): number {
  out.set(bytes, at);
  return bytes.length;
}

/**
 * Copies several parts whose total is at most AEAD_GATHER_MAX into `out` at `offset` (the room
 * their ciphertext goes to anyway), so they take one update() instead of one each. Returns the
 * bytes gathered, or 0 when the parts should go one by one (a single part, or a large total).
 */
function gatherSmallParts(parts: readonly Uint8Array[], out: Buffer, offset: number): number {
  if (parts.length < 2) return 0;
  let total = 0;
  for (const part of parts) total += part.length;
  if (total > AEAD_GATHER_MAX || total === 0) return 0;
  let at = offset;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return total;
}

/**
 * DECRYPT with a fresh context: the plaintext, or undefined when the tag does not verify (or the
 * input is shorter than a tag). Plaintext is released only after the tag checks out.
 */
export function openWith(decipher: DecryptContext, ad: Uint8Array, ciphertext: Uint8Array): Buffer | undefined {
  if (ciphertext.length < AEAD_TAG_LEN) return undefined;
  const bodyLength = ciphertext.length - AEAD_TAG_LEN;
  if (ad.length > 0) decipher.setAAD(ad);
  decipher.setAuthTag(ciphertext.subarray(bodyLength));
  const plaintext = decipher.update(ciphertext.subarray(0, bodyLength));
  try {
    decipher.final();
  } catch {
    plaintext.fill(0);
    return undefined;
  }
  return plaintext;
}

/** ENCRYPT(k, n, ad, plaintext) into a new buffer, with a context made on the spot (REKEY uses it). */
export function encrypt(fn: CipherFunctions, key: Buffer, nonce: Buffer, ad: Uint8Array, plaintext: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(plaintext.length + AEAD_TAG_LEN);
  sealInto(newEncryptContext(fn, key, nonce), ad, [plaintext], out, 0);
  return out;
}

/** The 32 zero bytes REKEY encrypts (Noise §4.2). */
export const REKEY_ZEROS = Buffer.alloc(CIPHER_KEY_LEN);
