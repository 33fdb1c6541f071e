import { createHash } from 'node:crypto';
import { inspect } from 'node:util';
import { ed25519 } from '@noble/curves/ed25519';
import { describe, expect, it } from 'vitest';
import { isWicketError } from '../../protocol/errors.js';
import { Identity, identifierOf, parseIdentifier, publicKeyObject, verifySignature } from '../../protocol/identity.js';
import { Secret } from '../../protocol/secret.js';
import { seededRandom } from '../helpers/seeded.js';

function randomBytes(random: () => number, n: number): Buffer {
  return Buffer.from(Array.from({ length: n }, () => Math.floor(random() * 256)));
}

function expectCode(fn: () => unknown, code: string): void {
  try {
    fn();
  } catch (err) {
    expect(isWicketError(err), String(err)).toBe(true);
    expect((err as { code: string }).code).toBe(code);
    return;
  }
  expect.fail(`expected ${code}, nothing was thrown`);
}

// RFC 8032 §7.1, TEST 1 and TEST 2.
const RFC8032 = [
  {
    seed: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
    publicKey: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
    message: '',
    signature:
      'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
  },
  {
    seed: '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb',
    publicKey: '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c',
    message: '72',
    signature:
      '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00',
  },
];

describe('identity: keys, signatures and identifiers', () => {
  it('a generated identity signs and verifies its own messages', () => {
    const id = Identity.generate();
    const message = Buffer.from('hello wicket');
    const signature = id.sign(message);
    expect(signature.length).toBe(64);
    expect(id.verify(message, signature)).toBe(true);
    expect(verifySignature(id.publicKey, message, signature)).toBe(true);
    expect(verifySignature(id.publicKey, Buffer.from('hello wickeT'), signature)).toBe(false);
    expect(verifySignature(Identity.generate().publicKey, message, signature)).toBe(false);
  });

  it('reproduces the RFC 8032 Ed25519 test vectors', () => {
    for (const v of RFC8032) {
      const id = Identity.fromSeed(new Secret(Buffer.from(v.seed, 'hex')));
      expect(id.publicKey.toString('hex')).toBe(v.publicKey);
      expect(id.sign(Buffer.from(v.message, 'hex')).toString('hex')).toBe(v.signature);
    }
  });

  it('agrees with the independent @noble/curves Ed25519 on keys and signatures', () => {
    const random = seededRandom(0x1d);
    for (let i = 0; i < 8; i++) {
      const seed = randomBytes(random, 32);
      const message = randomBytes(random, Math.floor(random() * 200));
      const id = Identity.fromSeed(new Secret(seed));
      expect(Buffer.from(ed25519.getPublicKey(seed)).equals(id.publicKey)).toBe(true);
      const ours = id.sign(message);
      expect(Buffer.from(ed25519.sign(message, seed)).equals(ours)).toBe(true);
      expect(ed25519.verify(ours, message, id.publicKey)).toBe(true);
    }
  });

  it('the identifier is I followed by the lowercase hex SHA-256 of the public key', () => {
    const id = Identity.generate();
    expect(id.identifier).toMatch(/^I[0-9a-f]{64}$/);
    expect(id.identifier).toBe(`I${createHash('sha256').update(id.publicKey).digest('hex')}`);
    expect(identifierOf(id.publicKey)).toBe(id.identifier);
    expect(parseIdentifier(id.identifier)).toBe(id.identifier);
    expect(String(id)).toBe(id.identifier);
    expect(JSON.stringify({ id })).toBe(JSON.stringify({ id: id.identifier }));
  });

  it('fromSeed(exportSeed()) round trips to the same key, identifier and signatures', () => {
    const id = Identity.generate();
    const seed = id.exportSeed();
    expect(seed).toBeInstanceOf(Secret);
    expect(seed.reveal().length).toBe(32);
    const again = Identity.fromSeed(seed);
    expect(again.publicKey.equals(id.publicKey)).toBe(true);
    expect(again.identifier).toBe(id.identifier);
    const message = Buffer.from('deterministic');
    expect(again.sign(message).equals(id.sign(message))).toBe(true);
  });

  it('never shows the private seed through String, JSON or inspect', () => {
    const id = Identity.generate();
    const seedHex = id.exportSeed().reveal().toString('hex');
    const seedB64 = id.exportSeed().reveal().toString('base64');
    for (const shown of [String(id), JSON.stringify(id), inspect(id, { showHidden: true, depth: 10 }), String(id.exportSeed())]) {
      expect(shown).not.toContain(seedHex);
      expect(shown).not.toContain(seedB64);
    }
  });

  describe('parseIdentifier refuses malformed input with WICKET_ERR_IDENTIFIER_INVALID', () => {
    const good = Identity.generate().identifier;
    const cases: [string, unknown][] = [
      ['wrong prefix letter', `J${good.slice(1)}`],
      ['lowercase prefix', `i${good.slice(1)}`],
      ['no prefix', good.slice(1)],
      ['one hex digit short', good.slice(0, -1)],
      ['one hex digit long', `${good}0`],
      ['uppercase hex', `I${good.slice(1).toUpperCase()}`],
      ['non-hex digit', `I${'g'.repeat(64)}`],
      ['surrounding space', ` ${good}`],
      ['trailing newline', `${good}\n`],
      ['empty string', ''],
      ['undefined', undefined],
      ['null', null],
      ['a number', 42],
      ['an object', { identifier: good }],
      ['a Buffer', Buffer.from(good)],
    ];
    for (const [name, input] of cases) {
      it(name, () => expectCode(() => parseIdentifier(input as string), 'WICKET_ERR_IDENTIFIER_INVALID'));
    }

    it('does not echo a huge input in its message', () => {
      try {
        parseIdentifier('x'.repeat(100_000));
        expect.fail('accepted');
      } catch (err) {
        expect((err as Error).message.length).toBeLessThan(300);
      }
    });
  });

  describe('keys of the wrong length are WICKET_ERR_KEY_INVALID', () => {
    for (const length of [0, 31, 33, 64]) {
      it(`a ${length}-byte seed`, () => expectCode(() => Identity.fromSeed(new Secret(Buffer.alloc(length, 1))), 'WICKET_ERR_KEY_INVALID'));
      it(`a ${length}-byte public key`, () => {
        expectCode(() => identifierOf(Buffer.alloc(length, 1)), 'WICKET_ERR_KEY_INVALID');
        expectCode(() => publicKeyObject(Buffer.alloc(length, 1)), 'WICKET_ERR_KEY_INVALID');
      });
    }
    it('a public key that is not bytes', () => expectCode(() => identifierOf('abc' as unknown as Uint8Array), 'WICKET_ERR_KEY_INVALID'));
  });

  it('verifySignature never throws, whatever it is handed (seeded garbage included)', () => {
    const id = Identity.generate();
    const message = Buffer.from('m');
    const signature = id.sign(message);
    const junk: unknown[] = [undefined, null, 0, 'abc', {}, [], Buffer.alloc(0), Buffer.alloc(31), Buffer.alloc(65), new Uint8Array(64)];
    for (const bad of junk) {
      expect(verifySignature(bad as Uint8Array, message, signature)).toBe(false);
      expect(verifySignature(id.publicKey, bad as Uint8Array, signature)).toBe(false);
      expect(verifySignature(id.publicKey, message, bad as Uint8Array)).toBe(false);
    }
    const random = seededRandom(0x5161);
    for (let i = 0; i < 200; i++) {
      const key = randomBytes(random, 32);
      const sig = randomBytes(random, 64);
      expect(verifySignature(key, message, sig)).toBe(false);
    }
    // Every single-bit flip of a valid signature fails.
    for (let bit = 0; bit < 64 * 8; bit++) {
      const flipped = Buffer.from(signature);
      flipped[bit >> 3]! ^= 1 << (bit & 7);
      expect(verifySignature(id.publicKey, message, flipped)).toBe(false);
    }
  });
});
