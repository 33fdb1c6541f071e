import { asWicketError, wicketError } from '../errors.js';
import { AEAD_TAG_LEN, DH_LEN, NOISE_MAX_MESSAGE } from '../limits.js';
import type { CipherState } from './cipher-state.js';
import { cryptoSuite, WICKET_PROTOCOL_NAME } from './crypto-suite.js';
import { destroyKeyPair25519, dh25519, generateKeyPair25519, keyPair25519FromPrivate, type KeyPair25519 } from './dh25519.js';
import { SymmetricState } from './symmetric-state.js';

// Noise §5.3 HandshakeState, interpreting the message patterns of Noise §7.5:
//
//   XX:
//     -> e
//     <- e, ee, s, es
//     -> s, se
//
// Every step is computed on a copy of the symmetric state and the key variables, and committed
// only when the whole message has been processed. Decision (documented in protocol/README.md):
// a failed step leaves the committed state exactly as it was but marks the handshake FAILED, and
// every later call throws WICKET_ERR_HANDSHAKE_STATE. A failed handshake is never resumed: a
// rejected message could have been an attack, and retrying would give an attacker an oracle.
//
// Private keys are overwritten as soon as no later token of the pattern needs them (checked at
// each commit, so a step's copies never outlive the key they share), and all of them when the
// handshake fails. Fixed keys passed in options are copied first, never overwritten.

export type Token = 'e' | 's' | 'ee' | 'es' | 'se' | 'ss';
export type HandshakePattern = readonly (readonly Token[])[];

/** Noise §7.5 XX, the only pattern Wicket speaks. */
export const XX_PATTERN: HandshakePattern = [['e'], ['e', 'ee', 's', 'es'], ['s', 'se']];

export interface HandshakeStateOptions {
  /** Noise protocol name; default Wicket's Noise_XX_25519_ChaChaPoly_SHA256. */
  readonly protocolName?: string;
  readonly initiator: boolean;
  readonly prologue?: Uint8Array;
  /** Raw 32-byte X25519 private key; a fresh one is generated when absent. */
  readonly staticPrivateKey?: Uint8Array;
  /** Tests and vectors only: a fixed ephemeral private key instead of a fresh random one. */
  readonly ephemeralPrivateKey?: Uint8Array;
}

export interface TransportCiphers {
  /** Encrypts what this side sends (c1 for the initiator, c2 for the responder). */
  readonly send: CipherState;
  /** Decrypts what this side receives. */
  readonly receive: CipherState;
}

type Status = 'active' | 'complete' | 'failed' | 'split';

export class HandshakeState {
  readonly initiator: boolean;
  readonly pattern: HandshakePattern = XX_PATTERN;
  #symmetric: SymmetricState;
  readonly #s: KeyPair25519;
  readonly #fixedEphemeral: Uint8Array | undefined;
  #e: KeyPair25519 | undefined;
  #rs: Buffer | undefined;
  #re: Buffer | undefined;
  #messageIndex = 0;
  #status: Status = 'active';
  #handshakeHash: Buffer | undefined;

  constructor(options: HandshakeStateOptions) {
    this.initiator = options.initiator;
    // InitializeSymmetric(protocol_name); MixHash(prologue)
    this.#symmetric = SymmetricState.initialize(cryptoSuite(options.protocolName ?? WICKET_PROTOCOL_NAME));
    this.#symmetric.mixHash(options.prologue ?? Buffer.alloc(0));
    // XX has no pre-messages, so nothing else is hashed before message 0.
    this.#s = options.staticPrivateKey ? keyPair25519FromPrivate(options.staticPrivateKey) : generateKeyPair25519();
    this.#fixedEphemeral = options.ephemeralPrivateKey;
  }

