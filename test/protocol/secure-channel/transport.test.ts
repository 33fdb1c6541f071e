import { describe, expect, it } from 'vitest';
import { CIPHERS, CipherState } from '../../../protocol/noise/index.js';
import { SecureTransport } from '../../../protocol/secure-channel/index.js';
import { SeededBytes } from '../../helpers/noble-noise-reference.js';
import { codeOf, handshake, inletAttributes, outletAttributes, party } from './channel-fixtures.js';

const inlet = party('inlet', inletAttributes);
const outlet = party('outlet', outletAttributes);
const MAX_PLAINTEXT = 65_519;

function channel(rekeyIntervalMessages?: number) {
  const overrides = rekeyIntervalMessages ? { rekeyIntervalMessages } : {};
  const { initiator, responder } = handshake(party('inlet', inletAttributes, overrides).options, party('outlet', outletAttributes, overrides).options);
  return { a: initiator, b: responder };
}

describe('secure transport: round trips', () => {
  it('seeded messages of every size up to 65,519 bytes, split into parts, with headroom, both directions', () => {
    const random = new SeededBytes('transport-round-trip');
    const { a, b } = channel();
    for (let i = 0; i < 60; i++) {
      const size = i === 0 ? 0 : i === 1 ? MAX_PLAINTEXT : random.int(MAX_PLAINTEXT + 1);
      const plaintext = Buffer.from(random.next(size));
      const cut1 = random.int(size + 1);
      const cut2 = cut1 + random.int(size - cut1 + 1);
      const parts = [plaintext.subarray(0, cut1), plaintext.subarray(cut1, cut2), plaintext.subarray(cut2)];
      const headroom = random.int(3) === 0 ? 0 : 5;
      const [sender, receiver] = i % 3 === 0 ? [b, a] : [a, b];
      const sealed = sender.seal(parts, headroom);
      expect(sealed.length).toBe(headroom + size + 16);
      expect(sealed.subarray(0, headroom).equals(Buffer.alloc(headroom))).toBe(true);
      expect(receiver.open(sealed.subarray(headroom)).equals(plaintext), `message ${i}`).toBe(true);
    }
  });

  it('bulk: 64 full 64 KiB messages each way round-trip', () => {
    const random = new SeededBytes('transport-bulk');
    const { a, b } = channel();
    const blocks = Array.from({ length: 4 }, () => Buffer.from(random.next(MAX_PLAINTEXT)));
    for (let i = 0; i < 64; i++) {
      const block = blocks[i % blocks.length]!;
      const toB = a.seal(block);
      expect(toB.length).toBe(65_535);
      expect(b.open(toB).equals(block)).toBe(true);
      expect(a.open(b.seal(block)).equals(block)).toBe(true);
    }
  });

  it('an empty message is a bare 16-byte tag and opens to nothing', () => {
    const { a, b } = channel();
    const sealed = a.seal([]);
    expect(sealed.length).toBe(16);
    expect(b.open(sealed).length).toBe(0);
  });

  it('a plaintext over 65,519 bytes is refused (WICKET_ERR_MESSAGE_TOO_LARGE) and the transport stays usable', () => {
    const { a, b } = channel();
    expect(codeOf(() => a.seal([Buffer.alloc(MAX_PLAINTEXT), Buffer.alloc(1)]))).toBe('WICKET_ERR_MESSAGE_TOO_LARGE');
    expect(a.closed).toBe(false);
    expect(b.open(a.seal(Buffer.from('still fine'))).toString()).toBe('still fine');
  });
});

