import { createHash, createHmac } from 'node:crypto';

// Noise §4.3 hash functions: HASH, HASHLEN, BLOCKLEN, HMAC-HASH (RFC 2104) and HKDF.
// node:crypto's HMAC uses each hash's own block size: 64 for SHA-256 and BLAKE2s, 128 for
// SHA-512 and BLAKE2b, exactly what Noise §12.8-§12.11 specify (the cacophony vectors and the
// @noble/hashes cross-check in test/protocol/noise/ confirm it).

export type HashName = 'SHA256' | 'SHA512' | 'BLAKE2b' | 'BLAKE2s';

export interface HashFunctions {
  readonly name: HashName;
  /** The OpenSSL digest name. */
  readonly algorithm: 'sha256' | 'sha512' | 'blake2b512' | 'blake2s256';
  readonly hashLen: 32 | 64;
  readonly blockLen: 64 | 128;
}

export const HASHES: Readonly<Record<HashName, HashFunctions>> = {
  SHA256: { name: 'SHA256', algorithm: 'sha256', hashLen: 32, blockLen: 64 },
  SHA512: { name: 'SHA512', algorithm: 'sha512', hashLen: 64, blockLen: 128 },
  BLAKE2b: { name: 'BLAKE2b', algorithm: 'blake2b512', hashLen: 64, blockLen: 128 },
  BLAKE2s: { name: 'BLAKE2s', algorithm: 'blake2s256', hashLen: 32, blockLen: 64 },
};

/** HASH(a ‖ b ‖ …). */
export function hash(fn: HashFunctions, ...parts: Uint8Array[]): Buffer {
  const h = createHash(fn.algorithm);
  for (const part of parts) h.update(part);
  return h.digest();
}

/** HMAC-HASH(key, data ‖ …). */
export function hmac(fn: HashFunctions, key: Uint8Array, ...data: Uint8Array[]): Buffer {
  const h = createHmac(fn.algorithm, key);
  for (const part of data) h.update(part);
  return h.digest();
}

const BYTE_1 = Buffer.from([0x01]);
const BYTE_2 = Buffer.from([0x02]);
const BYTE_3 = Buffer.from([0x03]);

/**
 * HKDF(chaining_key, input_key_material, num_outputs), Noise §4.3:
 *   temp_key = HMAC-HASH(chaining_key, input_key_material)
 *   output1  = HMAC-HASH(temp_key, byte(0x01))
 *   output2  = HMAC-HASH(temp_key, output1 ‖ byte(0x02))
 *   output3  = HMAC-HASH(temp_key, output2 ‖ byte(0x03))
 */
export function hkdf(fn: HashFunctions, chainingKey: Uint8Array, inputKeyMaterial: Uint8Array, numOutputs: 2): [Buffer, Buffer];
export function hkdf(fn: HashFunctions, chainingKey: Uint8Array, inputKeyMaterial: Uint8Array, numOutputs: 3): [Buffer, Buffer, Buffer];
export function hkdf(fn: HashFunctions, chainingKey: Uint8Array, inputKeyMaterial: Uint8Array, numOutputs: 2 | 3): Buffer[] {
  const tempKey = hmac(fn, chainingKey, inputKeyMaterial);
  const output1 = hmac(fn, tempKey, BYTE_1);
  const output2 = hmac(fn, tempKey, output1, BYTE_2);
  if (numOutputs === 2) {
    tempKey.fill(0);
    return [output1, output2];
  }
  const output3 = hmac(fn, tempKey, output2, BYTE_3);
  tempKey.fill(0);
  return [output1, output2, output3];
}
