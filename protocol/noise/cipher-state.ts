import { wicketError, type ErrorCode } from '../errors.js';
import { AEAD_TAG_LEN, CIPHER_KEY_LEN, NOISE_MAX_NONCE } from '../limits.js';
import { encrypt, newNonceBuffer, REKEY_ZEROS, type CipherFunctions } from './cipher-functions.js';

const EMPTY = Buffer.alloc(0);
const U32_MAX = 0xffff_ffff;
const U32_MAX_BIG = 0xffff_ffffn;

/**
 * Noise §5.1 CipherState: a key k (or empty) and a 64-bit counter nonce n.
 *
 * n is kept as two u32 halves, so every value up to the spec's reserved 2^64-1 is exact without a
 * BigInt allocation per message; the API shows it as a bigint. A CipherState refuses to use
 * 2^64-1 (WICKET_ERR_NONCE_EXHAUSTED) and only REKEY encrypts under it. The 12-byte nonce buffer
 * is allocated once and rewritten per message.
 */
export class CipherState {
  readonly fn: CipherFunctions;
  #k: Buffer | undefined;
  /** n = #hi * 2^32 + #lo. */
  #hi = 0;
  #lo = 0;
  #destroyed = false;
  readonly #nonce = newNonceBuffer();

  constructor(fn: CipherFunctions, key?: Uint8Array) {
    this.fn = fn;
    if (key !== undefined) this.initializeKey(key);
  }

  /** InitializeKey(key): k = key, n = 0. */
  initializeKey(key: Uint8Array): void {
    if (key.length !== CIPHER_KEY_LEN) throw wicketError('WICKET_ERR_INTERNAL', `cipher key must be ${CIPHER_KEY_LEN} bytes`);
    this.#k = Buffer.from(key);
    this.#hi = 0;
    this.#lo = 0;
  }

  /** HasKey(). */
  hasKey(): boolean {
    return this.#k !== undefined;
  }

  /** SetNonce(nonce), for tests of nonce exhaustion and for the spec's out-of-order use. */
  setNonce(n: bigint): void {
    if (n < 0n || n > NOISE_MAX_NONCE) throw wicketError('WICKET_ERR_INTERNAL', 'nonce out of range');
    this.#hi = Number(n >> 32n);
    this.#lo = Number(n & U32_MAX_BIG);
  }

  get nonce(): bigint {
    return (BigInt(this.#hi) << 32n) | BigInt(this.#lo);
  }

  /** n mod k === 0, without BigInt while n < 2^32 (the rekey schedule asks after every message). */
  nonceIsMultipleOf(k: number): boolean {
    if (this.#hi === 0) return this.#lo % k === 0;
    return this.nonce % BigInt(k) === 0n;
  }

  #checkUsable(): void {
    // A destroyed state has no key; without this check it would "encrypt" as the identity function.
    if (this.#destroyed) throw wicketError('WICKET_ERR_CHANNEL_CLOSED', 'cipher state was destroyed');
  }

  /**
   * The nonce buffer holding n, for the next ENCRYPT or DECRYPT (read during that call only, so
   * one buffer serves). Noise §5.1: n = 2^64-1 is reserved (REKEY uses it); reaching it is an error.
   */
  #nextNonce(): Buffer {
    if (this.#hi === U32_MAX && this.#lo === U32_MAX) throw wicketError('WICKET_ERR_NONCE_EXHAUSTED', 'cipher reached nonce 2^64-1');
    this.fn.writeNonce(this.#nonce, this.#hi, this.#lo);
    return this.#nonce;
  }

  #advance(): void {
    if (this.#lo === U32_MAX) {
      this.#lo = 0;
      this.#hi++;
    } else {
      this.#lo++;
    }
  }

  /** EncryptWithAd(ad, plaintext): ENCRYPT(k, n++, ad, plaintext), or plaintext when k is empty. */
  encryptWithAd(ad: Uint8Array, plaintext: Uint8Array): Buffer {
    this.#checkUsable();
    if (this.#k === undefined) return Buffer.from(plaintext);
    const out = encrypt(this.fn, this.#k, this.#nextNonce(), ad, plaintext);
    this.#advance();
    return out;
  }

  /**
   * EncryptWithAd over the concatenation of `parts`, written into `out` at `offset` (no copy of the
   * plaintext, no intermediate buffer). Needs a key. Returns plaintext length + 16.
   */
  encryptPartsInto(ad: Uint8Array, parts: readonly Uint8Array[], out: Buffer, offset: number): number {
    this.#checkUsable();
    if (this.#k === undefined) throw wicketError('WICKET_ERR_INTERNAL', 'encryptPartsInto needs a key');
    const written = this.fn.sealInto(this.#k, this.#nextNonce(), ad, parts, out, offset);
    this.#advance();
    return written;
  }

  /**
   * DecryptWithAd(ad, ciphertext): DECRYPT(k, n++, ad, ciphertext), or ciphertext when k is empty.
   * On an authentication failure it throws `failureCode` and, per the spec, leaves n unchanged.
   */
  decryptWithAd(ad: Uint8Array, ciphertext: Uint8Array, failureCode: ErrorCode = 'WICKET_ERR_DECRYPT'): Buffer {
    this.#checkUsable();
    if (this.#k === undefined) return Buffer.from(ciphertext);
    const plaintext = this.fn.open(this.#k, this.#nextNonce(), ad, ciphertext);
    if (plaintext === undefined) {
      throw wicketError(failureCode, ciphertext.length < AEAD_TAG_LEN ? 'message shorter than its tag' : 'authentication tag mismatch');
    }
    this.#advance();
    return plaintext;
  }

  /** Rekey(): k = REKEY(k) = first 32 bytes of ENCRYPT(k, 2^64-1, zerolen, zeros); n is unchanged (§11.3). */
  rekey(): void {
    this.#checkUsable();
    if (this.#k === undefined) throw wicketError('WICKET_ERR_INTERNAL', 'rekey needs a key');
    const maxNonce = newNonceBuffer();
    this.fn.writeNonce(maxNonce, U32_MAX, U32_MAX);
    const sealed = encrypt(this.fn, this.#k, maxNonce, EMPTY, REKEY_ZEROS);
    this.#k.fill(0);
    this.#k = Buffer.from(sealed.subarray(0, CIPHER_KEY_LEN));
    sealed.fill(0); // it held the new key (and may sit in Buffer's shared pool)
  }

  /** An independent copy, so a handshake step can work on it and commit only on success. */
  clone(): CipherState {
    this.#checkUsable();
    const copy = new CipherState(this.fn);
    if (this.#k !== undefined) copy.#k = Buffer.from(this.#k);
    copy.#hi = this.#hi;
    copy.#lo = this.#lo;
    return copy;
  }

  /** Forgets the key (overwrites it); the state cannot encrypt or decrypt again. */
  destroy(): void {
    this.#k?.fill(0);
    this.#k = undefined;
    this.#destroyed = true;
  }
}
