import { describe, expect, it } from 'vitest';
import { HandshakeState } from '../../../protocol/noise/index.js';
import { SeededBytes } from '../../helpers/noble-noise-reference.js';
import { codeOf } from '../secure-channel/channel-fixtures.js';

function pair(label: string, protocolName = 'Noise_XX_25519_ChaChaPoly_SHA256') {
  const random = new SeededBytes(label);
  const prologue = Buffer.from('test');
  return {
    initiator: new HandshakeState({ protocolName, initiator: true, prologue, staticPrivateKey: random.next(32), ephemeralPrivateKey: random.next(32) }),
    responder: new HandshakeState({ protocolName, initiator: false, prologue, staticPrivateKey: random.next(32), ephemeralPrivateKey: random.next(32) }),
  };
}

const EMPTY = Buffer.alloc(0);

describe('HandshakeState (Noise §5.3, pattern XX)', () => {
  it('message sizes follow the pattern: 32, 32+48+payload+16, 48+payload+16', () => {
    const { initiator, responder } = pair('sizes');
    const m1 = initiator.writeMessage(EMPTY);
    responder.readMessage(m1);
    const m2 = responder.writeMessage(Buffer.alloc(10));
    initiator.readMessage(m2);
    const m3 = initiator.writeMessage(Buffer.alloc(20));
    responder.readMessage(m3);
    expect([m1.length, m2.length, m3.length]).toEqual([32, 32 + 48 + 10 + 16, 48 + 20 + 16]);
    expect(initiator.isComplete && responder.isComplete).toBe(true);
    expect(initiator.handshakeHash().equals(responder.handshakeHash())).toBe(true);
  });

  it('a failed read leaves the committed state unchanged, marks the handshake failed, and refuses every later call', () => {
    // Two identical responders: one sees a tampered message 2 first, the other does not.
    const { initiator, responder } = pair('failed-read');
    const twin = pair('failed-read').initiator;
    const m1 = initiator.writeMessage(EMPTY);
    expect(twin.writeMessage(EMPTY).equals(m1)).toBe(true);
    responder.readMessage(m1);
    const m2 = responder.writeMessage(Buffer.from('hello'));
    const tampered = Buffer.from(m2);
    tampered[tampered.length - 1]! ^= 0x80;
    expect(codeOf(() => initiator.readMessage(tampered))).toBe('WICKET_ERR_HANDSHAKE_DECRYPT');
    expect(initiator.failed).toBe(true);
    expect(initiator.remoteStaticPublicKey).toBeUndefined(); // rs from the rejected message was not committed
    expect(codeOf(() => initiator.readMessage(m2))).toBe('WICKET_ERR_HANDSHAKE_STATE');
    expect(codeOf(() => initiator.writeMessage(EMPTY))).toBe('WICKET_ERR_HANDSHAKE_STATE');
    // The genuine message still works on the untouched twin.
    expect(twin.readMessage(m2).toString()).toBe('hello');
  });

  it('fixed keys are copied, never overwritten: the same option buffers give the same handshake twice', () => {
    // HandshakeState overwrites its private keys once the pattern no longer needs them.
    const random = new SeededBytes('fixed-keys-reused');
    const keys = { initStatic: random.next(32), initEphemeral: random.next(32), respStatic: random.next(32), respEphemeral: random.next(32) };
    const before = Object.values(keys).map((key) => Buffer.from(key));
    const run = () => {
      const initiator = new HandshakeState({ initiator: true, staticPrivateKey: keys.initStatic, ephemeralPrivateKey: keys.initEphemeral });
      const responder = new HandshakeState({ initiator: false, staticPrivateKey: keys.respStatic, ephemeralPrivateKey: keys.respEphemeral });
      const m1 = initiator.writeMessage(EMPTY);
      responder.readMessage(m1);
      const m2 = responder.writeMessage(EMPTY);
      initiator.readMessage(m2);
      const m3 = initiator.writeMessage(EMPTY);
      responder.readMessage(m3);
      return Buffer.concat([m1, m2, m3, initiator.handshakeHash()]).toString('hex');
    };
    expect(run()).toBe(run());
    expect(Object.values(keys).map((key) => Buffer.from(key))).toEqual(before);
  });

  it('a responder that fails writing message 2 (low-order initiator ephemeral) is failed and refuses every later call', () => {
    const { responder } = pair('low-order-write');
    responder.readMessage(Buffer.alloc(32));
    expect(codeOf(() => responder.writeMessage(EMPTY))).toBe('WICKET_ERR_HANDSHAKE_MALFORMED');
    expect(responder.failed).toBe(true);
    expect(codeOf(() => responder.writeMessage(EMPTY))).toBe('WICKET_ERR_HANDSHAKE_STATE');
  });

  it('out-of-turn calls throw WICKET_ERR_HANDSHAKE_STATE', () => {
    const { initiator, responder } = pair('turns');
    expect(codeOf(() => responder.writeMessage(EMPTY))).toBe('WICKET_ERR_HANDSHAKE_STATE');
    expect(codeOf(() => initiator.readMessage(Buffer.alloc(32)))).toBe('WICKET_ERR_HANDSHAKE_STATE');
    expect(codeOf(() => initiator.split())).toBe('WICKET_ERR_HANDSHAKE_STATE');
    expect(codeOf(() => initiator.handshakeHash())).toBe('WICKET_ERR_HANDSHAKE_STATE');
  });

  it('short messages are WICKET_ERR_HANDSHAKE_MALFORMED, oversized ones WICKET_ERR_MESSAGE_TOO_LARGE', () => {
    expect(codeOf(() => pair('short').responder.readMessage(Buffer.alloc(31)))).toBe('WICKET_ERR_HANDSHAKE_MALFORMED');
    expect(codeOf(() => pair('big').responder.readMessage(Buffer.alloc(65_536)))).toBe('WICKET_ERR_MESSAGE_TOO_LARGE');
    const { initiator, responder } = pair('short-2');
    responder.readMessage(initiator.writeMessage(EMPTY));
    const m2 = responder.writeMessage(EMPTY);
    expect(codeOf(() => initiator.readMessage(m2.subarray(0, 32 + 48 + 15)))).toBe('WICKET_ERR_HANDSHAKE_MALFORMED');
    expect(codeOf(() => pair('write-big').initiator.writeMessage(Buffer.alloc(65_535 - 31)))).toBe('WICKET_ERR_MESSAGE_TOO_LARGE');
  });

  it('a low-order ephemeral key (all zeros) is refused as malformed', () => {
    const { initiator, responder } = pair('low-order');
    responder.readMessage(initiator.writeMessage(EMPTY));
    const m2 = responder.writeMessage(EMPTY);
    const zeroed = Buffer.from(m2);
    zeroed.fill(0, 0, 32);
    expect(codeOf(() => initiator.readMessage(zeroed))).toBe('WICKET_ERR_HANDSHAKE_MALFORMED');
  });

  it('split() gives crossed directions once, then refuses', () => {
    const { initiator, responder } = pair('split');
    responder.readMessage(initiator.writeMessage(EMPTY));
    initiator.readMessage(responder.writeMessage(EMPTY));
    responder.readMessage(initiator.writeMessage(EMPTY));
    const a = initiator.split();
    const b = responder.split();
    expect(b.receive.decryptWithAd(EMPTY, a.send.encryptWithAd(EMPTY, Buffer.from('i→r'))).toString()).toBe('i→r');
    expect(a.receive.decryptWithAd(EMPTY, b.send.encryptWithAd(EMPTY, Buffer.from('r→i'))).toString()).toBe('r→i');
    expect(codeOf(() => initiator.split())).toBe('WICKET_ERR_HANDSHAKE_STATE');
    expect(initiator.handshakeHash().equals(responder.handshakeHash())).toBe(true);
  });

  it('different prologues fail at message 2', () => {
    const random = new SeededBytes('prologue');
    const initiator = new HandshakeState({ initiator: true, prologue: Buffer.from('a') });
    const responder = new HandshakeState({ initiator: false, prologue: Buffer.from('b'), staticPrivateKey: random.next(32) });
    responder.readMessage(initiator.writeMessage(EMPTY));
    expect(codeOf(() => initiator.readMessage(responder.writeMessage(EMPTY)))).toBe('WICKET_ERR_HANDSHAKE_DECRYPT');
  });

  it('an unsupported protocol name is refused', () => {
    expect(codeOf(() => new HandshakeState({ initiator: true, protocolName: 'Noise_NN_25519_ChaChaPoly_SHA256' }))).toBe('WICKET_ERR_ARGUMENT');
  });
});
