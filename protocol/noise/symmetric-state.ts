import { CIPHER_KEY_LEN } from '../limits.js';
import { CipherState } from './cipher-state.js';
import type { CryptoSuite } from './crypto-suite.js';
import { hash, hkdf } from './hash-functions.js';

const EMPTY = Buffer.alloc(0);

/** Noise §5.2: "If HASHLEN is 64, then truncates temp_k to 32 bytes." */
function truncateKey(tempKey: Buffer): Buffer {
  return tempKey.subarray(0, CIPHER_KEY_LEN);
}

/**
 * Noise §5.2 SymmetricState: the chaining key ck, the handshake hash h, and a CipherState.
 * (MixKeyAndHash is omitted: it serves only PSK patterns, and Wicket speaks XX without PSKs.)
 */
export class SymmetricState {
  readonly suite: CryptoSuite;
  #ck: Buffer;
  #h: Buffer;
  #cipherState: CipherState;

  private constructor(suite: CryptoSuite, ck: Buffer, h: Buffer, cipherState: CipherState) {
    this.suite = suite;
    this.#ck = ck;
    this.#h = h;
    this.#cipherState = cipherState;
  }

  /** InitializeSymmetric(protocol_name). */
  static initialize(suite: CryptoSuite): SymmetricState {
    const name = Buffer.from(suite.protocolName, 'ascii');
    const hashLen = suite.hash.hashLen;
    // h = protocol_name padded with zeros to HASHLEN if it fits, else HASH(protocol_name)
    const h = name.length <= hashLen ? Buffer.concat([name, Buffer.alloc(hashLen - name.length)]) : hash(suite.hash, name);
    // ck = h; InitializeKey(empty)
    return new SymmetricState(suite, Buffer.from(h), h, new CipherState(suite.cipher));
  }

  /** MixKey(input_key_material): ck, temp_k = HKDF(ck, ikm, 2); InitializeKey(temp_k). */
  mixKey(inputKeyMaterial: Uint8Array): void {
    const [ck, tempKey] = hkdf(this.suite.hash, this.#ck, inputKeyMaterial, 2);
    this.#ck.fill(0);
    this.#ck = ck;
    this.#cipherState.initializeKey(truncateKey(tempKey));
    tempKey.fill(0);
  }

  /** MixHash(data): h = HASH(h ‖ data). */
  mixHash(data: Uint8Array): void {
    this.#h = hash(this.suite.hash, this.#h, data);
  }

  /** GetHandshakeHash(). */
  handshakeHash(): Buffer {
    return Buffer.from(this.#h);
  }

  hasKey(): boolean {
    return this.#cipherState.hasKey();
  }

  /** EncryptAndHash(plaintext): ciphertext = EncryptWithAd(h, plaintext); MixHash(ciphertext). */
  encryptAndHash(plaintext: Uint8Array): Buffer {
    const ciphertext = this.#cipherState.encryptWithAd(this.#h, plaintext);
    this.mixHash(ciphertext);
    return ciphertext;
  }

  /** DecryptAndHash(ciphertext): plaintext = DecryptWithAd(h, ciphertext); MixHash(ciphertext). */
  decryptAndHash(ciphertext: Uint8Array): Buffer {
    const plaintext = this.#cipherState.decryptWithAd(this.#h, ciphertext, 'WICKET_ERR_HANDSHAKE_DECRYPT');
    this.mixHash(ciphertext);
    return plaintext;
  }

  /** Split(): temp_k1, temp_k2 = HKDF(ck, zerolen, 2); c1 for initiator→responder, c2 for responder→initiator. */
  split(): [CipherState, CipherState] {
    const [tempKey1, tempKey2] = hkdf(this.suite.hash, this.#ck, EMPTY, 2);
    const c1 = new CipherState(this.suite.cipher, truncateKey(tempKey1));
    const c2 = new CipherState(this.suite.cipher, truncateKey(tempKey2));
    tempKey1.fill(0);
    tempKey2.fill(0);
    return [c1, c2];
  }

  /** An independent copy (ck, h and the cipher state), for compute-then-commit handshake steps. */
  clone(): SymmetricState {
    return new SymmetricState(this.suite, Buffer.from(this.#ck), Buffer.from(this.#h), this.#cipherState.clone());
  }

  /** Overwrites the chaining key and the handshake cipher key once the handshake is over. */
  destroy(): void {
    this.#ck.fill(0);
    this.#cipherState.destroy();
  }
}
