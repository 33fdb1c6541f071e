import { gcm } from '@noble/ciphers/aes.js';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { x25519 } from '@noble/curves/ed25519.js';
import { blake2b, blake2s } from '@noble/hashes/blake2.js';
import { hkdf as nobleHkdf } from '@noble/hashes/hkdf.js';
import { hmac as nobleHmac } from '@noble/hashes/hmac.js';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import { describe, expect, it } from 'vitest';
import { CipherState, HandshakeState, HASHES, CIPHERS, dh25519, generateKeyPair25519, hkdf, hmac, keyPair25519FromPrivate } from '../../../protocol/noise/index.js';
import { REFERENCE_SUITES, SeededBytes, referenceXXTranscript } from '../../helpers/noble-noise-reference.js';
import { codeOf } from '../secure-channel/channel-fixtures.js';

// Our primitives (node:crypto and libsodium) against the independent noble implementations, on
// seeded inputs.

const P = 2n ** 255n - 19n;

/** A u-coordinate as its 32 little-endian bytes (RFC 7748 §5), for values up to 2^256 - 1. */
function uBytes(u: bigint): Buffer {
  const bytes = Buffer.alloc(32);
  for (let i = 0; i < 32; i++, u >>= 8n) bytes[i] = Number(u & 0xffn);
  return bytes;
}

/**
 * The points of small order (RFC 7748 §7 and libsodium's blocklist): 0, 1, the two of order 8,
 * and p - 1, p, p + 1 (non-canonical encodings of order 2, 0 and 1).
 */
const LOW_ORDER = [
  uBytes(0n),
  uBytes(1n),
  Buffer.from('e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800', 'hex'),
  Buffer.from('5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157', 'hex'),
  uBytes(P - 1n),
  uBytes(P),
  uBytes(P + 1n),
];

const NOBLE_HASH = { SHA256: sha256, SHA512: sha512, BLAKE2b: blake2b, BLAKE2s: blake2s } as const;

describe('AEAD outputs equal @noble/ciphers', () => {
  const random = new SeededBytes('aead-cross-check');
  const lengths = [0, 1, 15, 16, 17, 63, 64, 65, 1000, 4096, 65_519];
  const nonces = [0n, 1n, 255n, 256n, 0x0102030405060708n, 2n ** 32n, 2n ** 64n - 2n];

  for (const name of ['ChaChaPoly', 'AESGCM'] as const) {
    it(`${name}: every length and nonce edge, with and without associated data`, () => {
      for (const length of lengths) {
        for (const n of nonces) {
          const key = random.next(32);
          const ad = random.next(random.int(3) === 0 ? 0 : 32);
          const plaintext = random.next(length);
          const state = new CipherState(CIPHERS[name], key);
          state.setNonce(n);
          const ours = state.encryptWithAd(ad, plaintext);
          const nonce = new Uint8Array(12);
          const view = new DataView(nonce.buffer);
          view.setBigUint64(4, n, name === 'ChaChaPoly');
          const theirs = name === 'ChaChaPoly' ? chacha20poly1305(key, nonce, ad).encrypt(plaintext) : gcm(key, nonce, ad).encrypt(plaintext);
          expect(ours.equals(theirs), `${name} length ${length} nonce ${n}`).toBe(true);
          const back = new CipherState(CIPHERS[name], key);
          back.setNonce(n);
          expect(back.decryptWithAd(ad, theirs).equals(Buffer.from(plaintext))).toBe(true);
        }
      }
    });
  }
});

