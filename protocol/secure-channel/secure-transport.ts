import { asWicketError, wicketError } from '../errors.js';
import { AEAD_TAG_LEN, NOISE_MAX_MESSAGE, NOISE_MAX_PLAINTEXT, REKEY_INTERVAL_MESSAGES } from '../limits.js';
import type { CipherState, TransportCiphers } from '../noise/index.js';

const EMPTY = Buffer.alloc(0);

// Wicket's transport phase: the two CipherStates from Split(), one per direction.
//
// Nonces are a strict counter (Noise's implicit n): the relay path is reliable and ordered, so
// the receiver always expects exactly the next message. A dropped (gap), replayed or reordered
// message is decrypted under the wrong nonce and fails its tag, exactly like a tampered one; any
// of these closes the transport for good (WICKET_ERR_DECRYPT, then WICKET_ERR_CHANNEL_CLOSED).
//
// Rekey (Noise §11.3): each direction calls REKEY after every `rekeyIntervalMessages` messages.
// Both ends count the same messages, so they rekey at the same point without any signal.

export interface SecureTransportOptions {
  readonly rekeyIntervalMessages?: number;
}

export class SecureTransport {
  /** h after the handshake: a channel binding both ends share (Noise §11.2). */
  readonly handshakeHash: Buffer;
  readonly #send: CipherState;
  readonly #receive: CipherState;
  readonly #rekeyInterval: number;
  #closed = false;

  constructor(ciphers: TransportCiphers, handshakeHash: Buffer, options: SecureTransportOptions = {}) {
    this.#send = ciphers.send;
    this.#receive = ciphers.receive;
    this.handshakeHash = handshakeHash;
    const rekeyInterval = options.rekeyIntervalMessages ?? REKEY_INTERVAL_MESSAGES;
    if (!Number.isSafeInteger(rekeyInterval) || rekeyInterval < 1) {
      throw wicketError('WICKET_ERR_ARGUMENT', `rekeyIntervalMessages must be a positive integer, got ${rekeyInterval}`);
    }
    this.#rekeyInterval = rekeyInterval;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Encrypts the concatenation of `parts` into ONE Noise message, returned in a buffer with
   * `headroom` spare bytes in front (zeroed; the relay DATA header goes there, avoiding a copy).
   * One allocation per message: the parts are encrypted straight into it, never first joined into
   * a buffer of their own.
   * Throws WICKET_ERR_MESSAGE_TOO_LARGE if the plaintext exceeds 65,519 bytes (nothing is sent and
   * the transport stays usable), WICKET_ERR_CHANNEL_CLOSED once closed.
   */
  seal(parts: Buffer | readonly Buffer[], headroom = 0): Buffer {
    if (this.#closed) throw wicketError('WICKET_ERR_CHANNEL_CLOSED', 'seal on a closed transport');
    const list: readonly Buffer[] = Buffer.isBuffer(parts) ? [parts] : parts;
    let length = 0;
    for (const part of list) length += part.length;
    if (length > NOISE_MAX_PLAINTEXT) {
      throw wicketError('WICKET_ERR_MESSAGE_TOO_LARGE', `plaintext of ${length} bytes exceeds ${NOISE_MAX_PLAINTEXT}`);
    }
    const out = Buffer.allocUnsafe(headroom + length + AEAD_TAG_LEN);
    for (let i = 0; i < headroom; i++) out[i] = 0; // a few bytes: cheaper than fill()'s argument handling
    try {
      this.#send.encryptPartsInto(EMPTY, list, out, headroom);
      if (this.#send.nonceIsMultipleOf(this.#rekeyInterval)) this.#send.rekey();
    } catch (err) {
      this.close();
      throw asWicketError(err);
    }
    return out;
  }

  /**
   * Decrypts one Noise message. A message over 65,535 bytes is refused before any work
   * (WICKET_ERR_MESSAGE_TOO_LARGE); any gap, replay, reorder or bad tag throws WICKET_ERR_DECRYPT.
   * Either way the transport is closed for good.
   */
  open(message: Buffer): Buffer {
    if (this.#closed) throw wicketError('WICKET_ERR_CHANNEL_CLOSED', 'open on a closed transport');
    if (message.length > NOISE_MAX_MESSAGE) {
      this.close();
      throw wicketError('WICKET_ERR_MESSAGE_TOO_LARGE', `transport message is ${message.length} bytes, cap ${NOISE_MAX_MESSAGE}`);
    }
    try {
      const plaintext = this.#receive.decryptWithAd(EMPTY, message, 'WICKET_ERR_DECRYPT');
      if (this.#receive.nonceIsMultipleOf(this.#rekeyInterval)) this.#receive.rekey();
      return plaintext;
    } catch (err) {
      this.close();
      throw asWicketError(err);
    }
  }

  /** Closes both directions and overwrites the keys. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#send.destroy();
    this.#receive.destroy();
  }
}
