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

describe('CipherState: contexts prepared ahead (prepareNext)', () => {
  const KEY = new SeededBytes('prepared').next(32);

  for (const name of ['ChaChaPoly', 'AESGCM'] as const) {
    it(`${name}: messages sealed and opened with prepared contexts match the reference, prepared or not, in any mix`, () => {
      const random = new SeededBytes(`prepared-mix-${name}`);
      const sender = new CipherState(CIPHERS[name], KEY);
      const receiver = new CipherState(CIPHERS[name], KEY);
      for (let n = 0n; n < 40n; n++) {
        // Sometimes prepared, sometimes twice (a no-op), sometimes not at all.
        const prepareSend = random.int(3);
        for (let i = 0; i < prepareSend; i++) sender.prepareNext('encrypt');
        expect(sender.hasPrepared('encrypt')).toBe(prepareSend > 0);
        if (random.int(2) === 0) receiver.prepareNext('decrypt');
        const plaintext = Buffer.from(random.next(random.int(3000)));
        const parts = random.int(2) === 0 ? [plaintext] : [plaintext.subarray(0, 9), plaintext.subarray(9)];
        const out = Buffer.alloc(plaintext.length + 16);
        sender.encryptPartsInto(EMPTY, parts, out, 0);
        expect(out.equals(referenceEncrypt(name, KEY, n, EMPTY, plaintext)), `message ${n}`).toBe(true);
        expect(sender.hasPrepared('encrypt'), 'a prepared context is used once').toBe(false);
        expect(receiver.decryptWithAd(EMPTY, out).equals(plaintext)).toBe(true);
      }
    });
  }

  it('EncryptWithAd uses a prepared context too, and gives the same bytes', () => {
    const state = new CipherState(CIPHERS.ChaChaPoly, KEY);
    state.setNonce(5n);
    state.prepareNext('encrypt');
    expect(state.encryptWithAd(EMPTY, Buffer.from('hello')).equals(referenceEncrypt('ChaChaPoly', KEY, 5n, EMPTY, Buffer.from('hello')))).toBe(true);
    expect(state.hasPrepared('encrypt')).toBe(false);
  });

  it('rekey, setNonce, initializeKey and destroy drop a prepared context: the next message is still right', () => {
    const plaintext = Buffer.from('after the change');
    const rekeyed = new CipherState(CIPHERS.ChaChaPoly, KEY);
    rekeyed.prepareNext('encrypt');
    rekeyed.rekey();
    expect(rekeyed.hasPrepared('encrypt')).toBe(false);
    const twin = new CipherState(CIPHERS.ChaChaPoly, KEY);
    twin.rekey();
    expect(rekeyed.encryptWithAd(EMPTY, plaintext).equals(twin.encryptWithAd(EMPTY, plaintext))).toBe(true);

    const moved = new CipherState(CIPHERS.ChaChaPoly, KEY);
    moved.prepareNext('encrypt');
    moved.setNonce(9n);
    expect(moved.hasPrepared('encrypt')).toBe(false);
    expect(moved.encryptWithAd(EMPTY, plaintext).equals(referenceEncrypt('ChaChaPoly', KEY, 9n, EMPTY, plaintext))).toBe(true);

    const otherKey = new SeededBytes('prepared-other-key').next(32);
    const rekeyedByHand = new CipherState(CIPHERS.ChaChaPoly, KEY);
    rekeyedByHand.prepareNext('encrypt');
    rekeyedByHand.initializeKey(otherKey);
    expect(rekeyedByHand.hasPrepared('encrypt')).toBe(false);
    expect(rekeyedByHand.encryptWithAd(EMPTY, plaintext).equals(referenceEncrypt('ChaChaPoly', otherKey, 0n, EMPTY, plaintext))).toBe(true);

    const destroyed = new CipherState(CIPHERS.ChaChaPoly, KEY);
    destroyed.prepareNext('encrypt');
    destroyed.destroy();
    expect(destroyed.hasPrepared('encrypt')).toBe(false);
    expect(codeOf(() => destroyed.encryptWithAd(EMPTY, plaintext))).toBe('WICKET_ERR_CHANNEL_CLOSED');
    destroyed.prepareNext('decrypt'); // a no-op, not a throw
    expect(destroyed.hasPrepared('decrypt')).toBe(false);
  });

  it('a context prepared for the other direction is not used', () => {
    const sender = new CipherState(CIPHERS.ChaChaPoly, KEY);
    const message = sender.encryptWithAd(EMPTY, Buffer.from('payload'));
    const receiver = new CipherState(CIPHERS.ChaChaPoly, KEY);
    receiver.prepareNext('encrypt');
    expect(receiver.hasPrepared('decrypt')).toBe(false);
    expect(receiver.decryptWithAd(EMPTY, message).toString()).toBe('payload');
  });

  it('a tampered message spends the prepared context: WICKET_ERR_DECRYPT, n unchanged, the genuine one still opens', () => {
    const sender = new CipherState(CIPHERS.ChaChaPoly, KEY);
    const message = sender.encryptWithAd(EMPTY, Buffer.from('payload'));
    const tampered = Buffer.from(message);
    tampered[tampered.length - 1]! ^= 1;
    const receiver = new CipherState(CIPHERS.ChaChaPoly, KEY);
    receiver.prepareNext('decrypt');
    expect(codeOf(() => receiver.decryptWithAd(EMPTY, tampered))).toBe('WICKET_ERR_DECRYPT');
    expect(receiver.nonce).toBe(0n);
    expect(receiver.hasPrepared('decrypt')).toBe(false);
    expect(receiver.decryptWithAd(EMPTY, message).toString()).toBe('payload');
  });

  it('nothing is prepared without a key or at the reserved nonce 2^64-1, and that nonce is still refused', () => {
    const keyless = new CipherState(CIPHERS.ChaChaPoly);
    keyless.prepareNext('encrypt');
    expect(keyless.hasPrepared('encrypt')).toBe(false);
    const exhausted = new CipherState(CIPHERS.ChaChaPoly, KEY);
    exhausted.setNonce(MAX_NONCE);
    exhausted.prepareNext('encrypt');
    expect(exhausted.hasPrepared('encrypt')).toBe(false);
    expect(codeOf(() => exhausted.encryptWithAd(EMPTY, Buffer.from('x')))).toBe('WICKET_ERR_NONCE_EXHAUSTED');
  });
});
