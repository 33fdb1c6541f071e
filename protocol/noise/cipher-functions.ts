import { createCipheriv, createDecipheriv } from 'node:crypto';
import sodium from 'sodium-native';
import { wicketError } from '../errors.js';
import { AEAD_GATHER_MAX, AEAD_LIBSODIUM_BELOW, AEAD_TAG_LEN, CIPHER_KEY_LEN } from '../limits.js';

// Noise §5.1 cipher functions ENCRYPT(k, n, ad, plaintext) / DECRYPT(k, n, ad, ciphertext), and
// Noise §12.3 / §12.4 nonce encodings:
//   ChaChaPoly: 96-bit nonce = 32 bits of zeros ‖ little-endian encoding of n (RFC 8439)
//   AESGCM:     96-bit nonce = 32 bits of zeros ‖ big-endian encoding of n
// Both append a 16-byte tag. Nothing here loops over bytes in JS: native code does the work.
//
// ChaChaPoly, the cipher Wicket's channel uses, runs on libsodium (sodium-native) for messages
// under AEAD_LIBSODIUM_BELOW: one native call per message, into a buffer we give it. node:crypto
// has no one-shot AEAD: each message needs a fresh OpenSSL context and four calls that each
// return a new buffer, so sealing and opening a 1 KiB message cost about 24 µs there against 5 µs
// in libsodium (`npm run bench:crypto`). With four AEADs on every request/response round trip
// through a portal, that difference was most of Wicket's latency over `ssh -L`. Longer messages
// (bulk transfers) stay on OpenSSL, whose AVX-512 code is faster there. Both implement the same
// RFC 8439 AEAD, so which one a message takes is invisible on the wire. AESGCM (only for the
// Noise test vectors) runs on OpenSSL.

export type CipherName = 'ChaChaPoly' | 'AESGCM';

export interface CipherFunctions {
  readonly name: CipherName;
  /**
   * Writes the 8-byte counter n = hi * 2^32 + lo (two u32 halves: no BigInt on the data path) into
   * bytes 4..11 of a 12-byte nonce whose bytes 0..3 are zero.
   */
  writeNonce(nonce: Buffer, hi: number, lo: number): void;
  /**
   * ENCRYPT into `out` at `offset`: the ciphertext of the concatenation of `parts`, then the tag.
   * Returns the bytes written (plaintext length + 16). `out` must have room.
   */
  sealInto(key: Buffer, nonce: Buffer, ad: Uint8Array, parts: readonly Uint8Array[], out: Buffer, offset: number): number;
  /**
   * DECRYPT: the plaintext, or undefined when the tag does not verify (or the input is shorter
   * than a tag). Plaintext is released only after the tag checks out.
   */
  open(key: Buffer, nonce: Buffer, ad: Uint8Array, ciphertext: Uint8Array): Buffer | undefined;
}

export const CHACHA_POLY: CipherFunctions = {
  name: 'ChaChaPoly',
  writeNonce: (nonce, hi, lo) => {
    nonce.writeUInt32LE(lo, 4);
    nonce.writeUInt32LE(hi, 8);
  },
  sealInto: (key, nonce, ad, parts, out, offset) => {
    const length = totalLength(parts);
    if (length >= AEAD_LIBSODIUM_BELOW) return opensslSealInto('chacha20-poly1305', key, nonce, ad, parts, out, offset);
    checkRoom(out, offset, length);
    const sealed = out.subarray(offset, offset + length + AEAD_TAG_LEN);
    // libsodium takes one contiguous plaintext. Several parts are gathered into the room their
    // ciphertext goes to and encrypted in place (ChaCha20 XORs each block into the same bytes it
    // read), so the plaintext is overwritten at once and nothing is copied twice.
    const plaintext = parts.length === 1 ? parts[0]! : sealed.subarray(0, gather(parts, sealed));
    sodium.crypto_aead_chacha20poly1305_ietf_encrypt(sealed, plaintext, adOrNull(ad), null, nonce, key);
    return sealed.length;
  },
  open: (key, nonce, ad, ciphertext) => {
    if (ciphertext.length < AEAD_TAG_LEN) return undefined;
    if (ciphertext.length - AEAD_TAG_LEN >= AEAD_LIBSODIUM_BELOW) return opensslOpen('chacha20-poly1305', key, nonce, ad, ciphertext);
    const plaintext = Buffer.allocUnsafe(ciphertext.length - AEAD_TAG_LEN);
    try {
      sodium.crypto_aead_chacha20poly1305_ietf_decrypt(plaintext, null, ciphertext, adOrNull(ad), nonce, key);
    } catch {
      return undefined; // the tag did not verify; libsodium wrote zeros, never plaintext
    }
    return plaintext;
  },
};