describe('secure transport: strict counter nonces close the channel', () => {
  it('a gap (a dropped message) fails the next one (WICKET_ERR_DECRYPT) and closes the transport for good', () => {
    const { a, b } = channel();
    a.seal(Buffer.from('dropped by the path'));
    const next = a.seal(Buffer.from('next'));
    expect(codeOf(() => b.open(next))).toBe('WICKET_ERR_DECRYPT');
    expect(b.closed).toBe(true);
    expect(codeOf(() => b.open(next))).toBe('WICKET_ERR_CHANNEL_CLOSED');
    expect(codeOf(() => b.seal(Buffer.from('reply')))).toBe('WICKET_ERR_CHANNEL_CLOSED');
  });

  it('a replayed message is refused (WICKET_ERR_DECRYPT) and closes the transport', () => {
    const { a, b } = channel();
    const first = a.seal(Buffer.from('pay 100'));
    expect(b.open(first).toString()).toBe('pay 100');
    expect(codeOf(() => b.open(first))).toBe('WICKET_ERR_DECRYPT');
    expect(codeOf(() => b.open(a.seal(Buffer.from('genuine next'))))).toBe('WICKET_ERR_CHANNEL_CLOSED');
  });

  it('reordered messages are refused (WICKET_ERR_DECRYPT) and close the transport', () => {
    const { a, b } = channel();
    const m0 = a.seal(Buffer.from('zero'));
    const m1 = a.seal(Buffer.from('one'));
    expect(codeOf(() => b.open(m1))).toBe('WICKET_ERR_DECRYPT');
    expect(codeOf(() => b.open(m0))).toBe('WICKET_ERR_CHANNEL_CLOSED');
  });

  it('a bad tag, a flipped body byte, or a message shorter than a tag is refused (WICKET_ERR_DECRYPT)', () => {
    for (const mutate of [
      (m: Buffer) => void (m[m.length - 1]! ^= 1),
      (m: Buffer) => void (m[0]! ^= 0x80),
      (m: Buffer) => m.subarray(0, 15),
      (m: Buffer) => m.subarray(0, m.length - 1),
    ]) {
      const { a, b } = channel();
      const sealed = a.seal(Buffer.from('attack at dawn'));
      const mutated = mutate(sealed) ?? sealed;
      expect(codeOf(() => b.open(mutated))).toBe('WICKET_ERR_DECRYPT');
      expect(b.closed).toBe(true);
    }
  });

  it('a message from the other direction (reflection) is refused', () => {
    const { a } = channel();
    expect(codeOf(() => a.open(a.seal(Buffer.from('echo'))))).toBe('WICKET_ERR_DECRYPT');
  });

  it('a transport message over 65,535 bytes is refused before any work (WICKET_ERR_MESSAGE_TOO_LARGE) and closes the transport', () => {
    const { b } = channel();
    expect(codeOf(() => b.open(Buffer.alloc(65_536)))).toBe('WICKET_ERR_MESSAGE_TOO_LARGE');
    expect(b.closed).toBe(true);
  });

  it('close() is idempotent and stops both directions', () => {
    const { a } = channel();
    a.close();
    a.close();
    expect(codeOf(() => a.seal(Buffer.from('x')))).toBe('WICKET_ERR_CHANNEL_CLOSED');
  });
});

describe('secure transport: rekey', () => {
  it('rekey keeps working across many intervals on both sides, in bursts and interleaved', () => {
    const random = new SeededBytes('rekey-bursts');
    const { a, b } = channel(3);
    for (let round = 0; round < 40; round++) {
      const burst = 1 + random.int(7);
      const [sender, receiver] = round % 2 === 0 ? [a, b] : [b, a];
      for (let i = 0; i < burst; i++) {
        const plaintext = Buffer.from(random.next(random.int(2_000)));
        expect(receiver.open(sender.seal(plaintext)).equals(plaintext)).toBe(true);
      }
    }
  });

  it('the key really changes after the interval: messages before it match a non-rekeying twin, the next one does not', () => {
    const rekeying = channel(3);
    const twin = channel(); // same fixed keys, default interval
    const message = Buffer.from('same plaintext');
    for (let i = 0; i < 3; i++) expect(rekeying.a.seal(message).equals(twin.a.seal(message))).toBe(true);
    const afterRekey = rekeying.a.seal(message);
    expect(afterRekey.equals(twin.a.seal(message))).toBe(false);
  });

  it('a receiver that rekeys on the same schedule reads the post-rekey message; one that does not, fails', () => {
    const rekeying = channel(3);
    const twin = channel();
    const sealed = Array.from({ length: 5 }, (_, i) => rekeying.a.seal(Buffer.from(`m${i}`)));
    sealed.forEach((m, i) => expect(rekeying.b.open(m).toString()).toBe(`m${i}`));
    for (let i = 0; i < 3; i++) expect(twin.b.open(sealed[i]!).toString()).toBe(`m${i}`);
    expect(codeOf(() => twin.b.open(sealed[3]!))).toBe('WICKET_ERR_DECRYPT');
  });

  it('a rekey interval that is not a positive integer is refused: WICKET_ERR_ARGUMENT', () => {
    const ciphers = () => ({ send: new CipherState(CIPHERS.ChaChaPoly, Buffer.alloc(32, 1)), receive: new CipherState(CIPHERS.ChaChaPoly, Buffer.alloc(32, 2)) });
    for (const bad of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(codeOf(() => new SecureTransport(ciphers(), Buffer.alloc(32), { rekeyIntervalMessages: bad })), String(bad)).toBe('WICKET_ERR_ARGUMENT');
    }
    expect(new SecureTransport(ciphers(), Buffer.alloc(32), { rekeyIntervalMessages: 1 }).closed).toBe(false);
  });
});
