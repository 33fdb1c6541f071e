import { describe, expect, it } from 'vitest';
import { destroyKeyPair25519, dh25519, generateKeyPair25519, keyPair25519FromPrivate } from '../../../protocol/noise/dh25519.js';
import { SeededBytes } from '../../helpers/noble-noise-reference.js';
import { codeOf } from '../secure-channel/channel-fixtures.js';

// The X25519 wrapper's own contract (noble-cross-check.test.ts checks its outputs): sizes and
// error codes, and key buffers that are the pair's own to overwrite.

describe('X25519 keys (dh25519.ts)', () => {
  it('a private key of the wrong length is WICKET_ERR_KEY_INVALID; a peer key of the wrong length is WICKET_ERR_HANDSHAKE_MALFORMED', () => {
    for (const length of [0, 31, 33, 64]) {
      expect(codeOf(() => keyPair25519FromPrivate(Buffer.alloc(length, 1))), `private ${length}`).toBe('WICKET_ERR_KEY_INVALID');
      expect(codeOf(() => dh25519(generateKeyPair25519(), Buffer.alloc(length, 9))), `public ${length}`).toBe('WICKET_ERR_HANDSHAKE_MALFORMED');
    }
  });

  it('every key and shared secret is a 32-byte Buffer with memory of its own (not a slice of the shared pool)', () => {
    const a = generateKeyPair25519();
    const b = keyPair25519FromPrivate(new SeededBytes('own-memory').next(32));
    for (const buffer of [a.privateKey, a.publicKey, b.privateKey, b.publicKey, dh25519(a, b.publicKey)]) {
      expect(buffer).toBeInstanceOf(Buffer);
      expect(buffer.length).toBe(32);
      expect(buffer.buffer.byteLength).toBe(32);
    }
  });

  it('fresh key pairs differ', () => {
    const keys = new Set(Array.from({ length: 256 }, () => generateKeyPair25519().privateKey.toString('hex')));
    expect(keys.size).toBe(256);
  });

  it('a pair made from raw bytes copies them: destroying the pair overwrites its copy, never the caller\'s bytes', () => {
    const raw = new SeededBytes('copy').next(32);
    const before = Buffer.from(raw);
    const pair = keyPair25519FromPrivate(raw);
    destroyKeyPair25519(pair);
    expect(pair.privateKey.equals(Buffer.alloc(32))).toBe(true);
    expect(Buffer.from(raw).equals(before)).toBe(true);
  });
});