  get localStaticPublicKey(): Buffer {
    return Buffer.from(this.#s.publicKey);
  }

  /** The peer's static public key, once its `s` token has been read. */
  get remoteStaticPublicKey(): Buffer | undefined {
    return this.#rs === undefined ? undefined : Buffer.from(this.#rs);
  }

  get isComplete(): boolean {
    return this.#status === 'complete' || this.#status === 'split';
  }

  get failed(): boolean {
    return this.#status === 'failed';
  }

  /** Whether the next message is ours to write. */
  get isMyTurn(): boolean {
    return this.#status === 'active' && (this.#messageIndex % 2 === 0) === this.initiator;
  }

  /** GetHandshakeHash() (h after the last message; channel binding). */
  handshakeHash(): Buffer {
    if (this.#handshakeHash === undefined) throw wicketError('WICKET_ERR_HANDSHAKE_STATE', 'handshake is not complete');
    return Buffer.from(this.#handshakeHash);
  }

  #checkTurn(writing: boolean): readonly Token[] {
    if (this.#status !== 'active') {
      throw wicketError('WICKET_ERR_HANDSHAKE_STATE', `handshake is ${this.#status}; no message ${this.#messageIndex + 1} expected`);
    }
    if (this.isMyTurn !== writing) {
      throw wicketError('WICKET_ERR_HANDSHAKE_STATE', `message ${this.#messageIndex + 1} is the peer's to ${writing ? 'write' : 'read'}`);
    }
    return this.pattern[this.#messageIndex]!;
  }

  /**
   * Runs one step on copies; on any error marks the handshake failed and rethrows. `discard`
   * names a key pair the step made but never committed (a fresh `e`), to overwrite too.
   */
  #step<T>(run: () => T, discard?: () => KeyPair25519 | undefined): T {
    try {
      return run();
    } catch (err) {
      const uncommitted = discard?.();
      if (uncommitted !== undefined) destroyKeyPair25519(uncommitted);
      this.#fail();
      throw asWicketError(err);
    }
  }

  #fail(): void {
    this.#status = 'failed';
    this.#releaseKeys();
  }

  /** Whether `token` computes a DH with our own `key` (Noise §5.3; mirrors #dhFor). */
  #usesLocal(key: 'e' | 's', token: Token): boolean {
    switch (token) {
      case 'ee':
        return key === 'e';
      case 'ss':
        return key === 's';
      case 'es':
        return key === (this.initiator ? 'e' : 's');
      case 'se':
        return key === (this.initiator ? 's' : 'e');
      default:
        return false; // 'e' and 's' send public keys only
    }
  }

