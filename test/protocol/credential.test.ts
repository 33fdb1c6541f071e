import { ed25519 } from '@noble/curves/ed25519';
import { describe, expect, it } from 'vitest';
import { ByteWriter } from '../../protocol/byte-writer.js';
import { decodeCredential, issueCredential, verifyCredential } from '../../protocol/credential.js';
import { type ErrorCode } from '../../protocol/errors.js';
import { Identity, type Identifier } from '../../protocol/identity.js';
import { CLOCK_SKEW_MS, MAX_ATTRIBUTE_VALUE_LEN, MAX_ATTRIBUTES, MAX_CREDENTIAL_LEN } from '../../protocol/limits.js';
import { Secret } from '../../protocol/secret.js';
import { codeOf } from '../helpers/error-code.js';

// Deterministic keys: Ed25519 signing is deterministic, so every encoding below reproduces exactly.
const authority = Identity.fromSeed(new Secret(Buffer.alloc(32, 0xa1)));
const otherAuthority = Identity.fromSeed(new Secret(Buffer.alloc(32, 0xa2)));
const member = Identity.fromSeed(new Secret(Buffer.alloc(32, 0xb1)));
const stranger = Identity.fromSeed(new Secret(Buffer.alloc(32, 0xb2)));
const NOW = 1_700_000_000_000;
const TTL = 10 * 60_000;
const DOMAIN = Buffer.from('wicket/credential/v1\0');

const ATTRIBUTES = { 'openai-inlet': '', team: 'ml', 'wicket:relays': 'openai,backup', note: 'ünïcödé ✓' };

function issue(attributes: Record<string, string> = ATTRIBUTES, by: Identity = authority) {
  return issueCredential(by, { subject: member.identifier, attributes, issuedAt: NOW, ttlMs: TTL });
}

function verifyOptions(overrides: Partial<{ now: number; subject: Identifier; authorityPublicKey: Uint8Array }> = {}) {
  return { authorityPublicKey: authority.publicKey, subject: member.identifier, now: NOW + 1000, ...overrides };
}

/** A credential body written by hand (attributes in the order given), signed by `by`: for shapes issueCredential refuses to make. */
function handMade(fields: {
  version?: number;
  subject?: string;
  issuedAt?: number;
  expiresAt?: number;
  attributes?: [string, string][];
  count?: number;
  rawAttributes?: Buffer;
  by?: Identity;
}): Buffer {
  const by = fields.by ?? authority;
  const attributes = fields.attributes ?? [];
  const w = new ByteWriter()
    .u8(fields.version ?? 1)
    .fixed(by.publicKey)
    .string16(fields.subject ?? member.identifier)
    .u64(fields.issuedAt ?? NOW)
    .u64(fields.expiresAt ?? NOW + TTL)
    .u16(fields.count ?? attributes.length);
  for (const [k, v] of attributes) w.string16(k).string16(v);
  if (fields.rawAttributes) w.fixed(fields.rawAttributes);
  const body = w.finish();
  return Buffer.concat([body, by.sign(Buffer.concat([DOMAIN, body]))]);
}

describe('credential: canonical encoding', () => {
  it('issues a credential that decodes and verifies to the same fields', () => {
    const credential = issue();
    const verified = verifyCredential(credential.encoded, verifyOptions());
    expect(verified.subject).toBe(member.identifier);
    expect(verified.issuerPublicKey.equals(authority.publicKey)).toBe(true);
    expect(verified.issuedAt).toBe(NOW);
    expect(verified.expiresAt).toBe(NOW + TTL);
    expect({ ...verified.attributes }).toEqual(ATTRIBUTES);
    expect(verified.encoded.equals(credential.encoded)).toBe(true);
  });

  it('the same credential always encodes to the same bytes', () => {
    expect(issue().encoded.equals(issue().encoded)).toBe(true);
  });

  it('attribute insertion order does not change the encoding', () => {
    const forward = issue({ a: '1', b: '2', c: '3' });
    const backward = issue({ c: '3', b: '2', a: '1' });
    expect(forward.encoded.equals(backward.encoded)).toBe(true);
  });

  it('re-encoding a decoded credential by issuing it again gives identical bytes', () => {
    const decoded = decodeCredential(issue().encoded);
    const again = issueCredential(authority, {
      subject: decoded.subject,
      attributes: decoded.attributes,
      issuedAt: decoded.issuedAt,
      ttlMs: decoded.expiresAt - decoded.issuedAt,
    });
    expect(again.encoded.equals(issue().encoded)).toBe(true);
  });

  it('the signature is plain Ed25519 over the domain and body, checked by the independent @noble/curves', () => {
    const credential = issue();
    const body = credential.encoded.subarray(0, credential.encoded.length - 64);
    const signed = Buffer.concat([DOMAIN, body]);
    expect(ed25519.verify(credential.signature, signed, authority.publicKey)).toBe(true);
    expect(Buffer.from(ed25519.sign(signed, Buffer.alloc(32, 0xa1))).equals(credential.signature)).toBe(true);
    expect(ed25519.verify(credential.signature, body, authority.publicKey)).toBe(false); // the domain is part of it
  });

  it('an attribute named __proto__ stays plain data (prototype pollution attempt)', () => {
    const attributes = Object.fromEntries([['__proto__', 'polluted'], ['constructor', 'x']]);
    const verified = verifyCredential(issue(attributes).encoded, verifyOptions());
    expect(Object.hasOwn(verified.attributes, '__proto__')).toBe(true);
    expect(verified.attributes['__proto__']).toBe('polluted');
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });
});

