import sodium from 'sodium-native';
import { wicketError } from '../errors.js';
import { DH_LEN } from '../limits.js';

// Noise §4.1 DH functions for Curve25519 (RFC 7748), on libsodium (sodium-native), with keys as
// raw 32-byte Buffers.
//
// Why not node:crypto, like the rest of the handshake: node:crypto has no raw X25519 keys, and
// its fastest route out (generateKeyPairSync('x25519') then a JWK export of the private key)
// deadlocks the main thread on Node 20.20 after a few thousand calls: a GC weak callback waits
// on a key mutex the export holds. A responder hung after about 2,750 handshakes; a bare loop of
// generate + JWK export hangs before 10,000 (test/protocol/noise/x25519-soak.test.ts). libsodium
// works on plain buffers, with no key objects for the GC to finalize, and is faster too
// (measured here: key pair ≈ 14 µs, DH ≈ 36 µs, against ≈ 40–45 µs for each on the node:crypto
// JWK route and ≈ 110 µs for a key pair through the DER route).
//
// Clamping (RFC 7748 §5) happens inside crypto_scalarmult(_base), on a copy: private keys are
// stored as given (the test vectors' are unclamped).

/** A Curve25519 key pair, both halves raw 32-byte Buffers of their own (never the shared pool). */
export interface KeyPair25519 {
  readonly privateKey: Buffer;
  readonly publicKey: Buffer;
}

/** The key pair of `privateKey`, which the pair takes over. */
function pairOf(privateKey: Buffer): KeyPair25519 {
  const publicKey = Buffer.alloc(DH_LEN);
  sodium.crypto_scalarmult_base(publicKey, privateKey);
  return { privateKey, publicKey };
}

/** GENERATE_KEYPAIR(): a fresh random key pair. */
export function generateKeyPair25519(): KeyPair25519 {
  const privateKey = Buffer.alloc(DH_LEN);
  sodium.randombytes_buf(privateKey);
  return pairOf(privateKey);
}

/**
 * A key pair from a raw 32-byte private key (fixed keys for tests and vectors). The key is
 * copied, so zeroing the pair later never touches the caller's bytes.
 */
export function keyPair25519FromPrivate(raw: Uint8Array): KeyPair25519 {
  if (!(raw instanceof Uint8Array) || raw.length !== DH_LEN) {
    throw wicketError('WICKET_ERR_KEY_INVALID', `X25519 private key must be ${DH_LEN} bytes`);
  }
  const privateKey = Buffer.alloc(DH_LEN);
  privateKey.set(raw);
  return pairOf(privateKey);
}

/**
 * DH(key_pair, public_key). libsodium refuses low-order peer keys (an all-zero result); Noise
 * §12.1 allows rejecting them, and we do, as a malformed handshake. The result is a Buffer of
 * its own, so the caller can zero it.
 */
export function dh25519(keyPair: KeyPair25519, remotePublicKey: Uint8Array): Buffer {
  if (remotePublicKey.length !== DH_LEN) {
    throw wicketError('WICKET_ERR_HANDSHAKE_MALFORMED', `X25519 public key must be ${DH_LEN} bytes`);
  }
  const shared = Buffer.alloc(DH_LEN);
  try {
    sodium.crypto_scalarmult(shared, keyPair.privateKey, remotePublicKey);
  } catch (err) {
    throw wicketError('WICKET_ERR_HANDSHAKE_MALFORMED', 'X25519 with the peer key failed (low-order point)', err);
  }
  return shared;
}

/** Overwrites a key pair's private key once nothing needs it any more. */
export function destroyKeyPair25519(keyPair: KeyPair25519): void {
  keyPair.privateKey.fill(0);
}