export const AES_GCM: CipherFunctions = {
  name: 'AESGCM',
  writeNonce: (nonce, hi, lo) => {
    nonce.writeUInt32BE(hi, 4);
    nonce.writeUInt32BE(lo, 8);
  },
  sealInto: (key, nonce, ad, parts, out, offset) => opensslSealInto('aes-256-gcm', key, nonce, ad, parts, out, offset),
  open: (key, nonce, ad, ciphertext) => opensslOpen('aes-256-gcm', key, nonce, ad, ciphertext),
};

type OpenSslAead = 'chacha20-poly1305' | 'aes-256-gcm';

/** ENCRYPT on OpenSSL: a fresh context for (k, n), the parts fed in, then the tag. */
function opensslSealInto(algorithm: OpenSslAead, key: Buffer, nonce: Buffer, ad: Uint8Array, parts: readonly Uint8Array[], out: Buffer, offset: number): number {
  // The cast picks @types/node's AEAD overload; chacha20-poly1305 has the same API.
  const length = totalLength(parts);
  checkRoom(out, offset, length);
  const cipher = createCipheriv(algorithm as 'aes-256-gcm', key, nonce, { authTagLength: AEAD_TAG_LEN });
  if (ad.length > 0) cipher.setAAD(ad);
  let at = offset;
  const gathered = parts.length > 1 && length <= AEAD_GATHER_MAX ? gather(parts, out.subarray(offset)) : 0;
  // Both are stream modes: update() returns exactly as many bytes as it is given.
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

/** DECRYPT on OpenSSL; the plaintext is zeroed and withheld when the tag does not verify. */
function opensslOpen(algorithm: OpenSslAead, key: Buffer, nonce: Buffer, ad: Uint8Array, ciphertext: Uint8Array): Buffer | undefined {
  if (ciphertext.length < AEAD_TAG_LEN) return undefined;
  const bodyLength = ciphertext.length - AEAD_TAG_LEN;
  const decipher = createDecipheriv(algorithm as 'aes-256-gcm', key, nonce, { authTagLength: AEAD_TAG_LEN });
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

export const CIPHERS: Readonly<Record<CipherName, CipherFunctions>> = { ChaChaPoly: CHACHA_POLY, AESGCM: AES_GCM };

/** A fresh 12-byte nonce buffer with its 4 leading zero bytes; reused per CipherState. */
export function newNonceBuffer(): Buffer {
  return Buffer.alloc(12);
}

function adOrNull(ad: Uint8Array): Uint8Array | null {
  return ad.length > 0 ? ad : null;
}

/**
 * Refuses before anything is written, so a message that does not fit leaves nothing of itself, or
 * of its plaintext, in `out`.
 */
function checkRoom(out: Buffer, offset: number, plaintextLength: number): void {
  if (out.length - offset < plaintextLength + AEAD_TAG_LEN) {
    throw wicketError('WICKET_ERR_INTERNAL', `no room to seal ${plaintextLength} bytes at offset ${offset} of a ${out.length}-byte buffer`);
  }
}

function totalLength(parts: readonly Uint8Array[]): number {
  let total = 0;
  for (const part of parts) total += part.length;
  return total;
}

/** Copies `parts` one after another to the start of `into`; returns the bytes copied. */
function gather(parts: readonly Uint8Array[], into: Uint8Array): number {
  let at = 0;
  for (const part of parts) {
    into.set(part, at);
    at += part.length;
  }
  return at;
}

/** Writes `bytes` into `out` at `at`; returns its length. (Uint8Array.set: Buffer.copy's argument checks cost more than these short copies.) */
function put(out: Buffer, at: number, bytes: Uint8Array): number {
  out.set(bytes, at);
  return bytes.length;
}

/** ENCRYPT(k, n, ad, plaintext) into a new buffer. */
export function encrypt(fn: CipherFunctions, key: Buffer, nonce: Buffer, ad: Uint8Array, plaintext: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(plaintext.length + AEAD_TAG_LEN);
  fn.sealInto(key, nonce, ad, [plaintext], out, 0);
  return out;
}

/** The 32 zero bytes REKEY encrypts (Noise §4.2). */
export const REKEY_ZEROS = Buffer.alloc(CIPHER_KEY_LEN);
