import { ByteReader } from './byte-reader.js';
import { ByteWriter } from './byte-writer.js';
import { wicketError } from './errors.js';
import { identifierOf, parseIdentifier, verifySignature, type Identifier, type Identity } from './identity.js';
import {
  CLOCK_SKEW_MS,
  ED25519_PUBLIC_KEY_LEN,
  ED25519_SIGNATURE_LEN,
  MAX_ATTRIBUTE_KEY_LEN,
  MAX_ATTRIBUTE_VALUE_LEN,
  MAX_ATTRIBUTES,
  MAX_CREDENTIAL_LEN,
} from './limits.js';

// A credential is the project authority's signed statement "subject S has attributes A from
// issuedAt to expiresAt". Canonical binary encoding (protocol/README.md, "Credential"):
//
//   body      = version u8 (=1)
//               issuer public key [32]
//               subject identifier string16
//               issuedAt u64 ms, expiresAt u64 ms
//               count u16, then count × (key string16, value string16), keys strictly ascending
//   credential = body, signature [64] = Ed25519(issuer, DOMAIN || body)
//
// Canonical: sorted unique keys, no trailing bytes, so one credential has exactly one encoding
// and any changed byte either fails decoding or fails the signature.

const VERSION = 1;
const DOMAIN = Buffer.from('wicket/credential/v1\0');

export type Attributes = Readonly<Record<string, string>>;

export interface CredentialBody {
  readonly issuerPublicKey: Buffer;
  readonly subject: Identifier;
  readonly issuedAt: number;
  readonly expiresAt: number;
  readonly attributes: Attributes;
}

export interface Credential extends CredentialBody {
  /** The exact encoded bytes (what travels and what was signed, plus signature). */
  readonly encoded: Buffer;
  readonly signature: Buffer;
}

export interface VerifyOptions {
  /** The pinned project authority's public key. */
  readonly authorityPublicKey: Uint8Array;
  /** The identity that presented the credential; it must be the subject. */
  readonly subject: Identifier;
  /** Injected clock (ms since epoch). */
  readonly now: number;
}

function checkAttributes(attributes: Attributes): [string, string][] {
  const entries = Object.entries(attributes).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  if (entries.length > MAX_ATTRIBUTES) throw wicketError('WICKET_ERR_ARGUMENT', `at most ${MAX_ATTRIBUTES} attributes`);
  for (const [k, v] of entries) {
    if (k.length === 0 || Buffer.byteLength(k) > MAX_ATTRIBUTE_KEY_LEN) {
      throw wicketError('WICKET_ERR_ARGUMENT', `attribute key must be 1..${MAX_ATTRIBUTE_KEY_LEN} bytes`);
    }
    if (Buffer.byteLength(v) > MAX_ATTRIBUTE_VALUE_LEN) {
      throw wicketError('WICKET_ERR_ARGUMENT', `attribute ${JSON.stringify(k)} value over ${MAX_ATTRIBUTE_VALUE_LEN} bytes`);
    }
  }
  return entries;
}

function encodeBody(body: CredentialBody): Buffer {
  const w = new ByteWriter()
    .u8(VERSION)
    .fixed(body.issuerPublicKey)
    .string16(body.subject)
    .u64(body.issuedAt)
    .u64(body.expiresAt);
  const entries = checkAttributes(body.attributes);
  w.u16(entries.length);
  for (const [k, v] of entries) w.string16(k).string16(v);
  return w.finish();
}

/** The authority signs a credential for `subject`. */
export function issueCredential(
  authority: Identity,
  fields: { subject: Identifier; attributes: Attributes; issuedAt: number; ttlMs: number },
): Credential {
  const body: CredentialBody = {
    issuerPublicKey: authority.publicKey,
    subject: fields.subject,
    issuedAt: fields.issuedAt,
    expiresAt: fields.issuedAt + fields.ttlMs,
    attributes: Object.freeze({ ...fields.attributes }),
  };
  const bodyBytes = encodeBody(body);
  const signature = authority.sign(Buffer.concat([DOMAIN, bodyBytes]));
  return { ...body, signature, encoded: Buffer.concat([bodyBytes, signature]) };
}

