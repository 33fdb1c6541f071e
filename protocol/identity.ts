import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign as nodeSign,
  verify as nodeVerify,
  type KeyObject,
} from 'node:crypto';
import { wicketError } from './errors.js';
import { ED25519_PUBLIC_KEY_LEN, ED25519_SIGNATURE_LEN, IDENTIFIER_HEX_LEN, IDENTIFIER_PREFIX } from './limits.js';
import { Secret } from './secret.js';

// An identity is an Ed25519 key pair. Its printable identifier is 'I' + hex(SHA-256(public key)),
// so an identifier commits to exactly one key and can be checked against a presented key.

// DER prefix that wraps a raw 32-byte Ed25519 seed as PKCS#8 (RFC 8410) for node:crypto.
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const IDENTIFIER_PATTERN = new RegExp(`^${IDENTIFIER_PREFIX}[0-9a-f]{${IDENTIFIER_HEX_LEN}}$`);

export type Identifier = string & { readonly __identifier: unique symbol };

export function identifierOf(publicKey: Uint8Array): Identifier {
  checkPublicKey(publicKey);
  return (IDENTIFIER_PREFIX + createHash('sha256').update(publicKey).digest('hex')) as Identifier;
}

/** True when `text` is a well-formed identifier (wire fields checked without throwing). */
export function isIdentifier(text: unknown): text is Identifier {
  return typeof text === 'string' && IDENTIFIER_PATTERN.test(text);
}

/** Parses user or wire input into an Identifier, or throws WICKET_ERR_IDENTIFIER_INVALID. */
export function parseIdentifier(text: string): Identifier {
  if (!isIdentifier(text)) {
    const shown = typeof text === 'string' ? JSON.stringify(text.slice(0, 80)) : typeof text;
    throw wicketError(
      'WICKET_ERR_IDENTIFIER_INVALID',
      `${shown} is not an identifier (expected ${IDENTIFIER_PREFIX} followed by ${IDENTIFIER_HEX_LEN} lowercase hex digits)`,
    );
  }
  return text as Identifier;
}

function checkPublicKey(publicKey: Uint8Array): void {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== ED25519_PUBLIC_KEY_LEN) {
    throw wicketError('WICKET_ERR_KEY_INVALID', `Ed25519 public key must be ${ED25519_PUBLIC_KEY_LEN} bytes`);
  }
}

export function publicKeyObject(publicKey: Uint8Array): KeyObject {
  checkPublicKey(publicKey);
  try {
    // JWK import is ~10x faster than DER/SPKI here, and handshakes verify several keys each.
    return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(publicKey).toString('base64url') }, format: 'jwk' });
  } catch (err) {
    throw wicketError('WICKET_ERR_KEY_INVALID', 'Ed25519 public key does not decode', err);
  }
}

/** Verifies an Ed25519 signature; false (never a throw) for a bad signature or key. */
export function verifySignature(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  // Hostile callers can hand us anything (null, strings, arrays): none of it may throw.
  if (!(publicKey instanceof Uint8Array) || !(message instanceof Uint8Array) || !(signature instanceof Uint8Array)) return false;
  if (signature.length !== ED25519_SIGNATURE_LEN || publicKey.length !== ED25519_PUBLIC_KEY_LEN) return false;
  try {
    return nodeVerify(null, message, publicKeyObject(publicKey), signature);
  } catch {
    return false;
  }
}

export class Identity {
  readonly publicKey: Buffer;
  readonly identifier: Identifier;
  readonly #privateKey: KeyObject;

  private constructor(privateKey: KeyObject) {
    this.#privateKey = privateKey;
    const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
    this.publicKey = Buffer.from(spki.subarray(spki.length - ED25519_PUBLIC_KEY_LEN));
    this.identifier = identifierOf(this.publicKey);
  }

  static generate(): Identity {
    return new Identity(generateKeyPairSync('ed25519').privateKey);
  }

  /** From the raw 32-byte Ed25519 seed (as stored in the vault, wrapped in Secret). */
  static fromSeed(seed: Secret<Buffer>): Identity {
    const raw = seed.reveal();
    if (raw.length !== 32) throw wicketError('WICKET_ERR_KEY_INVALID', 'Ed25519 private key must be 32 bytes');
    try {
      return new Identity(createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, raw]), format: 'der', type: 'pkcs8' }));
    } catch (err) {
      throw wicketError('WICKET_ERR_KEY_INVALID', 'Ed25519 private key does not decode', err);
    }
  }

  /** The raw seed, for the vault to store with mode 0600. */
  exportSeed(): Secret<Buffer> {
    const der = this.#privateKey.export({ format: 'der', type: 'pkcs8' });
    return new Secret(Buffer.from(der.subarray(der.length - 32)));
  }

  sign(message: Uint8Array): Buffer {
    return nodeSign(null, message, this.#privateKey);
  }

  verify(message: Uint8Array, signature: Uint8Array): boolean {
    return verifySignature(this.publicKey, message, signature);
  }

  toString(): string {
    return this.identifier;
  }

  toJSON(): string {
    return this.identifier;
  }
}