describe('X25519 outputs equal @noble/curves', () => {
  it('public keys and shared secrets for 64 seeded key pairs', () => {
    const random = new SeededBytes('x25519-cross-check');
    for (let i = 0; i < 64; i++) {
      const a = random.next(32);
      const b = random.next(32);
      const ours = keyPair25519FromPrivate(a);
      const theirs = keyPair25519FromPrivate(b);
      expect(ours.publicKey.equals(x25519.getPublicKey(a))).toBe(true);
      expect(dh25519(ours, theirs.publicKey).equals(x25519.getSharedSecret(a, x25519.getPublicKey(b)))).toBe(true);
    }
  });

  it('freshly generated key pairs: the public key is the one noble derives from the private key', () => {
    for (let i = 0; i < 64; i++) {
      const ours = generateKeyPair25519();
      const peer = generateKeyPair25519();
      expect(ours.publicKey.equals(x25519.getPublicKey(ours.privateKey))).toBe(true);
      expect(dh25519(ours, peer.publicKey).equals(x25519.getSharedSecret(ours.privateKey, peer.publicKey))).toBe(true);
      expect(dh25519(ours, peer.publicKey).equals(dh25519(peer, ours.publicKey))).toBe(true);
    }
  });

  it('a public key with the top bit set (non-canonical encoding) agrees too', () => {
    const random = new SeededBytes('x25519-top-bit');
    for (let i = 0; i < 16; i++) {
      const a = random.next(32);
      const peer = Buffer.from(x25519.getPublicKey(random.next(32)));
      peer[31]! |= 0x80; // RFC 7748 §5: the receiver masks this bit
      expect(dh25519(keyPair25519FromPrivate(a), peer).equals(x25519.getSharedSecret(a, peer))).toBe(true);
    }
  });

  it('u-coordinates p + 2 .. p + 18 (non-canonical, not of small order) are reduced mod p, as noble does', () => {
    const a = new SeededBytes('x25519-non-canonical').next(32);
    for (let k = 2n; k <= 18n; k++) {
      const peer = uBytes(P + k);
      expect(dh25519(keyPair25519FromPrivate(a), peer).equals(x25519.getSharedSecret(a, peer)), `p + ${k}`).toBe(true);
    }
  });

  it('low-order public keys, with and without the top bit, are refused as malformed (noble refuses them too)', () => {
    const random = new SeededBytes('x25519-low-order');
    for (const point of LOW_ORDER) {
      for (const topBit of [false, true]) {
        const peer = Buffer.from(point);
        if (topBit) peer[31]! |= 0x80;
        for (let i = 0; i < 4; i++) {
          const a = random.next(32);
          expect(codeOf(() => dh25519(keyPair25519FromPrivate(a), peer)), peer.toString('hex')).toBe('WICKET_ERR_HANDSHAKE_MALFORMED');
          expect(() => x25519.getSharedSecret(a, peer)).toThrow();
        }
      }
    }
  });
});

describe('HMAC and HKDF equal @noble/hashes (block sizes included)', () => {
  for (const name of ['SHA256', 'SHA512', 'BLAKE2b', 'BLAKE2s'] as const) {
    it(`${name}: HMAC over keys shorter and longer than a block, HKDF = RFC 5869 with salt ck and empty info`, () => {
      const random = new SeededBytes(`hkdf-${name}`);
      const fn = HASHES[name];
      for (const keyLength of [0, 32, 64, fn.blockLen, fn.blockLen + 1, 200]) {
        const key = random.next(keyLength);
        const data = random.next(random.int(300));
        expect(hmac(fn, key, data).equals(nobleHmac(NOBLE_HASH[name], key, data))).toBe(true);
      }
      const ck = random.next(fn.hashLen);
      const ikm = random.next(32);
      const [o1, o2, o3] = hkdf(fn, ck, ikm, 3);
      const expected = nobleHkdf(NOBLE_HASH[name], ikm, ck, new Uint8Array(0), 3 * fn.hashLen);
      expect(Buffer.concat([o1, o2, o3]).equals(expected)).toBe(true);
    });
  }
});

describe('whole XX transcripts equal the noble reference (test/helpers/noble-noise-reference.ts)', () => {
  for (const protocolName of REFERENCE_SUITES) {
    it(`${protocolName}: handshake messages, handshake hash and 8 transport messages`, () => {
      const random = new SeededBytes(`transcript-${protocolName}`);
      const keys = { initStatic: random.next(32), initEphemeral: random.next(32), respStatic: random.next(32), respEphemeral: random.next(32) };
      const prologue = random.next(23);
      const payloads = Array.from({ length: 11 }, (_, i) => random.next(i === 0 ? 0 : random.int(500)));
      const reference = referenceXXTranscript({ protocolName, prologue, ...keys, payloads });

      const initiator = new HandshakeState({ protocolName, initiator: true, prologue, staticPrivateKey: keys.initStatic, ephemeralPrivateKey: keys.initEphemeral });
      const responder = new HandshakeState({ protocolName, initiator: false, prologue, staticPrivateKey: keys.respStatic, ephemeralPrivateKey: keys.respEphemeral });
      const ours: Buffer[] = [];
      for (let i = 0; i < 3; i++) {
        const [writer, reader] = i % 2 === 0 ? [initiator, responder] : [responder, initiator];
        const message = writer.writeMessage(payloads[i]!);
        expect(reader.readMessage(message).equals(Buffer.from(payloads[i]!))).toBe(true);
        ours.push(message);
      }
      expect(initiator.handshakeHash().equals(reference.handshakeHash)).toBe(true);
      expect(responder.remoteStaticPublicKey!.equals(x25519.getPublicKey(keys.initStatic))).toBe(true);
      const a = initiator.split();
      const b = responder.split();
      for (let i = 3; i < payloads.length; i++) {
        const [sender, receiver] = i % 2 === 0 ? [a, b] : [b, a];
        const message = sender.send.encryptWithAd(Buffer.alloc(0), payloads[i]!);
        expect(receiver.receive.decryptWithAd(Buffer.alloc(0), message).equals(Buffer.from(payloads[i]!))).toBe(true);
        ours.push(message);
      }
      expect(ours.map((m) => m.toString('hex'))).toEqual(reference.ciphertexts.map((c) => Buffer.from(c).toString('hex')));
    });
  }
});