/** Decodes without verifying. Throws WICKET_ERR_CREDENTIAL_MALFORMED (or a length error) on bad input. */
export function decodeCredential(encoded: Uint8Array): Credential {
  if (encoded.length > MAX_CREDENTIAL_LEN) {
    throw wicketError('WICKET_ERR_FRAME_TOO_LARGE', `credential is ${encoded.length} bytes, cap ${MAX_CREDENTIAL_LEN}`);
  }
  const r = new ByteReader(encoded, 'credential', 'WICKET_ERR_CREDENTIAL_MALFORMED');
  const version = r.u8('version');
  if (version !== VERSION) throw wicketError('WICKET_ERR_CREDENTIAL_MALFORMED', `credential version ${version} is not ${VERSION}`);
  const issuerPublicKey = Buffer.from(r.fixed(ED25519_PUBLIC_KEY_LEN, 'issuer'));
  let subject: Identifier;
  try {
    subject = parseIdentifier(r.string16('subject', 128));
  } catch (err) {
    throw wicketError('WICKET_ERR_CREDENTIAL_MALFORMED', 'credential subject is not an identifier', err);
  }
  const issuedAt = r.u64('issuedAt');
  const expiresAt = r.u64('expiresAt');
  const count = r.u16('attribute count');
  if (count > MAX_ATTRIBUTES) throw wicketError('WICKET_ERR_CREDENTIAL_MALFORMED', `credential has ${count} attributes, cap ${MAX_ATTRIBUTES}`);
  const attributes: Record<string, string> = Object.create(null);
  let previous: string | undefined;
  for (let i = 0; i < count; i++) {
    const key = r.string16('attribute key', MAX_ATTRIBUTE_KEY_LEN);
    const value = r.string16('attribute value', MAX_ATTRIBUTE_VALUE_LEN);
    if (key.length === 0 || (previous !== undefined && key <= previous)) {
      throw wicketError('WICKET_ERR_CREDENTIAL_MALFORMED', 'credential attributes are not strictly sorted');
    }
    attributes[key] = value;
    previous = key;
  }
  const bodyLength = r.offset;
  const signature = Buffer.from(r.fixed(ED25519_SIGNATURE_LEN, 'signature'));
  r.end();
  if (expiresAt <= issuedAt) throw wicketError('WICKET_ERR_CREDENTIAL_MALFORMED', 'credential expires before it is issued');
  return {
    issuerPublicKey,
    subject,
    issuedAt,
    expiresAt,
    attributes: Object.freeze(attributes),
    signature,
    encoded: Buffer.from(encoded.subarray(0, bodyLength + ED25519_SIGNATURE_LEN)),
  };
}

/**
 * Decodes and verifies: issuer is the pinned authority, signature, validity window at `now`
 * (with CLOCK_SKEW_MS tolerance for not-yet-valid only; expiry is strict), and subject.
 */
export function verifyCredential(encoded: Uint8Array, options: VerifyOptions): Credential {
  const credential = decodeCredential(encoded);
  if (!Buffer.from(options.authorityPublicKey).equals(credential.issuerPublicKey)) {
    throw wicketError('WICKET_ERR_CREDENTIAL_ISSUER', `credential for ${credential.subject} was issued by ${identifierOf(credential.issuerPublicKey)}, not the project authority`);
  }
  const bodyLength = credential.encoded.length - ED25519_SIGNATURE_LEN;
  const signed = Buffer.concat([DOMAIN, credential.encoded.subarray(0, bodyLength)]);
  if (!verifySignature(credential.issuerPublicKey, signed, credential.signature)) {
    throw wicketError('WICKET_ERR_CREDENTIAL_SIGNATURE', `credential for ${credential.subject} has a bad authority signature`);
  }
  if (options.now >= credential.expiresAt) {
    throw wicketError('WICKET_ERR_CREDENTIAL_EXPIRED', `credential for ${credential.subject} expired at ${new Date(credential.expiresAt).toISOString()}`);
  }
  if (options.now + CLOCK_SKEW_MS < credential.issuedAt) {
    throw wicketError('WICKET_ERR_CREDENTIAL_EXPIRED', `credential for ${credential.subject} is not valid until ${new Date(credential.issuedAt).toISOString()}`);
  }
  if (credential.subject !== options.subject) {
    throw wicketError('WICKET_ERR_CREDENTIAL_SUBJECT', `credential names ${credential.subject} but was presented by ${options.subject}`);
  }
  return credential;
}