  /** Overwrites each private key that no message still to come needs (all of them unless active). */
  #releaseKeys(): void {
    const rest = this.#status === 'active' ? this.pattern.slice(this.#messageIndex).flat() : [];
    if (this.#e !== undefined && !rest.some((token) => this.#usesLocal('e', token))) destroyKeyPair25519(this.#e);
    if (!rest.some((token) => this.#usesLocal('s', token))) destroyKeyPair25519(this.#s);
  }

  /** The DH for a token, from this side's point of view (Noise §5.3, WriteMessage/ReadMessage). */
  #dhFor(token: 'ee' | 'es' | 'se' | 'ss', e: KeyPair25519 | undefined, re: Buffer | undefined, rs: Buffer | undefined): Buffer {
    const need = <T>(value: T | undefined, what: string): T => {
      if (value === undefined) throw wicketError('WICKET_ERR_INTERNAL', `token ${token} before ${what}`);
      return value;
    };
    switch (token) {
      case 'ee':
        return dh25519(need(e, 'e'), need(re, 're'));
      case 'es':
        return this.initiator ? dh25519(need(e, 'e'), need(rs, 'rs')) : dh25519(this.#s, need(re, 're'));
      case 'se':
        return this.initiator ? dh25519(this.#s, need(re, 're')) : dh25519(need(e, 'e'), need(rs, 'rs'));
      case 'ss':
        return dh25519(this.#s, need(rs, 'rs'));
    }
  }

  /** WriteMessage(payload, message_buffer): the next handshake message carrying `payload`. */
  writeMessage(payload: Uint8Array): Buffer {
    const tokens = this.#checkTurn(true);
    let fresh: KeyPair25519 | undefined;
    return this.#step(() => {
      const symmetric = this.#symmetric.clone();
      let e = this.#e;
      const parts: Buffer[] = [];
      for (const token of tokens) {
        switch (token) {
          case 'e': {
            // e = GENERATE_KEYPAIR(); buffer.append(e.public_key); MixHash(e.public_key)
            e = fresh = this.#fixedEphemeral ? keyPair25519FromPrivate(this.#fixedEphemeral) : generateKeyPair25519();
            parts.push(e.publicKey);
            symmetric.mixHash(e.publicKey);
            break;
          }
          case 's':
            // buffer.append(EncryptAndHash(s.public_key))
            parts.push(symmetric.encryptAndHash(this.#s.publicKey));
            break;
          default: {
            // ee: MixKey(DH(e, re)); es / se / ss: MixKey(DH of the named pair for this role)
            const shared = this.#dhFor(token, e, this.#re, this.#rs);
            symmetric.mixKey(shared);
            shared.fill(0);
          }
        }
      }
      // buffer.append(EncryptAndHash(payload))
      parts.push(symmetric.encryptAndHash(payload));
      const message = Buffer.concat(parts);
      if (message.length > NOISE_MAX_MESSAGE) {
        throw wicketError('WICKET_ERR_MESSAGE_TOO_LARGE', `handshake message would be ${message.length} bytes`);
      }
      this.#commit(symmetric, e, this.#re, this.#rs);
      return message;
    }, () => fresh);
  }

  /** ReadMessage(message, payload_buffer): processes the peer's next message, returns its payload. */
  readMessage(message: Uint8Array): Buffer {
    const tokens = this.#checkTurn(false);
    // Checked before any work: the Noise size cap (§3).
    if (message.length > NOISE_MAX_MESSAGE) {
      this.#fail();
      throw wicketError('WICKET_ERR_MESSAGE_TOO_LARGE', `handshake message is ${message.length} bytes, cap ${NOISE_MAX_MESSAGE}`);
    }
    return this.#step(() => {
      const symmetric = this.#symmetric.clone();
      let re = this.#re;
      let rs = this.#rs;
      let offset = 0;
      const take = (length: number, what: string): Uint8Array => {
        if (message.length - offset < length) {
          throw wicketError('WICKET_ERR_HANDSHAKE_MALFORMED', `message ${this.#messageIndex + 1}: ${what} needs ${length} bytes, ${message.length - offset} left`);
        }
        const bytes = message.subarray(offset, offset + length);
        offset += length;
        return bytes;
      };
      for (const token of tokens) {
        switch (token) {
          case 'e': {
            // re = next DHLEN bytes; MixHash(re.public_key)
            re = Buffer.from(take(DH_LEN, 'ephemeral key'));
            symmetric.mixHash(re);
            break;
          }
          case 's': {
            // temp = next DHLEN + 16 bytes if HasKey() else DHLEN; rs = DecryptAndHash(temp)
            const length = DH_LEN + (symmetric.hasKey() ? AEAD_TAG_LEN : 0);
            rs = symmetric.decryptAndHash(take(length, 'static key'));
            break;
          }
          default: {
            const shared = this.#dhFor(token, this.#e, re, rs);
            symmetric.mixKey(shared);
            shared.fill(0);
          }
        }
      }
      // payload = DecryptAndHash(remaining bytes)
      const rest = message.subarray(offset);
      if (symmetric.hasKey() && rest.length < AEAD_TAG_LEN) {
        throw wicketError('WICKET_ERR_HANDSHAKE_MALFORMED', `message ${this.#messageIndex + 1}: ${rest.length} bytes left, a tag needs ${AEAD_TAG_LEN}`);
      }
      const payload = symmetric.decryptAndHash(rest);
      this.#commit(symmetric, this.#e, re, rs);
      return payload;
    });
  }

  #commit(symmetric: SymmetricState, e: KeyPair25519 | undefined, re: Buffer | undefined, rs: Buffer | undefined): void {
    this.#symmetric = symmetric;
    this.#e = e;
    this.#re = re;
    this.#rs = rs;
    this.#messageIndex++;
    if (this.#messageIndex === this.pattern.length) {
      this.#status = 'complete';
      this.#handshakeHash = symmetric.handshakeHash();
    }
    this.#releaseKeys();
  }

  /**
   * Split() after the last message: the two transport CipherStates, mapped to this side's send and
   * receive directions. Callable once; the chaining key is overwritten afterwards.
   */
  split(): TransportCiphers {
    if (this.#status !== 'complete') {
      throw wicketError('WICKET_ERR_HANDSHAKE_STATE', `cannot split a handshake that is ${this.#status}`);
    }
    const [c1, c2] = this.#symmetric.split();
    this.#symmetric.destroy();
    this.#status = 'split';
    return this.initiator ? { send: c1, receive: c2 } : { send: c2, receive: c1 };
  }
}