describe('credential: tampering and truncation', () => {
  const encoded = issue().encoded;

  it('changing any single bit at every byte position makes verifyCredential fail with a WicketError', () => {
    const allowed = new Set<string>([
      'WICKET_ERR_CREDENTIAL_MALFORMED',
      'WICKET_ERR_CREDENTIAL_SIGNATURE',
      'WICKET_ERR_CREDENTIAL_ISSUER',
      'WICKET_ERR_FRAME_MALFORMED',
      'WICKET_ERR_FRAME_TOO_LARGE',
    ]);
    let checked = 0;
    for (let position = 0; position < encoded.length; position++) {
      for (let bit = 0; bit < 8; bit++) {
        const tampered = Buffer.from(encoded);
        tampered[position]! ^= 1 << bit;
        const code = codeOf(() => verifyCredential(tampered, verifyOptions()));
        expect(allowed.has(code), `byte ${position} bit ${bit}: ${code}`).toBe(true);
        checked++;
      }
    }
    expect(checked).toBe(encoded.length * 8);
  });

  it('replacing any byte with every other value at the signature and the timestamps fails', () => {
    // The regions where a change still decodes cleanly, so only the signature can catch it.
    const signatureStart = encoded.length - 64;
    const timestampsStart = 1 + 32 + 2 + 65;
    const positions = [...Array(16).keys()].map((i) => timestampsStart + i).concat([signatureStart, signatureStart + 31, encoded.length - 1]);
    for (const position of positions) {
      for (let value = 0; value < 256; value++) {
        if (value === encoded[position]) continue;
        const tampered = Buffer.from(encoded);
        tampered[position] = value;
        const code = codeOf(() => verifyCredential(tampered, verifyOptions()));
        expect(code === 'accepted' || code === 'foreign error', `byte ${position} = ${value}: ${code}`).toBe(false);
      }
    }
  });

  it('truncation at every length fails', () => {
    for (let length = 0; length < encoded.length; length++) {
      const code = codeOf(() => verifyCredential(encoded.subarray(0, length), verifyOptions()));
      expect(code === 'accepted' || code === 'foreign error', `length ${length}: ${code}`).toBe(false);
    }
  });

  it('a trailing byte after the signature is refused (one credential, one encoding)', () => {
    expect(codeOf(() => decodeCredential(Buffer.concat([encoded, Buffer.from([0])])))).toBe('WICKET_ERR_FRAME_MALFORMED');
  });
});

describe('credential: verification rules', () => {
  const encoded = issue().encoded;

  it('an expired credential is refused at the injected clock, strictly at expiresAt', () => {
    expect(codeOf(() => verifyCredential(encoded, verifyOptions({ now: NOW + TTL - 1 })))).toBe('accepted');
    expect(codeOf(() => verifyCredential(encoded, verifyOptions({ now: NOW + TTL })))).toBe('WICKET_ERR_CREDENTIAL_EXPIRED');
    expect(codeOf(() => verifyCredential(encoded, verifyOptions({ now: NOW + 365 * 86_400_000 })))).toBe('WICKET_ERR_CREDENTIAL_EXPIRED');
  });

  it('a credential from the future is refused beyond the tolerated clock skew', () => {
    expect(codeOf(() => verifyCredential(encoded, verifyOptions({ now: NOW - CLOCK_SKEW_MS })))).toBe('accepted');
    expect(codeOf(() => verifyCredential(encoded, verifyOptions({ now: NOW - CLOCK_SKEW_MS - 1 })))).toBe('WICKET_ERR_CREDENTIAL_EXPIRED');
  });

  it('a credential from another authority is refused (ISSUER)', () => {
    const foreign = issue(ATTRIBUTES, otherAuthority).encoded;
    expect(codeOf(() => verifyCredential(foreign, verifyOptions()))).toBe('WICKET_ERR_CREDENTIAL_ISSUER');
  });

  it('a forgery naming the project authority but signed by another key is refused (SIGNATURE)', () => {
    const forged = Buffer.from(issue({ admin: 'true' }, otherAuthority).encoded);
    authority.publicKey.copy(forged, 1); // claim the real issuer
    expect(codeOf(() => verifyCredential(forged, verifyOptions()))).toBe('WICKET_ERR_CREDENTIAL_SIGNATURE');
  });

  it("someone else's credential presented by a stranger is refused (SUBJECT)", () => {
    expect(codeOf(() => verifyCredential(encoded, verifyOptions({ subject: stranger.identifier })))).toBe('WICKET_ERR_CREDENTIAL_SUBJECT');
  });

  it('a hand-made body equal to an issued one verifies (the helper is faithful)', () => {
    const sorted = Object.entries(ATTRIBUTES).sort(([a], [b]) => (a < b ? -1 : 1));
    expect(handMade({ attributes: sorted }).equals(encoded)).toBe(true);
  });
});

