import { gcm } from '@noble/ciphers/aes.js';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { describe, expect, it } from 'vitest';
import { CipherState, CIPHERS } from '../../../protocol/noise/index.js';
import { SeededBytes, referenceEncrypt, referenceNonce } from '../../helpers/noble-noise-reference.js';
import { codeOf } from '../secure-channel/channel-fixtures.js';

const MAX_NONCE = 2n ** 64n - 1n;
const EMPTY = new Uint8Array(0);

describe('CipherState (Noise §5.1)', () => {
  it('ChaChaPoly puts the counter little-endian and AESGCM big-endian after 4 zero bytes', () => {
    const n = 0x0102030405060708n;
    expect(Buffer.from(referenceNonce('ChaChaPoly', n)).toString('hex')).toBe('000000000807060504030201');
    expect(Buffer.from(referenceNonce('AESGCM', n)).toString('hex')).toBe('000000000102030405060708');
    const key = new SeededBytes('nonce-layout').next(32);
    for (const name of ['ChaChaPoly', 'AESGCM'] as const) {
      const state = new CipherState(CIPHERS[name], key);
      state.setNonce(n);
      expect(state.encryptWithAd(EMPTY, Buffer.from('x')).equals(referenceEncrypt(name, key, n, EMPTY, Buffer.from('x')))).toBe(true);
    }
  });

  it('without a key, EncryptWithAd and DecryptWithAd pass data through (handshake message 1)', () => {
    const state = new CipherState(CIPHERS.ChaChaPoly);
    expect(state.hasKey()).toBe(false);
    expect(state.encryptWithAd(EMPTY, Buffer.from('hi')).toString()).toBe('hi');
    expect(state.nonce).toBe(0n);
  });

  for (const name of ['ChaChaPoly', 'AESGCM'] as const) {
    it(`${name}: REKEY = first 32 bytes of ENCRYPT(k, 2^64-1, empty, 32 zeros), nonce unchanged (§11.3)`, () => {
      const key = new SeededBytes(`rekey-${name}`).next(32);
      const expectedKey = referenceEncrypt(name, key, MAX_NONCE, EMPTY, new Uint8Array(32)).subarray(0, 32);
      const state = new CipherState(CIPHERS[name], key);
      state.setNonce(7n);
      state.rekey();
      expect(state.nonce).toBe(7n);
      const plaintext = Buffer.from('after rekey');
      const nonce = referenceNonce(name, 7n);
      const expected = name === 'ChaChaPoly' ? chacha20poly1305(expectedKey, nonce).encrypt(plaintext) : gcm(expectedKey, nonce).encrypt(plaintext);
      expect(state.encryptWithAd(EMPTY, plaintext).equals(expected)).toBe(true);
    });
  }

  it('refuses the reserved nonce 2^64-1: WICKET_ERR_NONCE_EXHAUSTED, for encrypt and decrypt', () => {
    const key = new SeededBytes('exhaust').next(32);
    const state = new CipherState(CIPHERS.ChaChaPoly, key);
    state.setNonce(MAX_NONCE - 1n);
    const last = state.encryptWithAd(EMPTY, Buffer.from('last'));
    expect(codeOf(() => state.encryptWithAd(EMPTY, Buffer.from('one too many')))).toBe('WICKET_ERR_NONCE_EXHAUSTED');
    const receiver = new CipherState(CIPHERS.ChaChaPoly, key);
    receiver.setNonce(MAX_NONCE - 1n);
    expect(receiver.decryptWithAd(EMPTY, last).toString()).toBe('last');
    expect(codeOf(() => receiver.decryptWithAd(EMPTY, last))).toBe('WICKET_ERR_NONCE_EXHAUSTED');
  });

  for (const name of ['ChaChaPoly', 'AESGCM'] as const) {
    it(`${name}: the counter carries from 2^32-1 into the high half, and every message matches the reference nonce`, () => {
      const key = new SeededBytes(`carry-${name}`).next(32);
      const state = new CipherState(CIPHERS[name], key);
      const start = 2n ** 32n - 2n;
      state.setNonce(start);
      for (let i = 0n; i < 4n; i++) {
        const plaintext = Buffer.from(`message ${i}`);
        expect(state.encryptWithAd(EMPTY, plaintext).equals(referenceEncrypt(name, key, start + i, EMPTY, plaintext)), `n = ${start + i}`).toBe(true);
      }
      expect(state.nonce).toBe(start + 4n);
    });
  }

  it('a plaintext in parts encrypts exactly like the joined plaintext, gathered (<= 16 KiB) or part by part', () => {
    const random = new SeededBytes('parts');
    for (const total of [0, 1, 9, 1033, 16_383, 16_384, 16_385, 40_000]) {
      const plaintext = Buffer.from(random.next(total));
      const cut = random.int(total + 1);
      const parts = [plaintext.subarray(0, Math.min(9, cut)), plaintext.subarray(Math.min(9, cut), cut), plaintext.subarray(cut)];
      const key = random.next(32);
      const headroom = 3;
      const out = Buffer.alloc(headroom + total + 16, 0xee);
      const written = new CipherState(CIPHERS.ChaChaPoly, key).encryptPartsInto(EMPTY, parts, out, headroom);
      expect(written).toBe(total + 16);
      expect(out.subarray(0, headroom).equals(Buffer.alloc(headroom, 0xee)), 'headroom untouched').toBe(true);
      expect(out.subarray(headroom).equals(new CipherState(CIPHERS.ChaChaPoly, key).encryptWithAd(EMPTY, plaintext)), `total ${total}`).toBe(true);
    }
  });

  it('nonceIsMultipleOf agrees with bigint arithmetic below and above 2^32', () => {
    const state = new CipherState(CIPHERS.ChaChaPoly, new SeededBytes('multiple').next(32));
    for (const n of [0n, 1n, 65_535n, 65_536n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 32n + 65_536n, 3n * 2n ** 40n, MAX_NONCE - 1n]) {
      state.setNonce(n);
      for (const k of [1, 2, 3, 1000, 65_536]) expect(state.nonceIsMultipleOf(k), `${n} % ${k}`).toBe(n % BigInt(k) === 0n);
    }
  });

  it('a failed decryption leaves n unchanged and returns no plaintext', () => {
    const key = new SeededBytes('failed-decrypt').next(32);
    const sender = new CipherState(CIPHERS.ChaChaPoly, key);
    const receiver = new CipherState(CIPHERS.ChaChaPoly, key);
    const message = sender.encryptWithAd(EMPTY, Buffer.from('payload'));
    const tampered = Buffer.from(message);
    tampered[0]! ^= 1;
    expect(codeOf(() => receiver.decryptWithAd(EMPTY, tampered))).toBe('WICKET_ERR_DECRYPT');
    expect(codeOf(() => receiver.decryptWithAd(EMPTY, message.subarray(0, 15)))).toBe('WICKET_ERR_DECRYPT');
    expect(receiver.nonce).toBe(0n);
    expect(receiver.decryptWithAd(EMPTY, message).toString()).toBe('payload');
  });

  it('a destroyed state refuses to work instead of passing plaintext through', () => {
    const state = new CipherState(CIPHERS.ChaChaPoly, new SeededBytes('destroy').next(32));
    state.destroy();
    expect(codeOf(() => state.encryptWithAd(EMPTY, Buffer.from('secret')))).toBe('WICKET_ERR_CHANNEL_CLOSED');
    expect(codeOf(() => state.decryptWithAd(EMPTY, Buffer.alloc(20)))).toBe('WICKET_ERR_CHANNEL_CLOSED');
  });

  it('clone() is independent of the original', () => {
    const state = new CipherState(CIPHERS.AESGCM, new SeededBytes('clone').next(32));
    const copy = state.clone();
    const a = state.encryptWithAd(EMPTY, Buffer.from('m'));
    copy.rekey();
    expect(state.nonce).toBe(1n);
    expect(copy.nonce).toBe(0n);
    const fresh = new CipherState(CIPHERS.AESGCM, new SeededBytes('clone').next(32));
    expect(fresh.encryptWithAd(EMPTY, Buffer.from('m')).equals(a)).toBe(true);
  });
});
