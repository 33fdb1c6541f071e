import { isWicketError, wicketError } from '../errors.js';
import { verifyCredential, type Attributes } from '../credential.js';
import { identifierOf, verifySignature, type Identifier, type Identity } from '../identity.js';
import { ED25519_PUBLIC_KEY_LEN, ED25519_SIGNATURE_LEN, MAX_CREDENTIAL_LEN } from '../limits.js';
import { RELAY_ID_ATTRIBUTE } from '../relay-names.js';

// The payload of handshake messages 2 and 3 (encrypted by Noise; protocol/README.md,
// "Secure channel"):
//
//   payload   = identity public key [32] ‖ binding signature [64] ‖ credential length u16 ‖ credential
//   signature = Ed25519(identity key, STATIC_KEY_BINDING_DOMAIN ‖ sender's Noise static public key [32])
//
// The signature binds the long-lived Ed25519 identity to this handshake's Noise static key, which
// Noise in turn binds to the handshake transcript (es / se); the credential binds the identity to
// its attributes. No trailing bytes: one payload has one encoding.

export const STATIC_KEY_BINDING_DOMAIN = Buffer.from('wicket/noise-static-key/v1\0', 'ascii');

const FIXED_LEN = ED25519_PUBLIC_KEY_LEN + ED25519_SIGNATURE_LEN + 2;

/** The peer as the handshake proved it: identity, attributes from a verified credential. */
export interface ChannelPeer {
  identifier: Identifier;
  /** The peer's Ed25519 identity public key. */
  publicKey: Buffer;
  attributes: Attributes;
  /** When the peer's credential expires (ms since epoch); a long-lived channel should recheck then. */
  credentialExpiresAt: number;
}

export interface HandshakePayload {
  readonly identityPublicKey: Buffer;
  readonly signature: Buffer;
  readonly credential: Buffer;
}

/** The bytes the identity signs to bind itself to a Noise static public key. */
export function staticKeyBindingMessage(noiseStaticPublicKey: Uint8Array): Buffer {
  return Buffer.concat([STATIC_KEY_BINDING_DOMAIN, noiseStaticPublicKey]);
}

/** Our payload: identity, the identity's signature over our Noise static key, our credential. */
export function buildHandshakePayload(identity: Identity, noiseStaticPublicKey: Uint8Array, credential: Buffer): Buffer {
  return encodeHandshakePayload({
    identityPublicKey: identity.publicKey,
    signature: identity.sign(staticKeyBindingMessage(noiseStaticPublicKey)),
    credential,
  });
}

export function encodeHandshakePayload(payload: HandshakePayload): Buffer {
  if (payload.identityPublicKey.length !== ED25519_PUBLIC_KEY_LEN || payload.signature.length !== ED25519_SIGNATURE_LEN) {
    throw wicketError('WICKET_ERR_KEY_INVALID', 'handshake payload needs a 32-byte key and a 64-byte signature');
  }
  if (payload.credential.length > MAX_CREDENTIAL_LEN) {
    throw wicketError('WICKET_ERR_FRAME_TOO_LARGE', `credential is ${payload.credential.length} bytes, cap ${MAX_CREDENTIAL_LEN}`);
  }
  const out = Buffer.allocUnsafe(FIXED_LEN + payload.credential.length);
  payload.identityPublicKey.copy(out, 0);
  payload.signature.copy(out, ED25519_PUBLIC_KEY_LEN);
  out.writeUInt16BE(payload.credential.length, ED25519_PUBLIC_KEY_LEN + ED25519_SIGNATURE_LEN);
  payload.credential.copy(out, FIXED_LEN);
  return out;
}

/** Decodes a peer's payload; any wrong length is WICKET_ERR_HANDSHAKE_PAYLOAD. */
export function decodeHandshakePayload(bytes: Uint8Array): HandshakePayload {
  if (bytes.length < FIXED_LEN) {
    throw wicketError('WICKET_ERR_HANDSHAKE_PAYLOAD', `handshake payload is ${bytes.length} bytes, at least ${FIXED_LEN} needed`);
  }
  const credentialLength = (bytes[FIXED_LEN - 2]! << 8) | bytes[FIXED_LEN - 1]!;
  if (credentialLength > MAX_CREDENTIAL_LEN) {
    throw wicketError('WICKET_ERR_HANDSHAKE_PAYLOAD', `credential length ${credentialLength} over cap ${MAX_CREDENTIAL_LEN}`);
  }
  if (bytes.length !== FIXED_LEN + credentialLength) {
    throw wicketError('WICKET_ERR_HANDSHAKE_PAYLOAD', `handshake payload is ${bytes.length} bytes, its fields need ${FIXED_LEN + credentialLength}`);
  }
  return {
    identityPublicKey: Buffer.from(bytes.subarray(0, ED25519_PUBLIC_KEY_LEN)),
    signature: Buffer.from(bytes.subarray(ED25519_PUBLIC_KEY_LEN, ED25519_PUBLIC_KEY_LEN + ED25519_SIGNATURE_LEN)),
    credential: Buffer.from(bytes.subarray(FIXED_LEN)),
  };
}

export interface PeerCheck {
  /** The peer's Noise static key, as Noise decrypted it from this handshake. */
  readonly remoteStaticPublicKey: Uint8Array;
  readonly authorityPublicKey: Uint8Array;
  readonly now: number;
}

/**
 * Verifies a peer's payload, in this order:
 *  1. it decodes                                          else WICKET_ERR_HANDSHAKE_PAYLOAD
 *  2. the identity signed this handshake's static key     else WICKET_ERR_STATIC_KEY_BINDING
 *  3. the credential is the authority's, unexpired, and names this identity
 *                                                         else WICKET_ERR_CREDENTIAL_*
 *  4. it is a member's, not a relay's own (relay-to-relay links only)
 *                                                         else WICKET_ERR_CREDENTIAL_NOT_MEMBER
 */
export function verifyHandshakePayload(bytes: Uint8Array, check: PeerCheck): ChannelPeer {
  const payload = decodeHandshakePayload(bytes);
  if (!verifySignature(payload.identityPublicKey, staticKeyBindingMessage(check.remoteStaticPublicKey), payload.signature)) {
    throw wicketError('WICKET_ERR_STATIC_KEY_BINDING', "the peer identity's signature does not cover this handshake's static key");
  }
  const identifier = identifierOf(payload.identityPublicKey);
  let credential;
  try {
    credential = verifyCredential(payload.credential, { authorityPublicKey: check.authorityPublicKey, subject: identifier, now: check.now });
  } catch (err) {
    // The credential codec reports shape errors with generic frame codes; here they all mean
    // "the peer's credential does not decode".
    if (isWicketError(err) && err.code.startsWith('WICKET_ERR_CREDENTIAL_')) throw err;
    throw wicketError('WICKET_ERR_CREDENTIAL_MALFORMED', `credential presented by ${identifier} does not decode`, err);
  }
  // Any relay gets such a credential for its own key; an agent's peer must be a member.
  if (credential.attributes[RELAY_ID_ATTRIBUTE] !== undefined) {
    throw wicketError('WICKET_ERR_CREDENTIAL_NOT_MEMBER', `${identifier} presented a relay's credential, not a member's`);
  }
  return {
    identifier,
    publicKey: payload.identityPublicKey,
    attributes: credential.attributes,
    credentialExpiresAt: credential.expiresAt,
  };
}