describe('credential: malformed encodings, each signed by the real authority', () => {
  const cases: [string, Parameters<typeof handMade>[0], ErrorCode][] = [
    ['unsorted attribute keys', { attributes: [['b', '1'], ['a', '2']] }, 'WICKET_ERR_CREDENTIAL_MALFORMED'],
    ['duplicate attribute keys (last one would win)', { attributes: [['admin', 'false'], ['admin', 'true']] }, 'WICKET_ERR_CREDENTIAL_MALFORMED'],
    ['an empty attribute key', { attributes: [['', 'x']] }, 'WICKET_ERR_CREDENTIAL_MALFORMED'],
    ['an unknown format version', { version: 2 }, 'WICKET_ERR_CREDENTIAL_MALFORMED'],
    ['a subject that is not an identifier', { subject: 'I-am-admin' }, 'WICKET_ERR_CREDENTIAL_MALFORMED'],
    ['a subject in uppercase hex', { subject: member.identifier.toUpperCase() }, 'WICKET_ERR_CREDENTIAL_MALFORMED'],
    ['expiresAt equal to issuedAt', { expiresAt: NOW }, 'WICKET_ERR_CREDENTIAL_MALFORMED'],
    ['expiresAt before issuedAt', { expiresAt: NOW - 1 }, 'WICKET_ERR_CREDENTIAL_MALFORMED'],
    [`more than MAX_ATTRIBUTES (${MAX_ATTRIBUTES}) attributes`, { count: MAX_ATTRIBUTES + 1 }, 'WICKET_ERR_CREDENTIAL_MALFORMED'],
    ['an attribute value declaring more than MAX_ATTRIBUTE_VALUE_LEN bytes', { count: 1, rawAttributes: Buffer.from([0, 1, 0x61, 0xff, 0xff]) }, 'WICKET_ERR_FRAME_TOO_LARGE'],
    ['an attribute value that is not UTF-8', { count: 1, rawAttributes: Buffer.from([0, 1, 0x61, 0, 2, 0xc3, 0x28]) }, 'WICKET_ERR_FRAME_MALFORMED'],
  ];
  for (const [name, fields, code] of cases) {
    it(`${name} → ${code}`, () => {
      expect(codeOf(() => verifyCredential(handMade(fields), verifyOptions()))).toBe(code);
    });
  }

  it('a count promising more attributes than present fails (the signature is read as attributes, then runs out)', () => {
    const code = codeOf(() => verifyCredential(handMade({ count: 3, attributes: [['a', '1']] }), verifyOptions()));
    expect(code).toMatch(/^WICKET_ERR_(CREDENTIAL_MALFORMED|FRAME_TOO_LARGE|FRAME_MALFORMED)$/);
  });

  it('the largest safe timestamp (2^53 - 1) still decodes', () => {
    const far = handMade({ issuedAt: NOW, expiresAt: Number.MAX_SAFE_INTEGER });
    expect(decodeCredential(far).expiresAt).toBe(Number.MAX_SAFE_INTEGER);
  });

  it('a u64 timestamp above 2^53 is refused, not rounded', () => {
    const good = issue().encoded;
    const tampered = Buffer.from(good);
    const issuedAtOffset = 1 + 32 + 2 + 65;
    tampered.writeUInt32BE(0x00200000, issuedAtOffset); // high word 2^21 → value ≥ 2^53
    expect(codeOf(() => decodeCredential(tampered))).toBe('WICKET_ERR_FRAME_MALFORMED');
  });

  it(`an encoding over MAX_CREDENTIAL_LEN (${MAX_CREDENTIAL_LEN}) is refused before it is read`, () => {
    expect(codeOf(() => decodeCredential(Buffer.alloc(MAX_CREDENTIAL_LEN + 1)))).toBe('WICKET_ERR_FRAME_TOO_LARGE');
  });

  it('issueCredential refuses what decode would refuse (too many attributes, oversize values, empty keys)', () => {
    const tooMany = Object.fromEntries([...Array(MAX_ATTRIBUTES + 1).keys()].map((i) => [`a${i}`, 'x']));
    expect(codeOf(() => issue(tooMany))).toBe('WICKET_ERR_ARGUMENT');
    expect(codeOf(() => issue({ big: 'x'.repeat(MAX_ATTRIBUTE_VALUE_LEN + 1) }))).toBe('WICKET_ERR_ARGUMENT');
    expect(codeOf(() => issue({ '': 'x' }))).toBe('WICKET_ERR_ARGUMENT');
    const exactlyMax = Object.fromEntries([...Array(MAX_ATTRIBUTES).keys()].map((i) => [`a${String(i).padStart(2, '0')}`, 'x']));
    expect(codeOf(() => verifyCredential(issue(exactlyMax).encoded, verifyOptions()))).toBe('accepted');
  });
});
