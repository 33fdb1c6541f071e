import { describe, expect, it } from 'vitest';
import { issueCredential } from '../../../protocol/credential.js';
import { RELAY_ID_ATTRIBUTE } from '../../../protocol/relay-names.js';
import {
  InitiatorHandshake,
  ResponderHandshake,
  buildHandshakePayload,
  encodeHandshakePayload,
  type SecureChannelOptions,
} from '../../../protocol/secure-channel/index.js';
import {
  NOW,
  TTL_MS,
  codeOf,
  inletAttributes,
  otherAuthority,
  outletAttributes,
  party,
  rawNoise,
  seededIdentity,
} from './channel-fixtures.js';

// Every attack is rejected with its own stable code, and a rejected handshake is dead: every later
// call throws WICKET_ERR_HANDSHAKE_STATE and no message for the peer is ever produced.

const inlet = party('inlet', inletAttributes);
const outlet = party('outlet', outletAttributes);
const EMPTY = Buffer.alloc(0);

/** An initiator that has sent message 1 (its message 1, deterministic from the fixed keys). */
function initiatorAwaiting2(options: SecureChannelOptions = inlet.options): { initiator: InitiatorHandshake; m1: Buffer } {
  const initiator = new InitiatorHandshake(options);
  return { initiator, m1: initiator.writeMessage1() };
}

/** A responder that has answered message 1 with message 2. */
function responderAwaiting3(m1: Buffer, options: SecureChannelOptions = outlet.options): { responder: ResponderHandshake; m2: Buffer } {
  const responder = new ResponderHandshake(options);
  responder.readMessage1(m1);
  return { responder, m2: responder.writeMessage2() };
}

/** A genuine message 3 (and the responder waiting for it), deterministic from the fixed keys. */
function genuineMessage3(): { m3: Buffer; fresh: () => ResponderHandshake } {
  const { initiator, m1 } = initiatorAwaiting2();
  const { m2 } = responderAwaiting3(m1);
  initiator.readMessage2(m2);
  const m3 = initiator.writeMessage3();
  return { m3, fresh: () => responderAwaiting3(m1).responder };
}

/** A hand-driven responder answering `m1` with `payload` as its message 2 payload. */
function forgedMessage2(m1: Buffer, payload: (staticPublicKey: Buffer) => Buffer, label = 'mallory'): Buffer {
  const mallory = rawNoise(label, false);
  mallory.readMessage(m1);
  return mallory.writeMessage(payload(mallory.localStaticPublicKey));
}

/** A hand-driven initiator that completes messages 1-2 with the real responder and sends `payload` in message 3. */
function forgedMessage3(payload: (staticPublicKey: Buffer) => Buffer): { responder: ResponderHandshake; m3: Buffer } {
  const mallory = rawNoise('mallory-initiator', true);
  const { responder, m2 } = responderAwaiting3(mallory.writeMessage(EMPTY));
  mallory.readMessage(m2);
  return { responder, m3: mallory.writeMessage(payload(mallory.localStaticPublicKey)) };
}

describe('credential attacks', () => {
  it('a credential from another authority is refused (WICKET_ERR_CREDENTIAL_ISSUER), in both directions', () => {
    const foreignInlet = party('foreign-inlet', inletAttributes, { issuer: otherAuthority });
    const { initiator, m1 } = initiatorAwaiting2(foreignInlet.options);
    const { responder, m2 } = responderAwaiting3(m1);
    initiator.readMessage2(m2);
    expect(codeOf(() => responder.readMessage3(initiator.writeMessage3()))).toBe('WICKET_ERR_CREDENTIAL_ISSUER');

    const foreignOutlet = party('foreign-outlet', outletAttributes, { issuer: otherAuthority });
    const victim = initiatorAwaiting2();
    const answer = responderAwaiting3(victim.m1, foreignOutlet.options);
    expect(codeOf(() => victim.initiator.readMessage2(answer.m2))).toBe('WICKET_ERR_CREDENTIAL_ISSUER');
  });

  it('an expired credential is refused (WICKET_ERR_CREDENTIAL_EXPIRED)', () => {
    const stale = party('stale-outlet', outletAttributes, { issuedAt: NOW - 2 * TTL_MS });
    const { initiator, m1 } = initiatorAwaiting2();
    expect(codeOf(() => initiator.readMessage2(responderAwaiting3(m1, stale.options).m2))).toBe('WICKET_ERR_CREDENTIAL_EXPIRED');
  });

  it("a credential that expires while the peer's clock moves past it is refused (injected clock)", () => {
    const late = party('inlet', inletAttributes, { now: () => NOW + TTL_MS });
    const { initiator, m1 } = initiatorAwaiting2(late.options);
    expect(codeOf(() => initiator.readMessage2(responderAwaiting3(m1).m2))).toBe('WICKET_ERR_CREDENTIAL_EXPIRED');
  });

  it("a credential that is not valid yet is refused (WICKET_ERR_CREDENTIAL_EXPIRED)", () => {
    const early = party('early-outlet', outletAttributes, { issuedAt: NOW + 5 * 60_000 });
    const { initiator, m1 } = initiatorAwaiting2();
    expect(codeOf(() => initiator.readMessage2(responderAwaiting3(m1, early.options).m2))).toBe('WICKET_ERR_CREDENTIAL_EXPIRED');
  });

  it('a subject that is not the signer: Mallory presents the outlet\'s credential (WICKET_ERR_CREDENTIAL_SUBJECT)', () => {
    const mallory = seededIdentity('mallory');
    const { initiator, m1 } = initiatorAwaiting2();
    const m2 = forgedMessage2(m1, (staticKey) => buildHandshakePayload(mallory, staticKey, outlet.credential));
    expect(codeOf(() => initiator.readMessage2(m2))).toBe('WICKET_ERR_CREDENTIAL_SUBJECT');

    const forged = forgedMessage3((staticKey) => buildHandshakePayload(mallory, staticKey, inlet.credential));
    expect(codeOf(() => forged.responder.readMessage3(forged.m3))).toBe('WICKET_ERR_CREDENTIAL_SUBJECT');
  });

  it('a credential with a forged authority signature is refused (WICKET_ERR_CREDENTIAL_SIGNATURE)', () => {
    const mallory = seededIdentity('mallory');
    const real = issueCredential(seededIdentity('authority'), { subject: mallory.identifier, attributes: outletAttributes, issuedAt: NOW - 1000, ttlMs: TTL_MS });
    const forgedCredential = Buffer.from(real.encoded);
    forgedCredential[forgedCredential.length - 1]! ^= 1;
    const { initiator, m1 } = initiatorAwaiting2();
    const m2 = forgedMessage2(m1, (staticKey) => buildHandshakePayload(mallory, staticKey, forgedCredential));
    expect(codeOf(() => initiator.readMessage2(m2))).toBe('WICKET_ERR_CREDENTIAL_SIGNATURE');
  });

  it('a credential that does not decode is refused (WICKET_ERR_CREDENTIAL_MALFORMED)', () => {
    const mallory = seededIdentity('mallory');
    const { initiator, m1 } = initiatorAwaiting2();
    const m2 = forgedMessage2(m1, (staticKey) => buildHandshakePayload(mallory, staticKey, Buffer.from('not a credential')));
    expect(codeOf(() => initiator.readMessage2(m2))).toBe('WICKET_ERR_CREDENTIAL_MALFORMED');
  });
});

describe('a relay\'s own credential is not a member\'s', () => {
  it('a relay key with a genuine relay credential (wicket:relay) is refused as a channel peer (WICKET_ERR_CREDENTIAL_NOT_MEMBER)', () => {
    // Any relay of the project gets such a credential for its own key (the mesh); it must not open channels.
    const relayKey = seededIdentity('relay-process');
    const credential = issueCredential(seededIdentity('authority'), { subject: relayKey.identifier, attributes: { [RELAY_ID_ATTRIBUTE]: 'r1' }, issuedAt: NOW - 1000, ttlMs: TTL_MS }).encoded;
    const { initiator, m1 } = initiatorAwaiting2();
    const m2 = forgedMessage2(m1, (staticKey) => buildHandshakePayload(relayKey, staticKey, credential));
    expect(codeOf(() => initiator.readMessage2(m2))).toBe('WICKET_ERR_CREDENTIAL_NOT_MEMBER');
  });
});

describe('static key binding attacks', () => {
  it('a signature over another static key is refused (WICKET_ERR_STATIC_KEY_BINDING)', () => {
    const mallory = seededIdentity('mallory');
    const credential = issueCredential(seededIdentity('authority'), { subject: mallory.identifier, attributes: outletAttributes, issuedAt: NOW - 1000, ttlMs: TTL_MS }).encoded;
    const otherStaticKey = rawNoise('another-session', false).localStaticPublicKey;
    const { initiator, m1 } = initiatorAwaiting2();
    const m2 = forgedMessage2(m1, () => buildHandshakePayload(mallory, otherStaticKey, credential));
    expect(codeOf(() => initiator.readMessage2(m2))).toBe('WICKET_ERR_STATIC_KEY_BINDING');
  });

  it("replaying the outlet's genuine payload from another session to impersonate it is refused (WICKET_ERR_STATIC_KEY_BINDING)", () => {
    // Mallory (e.g. a malicious relay) initiates to the real outlet: XX shows any initiator the
    // responder's payload. She then answers a victim inlet with that payload under her own keys.
    const spy = rawNoise('spy', true);
    const { m2: genuine } = responderAwaiting3(spy.writeMessage(EMPTY));
    const stolenPayload = spy.readMessage(genuine);
    const { initiator, m1 } = initiatorAwaiting2();
    const m2 = forgedMessage2(m1, () => stolenPayload);
    expect(codeOf(() => initiator.readMessage2(m2))).toBe('WICKET_ERR_STATIC_KEY_BINDING');
  });

  it('a binding signature by a different identity than the one presented is refused', () => {
    const [mallory, eve] = [seededIdentity('mallory'), seededIdentity('eve')];
    const { initiator, m1 } = initiatorAwaiting2();
    const m2 = forgedMessage2(m1, (staticKey) =>
      encodeHandshakePayload({ identityPublicKey: eve.publicKey, signature: buildHandshakePayload(mallory, staticKey, Buffer.alloc(0)).subarray(32, 96), credential: outlet.credential }),
    );
    expect(codeOf(() => initiator.readMessage2(m2))).toBe('WICKET_ERR_STATIC_KEY_BINDING');
  });
});

describe('malformed payloads', () => {
  it('a payload that does not decode is refused (WICKET_ERR_HANDSHAKE_PAYLOAD): empty, short, trailing bytes, lying length', () => {
    const good = buildHandshakePayload(seededIdentity('mallory'), Buffer.alloc(32), outlet.credential);
    const lyingLength = Buffer.from(good);
    lyingLength.writeUInt16BE(0xffff, 96);
    for (const payload of [EMPTY, good.subarray(0, 97), Buffer.concat([good, Buffer.from([0])]), good.subarray(0, good.length - 1), lyingLength]) {
      const { initiator, m1 } = initiatorAwaiting2();
      expect(codeOf(() => initiator.readMessage2(forgedMessage2(m1, () => payload)))).toBe('WICKET_ERR_HANDSHAKE_PAYLOAD');
    }
  });
});

describe('tampered handshake messages', () => {
  it('flipping any single byte of message 2 is refused (WICKET_ERR_HANDSHAKE_DECRYPT)', () => {
    const { m1 } = initiatorAwaiting2();
    const { m2 } = responderAwaiting3(m1);
    for (let i = 0; i < m2.length; i++) {
      const { initiator } = initiatorAwaiting2();
      const tampered = Buffer.from(m2);
      tampered[i]! ^= 1 << i % 8;
      expect(codeOf(() => initiator.readMessage2(tampered)), `byte ${i}`).toBe('WICKET_ERR_HANDSHAKE_DECRYPT');
    }
  });

  it('flipping any single byte of message 3 is refused (WICKET_ERR_HANDSHAKE_DECRYPT)', () => {
    const { m3, fresh } = genuineMessage3();
    for (let i = 0; i < m3.length; i++) {
      const tampered = Buffer.from(m3);
      tampered[i]! ^= 1 << i % 8;
      expect(codeOf(() => fresh().readMessage3(tampered)), `byte ${i}`).toBe('WICKET_ERR_HANDSHAKE_DECRYPT');
    }
    expect(fresh().readMessage3(m3).identifier).toBe(inlet.identity.identifier); // the untouched one passes
  });

  it('a message 1 of any length but 32, or with a payload, is refused (WICKET_ERR_HANDSHAKE_MALFORMED)', () => {
    const { m1 } = initiatorAwaiting2();
    for (const message of [EMPTY, m1.subarray(0, 31), Buffer.concat([m1, Buffer.from([0])]), Buffer.alloc(32 + 16)]) {
      expect(codeOf(() => new ResponderHandshake(outlet.options).readMessage1(message))).toBe('WICKET_ERR_HANDSHAKE_MALFORMED');
    }
  });
});

describe('truncated handshake messages', () => {
  it('message 2 cut at every length: MALFORMED before its fixed fields end (96 bytes), DECRYPT after', () => {
    const { m1 } = initiatorAwaiting2();
    const { m2 } = responderAwaiting3(m1);
    for (let length = 0; length < m2.length; length++) {
      const { initiator } = initiatorAwaiting2();
      const expected = length < 32 + 48 + 16 ? 'WICKET_ERR_HANDSHAKE_MALFORMED' : 'WICKET_ERR_HANDSHAKE_DECRYPT';
      expect(codeOf(() => initiator.readMessage2(m2.subarray(0, length))), `length ${length}`).toBe(expected);
    }
  });

  it('message 3 cut at every length: MALFORMED before 64 bytes, DECRYPT after', () => {
    const { m3, fresh } = genuineMessage3();
    for (let length = 0; length < m3.length; length++) {
      const expected = length < 48 + 16 ? 'WICKET_ERR_HANDSHAKE_MALFORMED' : 'WICKET_ERR_HANDSHAKE_DECRYPT';
      expect(codeOf(() => fresh().readMessage3(m3.subarray(0, length))), `length ${length}`).toBe(expected);
    }
  });
});

describe('reordered handshake messages', () => {
  it('message 3 delivered where message 1 is expected is refused (WICKET_ERR_HANDSHAKE_MALFORMED)', () => {
    const { m3 } = genuineMessage3();
    expect(codeOf(() => new ResponderHandshake(outlet.options).readMessage1(m3))).toBe('WICKET_ERR_HANDSHAKE_MALFORMED');
  });

  it('message 1 delivered where message 3 is expected is refused (WICKET_ERR_HANDSHAKE_MALFORMED)', () => {
    const { m1 } = initiatorAwaiting2();
    const { responder } = responderAwaiting3(m1);
    expect(codeOf(() => responder.readMessage3(m1))).toBe('WICKET_ERR_HANDSHAKE_MALFORMED');
  });

  it('message 2 reflected back to the responder as message 3 is refused (WICKET_ERR_HANDSHAKE_DECRYPT)', () => {
    const { m1 } = initiatorAwaiting2();
    const { responder, m2 } = responderAwaiting3(m1);
    expect(codeOf(() => responder.readMessage3(m2))).toBe('WICKET_ERR_HANDSHAKE_DECRYPT');
  });

  it('a step taken out of turn is refused (WICKET_ERR_HANDSHAKE_STATE)', () => {
    const { m3 } = genuineMessage3();
    const responder = new ResponderHandshake(outlet.options);
    expect(codeOf(() => responder.readMessage3(m3))).toBe('WICKET_ERR_HANDSHAKE_STATE');
  });
});

describe('replayed handshake messages', () => {
  it('message 2 of an earlier session replayed to a new initiator is refused (WICKET_ERR_HANDSHAKE_DECRYPT)', () => {
    const { m1 } = initiatorAwaiting2();
    const { m2: recorded } = responderAwaiting3(m1);
    const fresh = new InitiatorHandshake(party('inlet', inletAttributes, { fixedKeys: false }).options);
    fresh.writeMessage1();
    expect(codeOf(() => fresh.readMessage2(recorded))).toBe('WICKET_ERR_HANDSHAKE_DECRYPT');
  });

  it('messages 1 and 3 of an earlier session replayed to a new responder are refused at message 3 (WICKET_ERR_HANDSHAKE_DECRYPT)', () => {
    const { initiator, m1 } = initiatorAwaiting2();
    const { m2 } = responderAwaiting3(m1);
    initiator.readMessage2(m2);
    const recorded3 = initiator.writeMessage3();
    // A real responder draws a fresh ephemeral key, so the old message 3 cannot fit the new session.
    const { responder } = responderAwaiting3(m1, party('outlet', outletAttributes, { fixedKeys: false }).options);
    expect(codeOf(() => responder.readMessage3(recorded3))).toBe('WICKET_ERR_HANDSHAKE_DECRYPT');
  });

  it('a message delivered twice to the same handshake is refused the second time (WICKET_ERR_HANDSHAKE_STATE)', () => {
    const { initiator, m1 } = initiatorAwaiting2();
    const { responder, m2 } = responderAwaiting3(m1);
    expect(codeOf(() => responder.readMessage1(m1))).toBe('WICKET_ERR_HANDSHAKE_STATE');
    initiator.readMessage2(m2);
    expect(codeOf(() => initiator.readMessage2(m2))).toBe('WICKET_ERR_HANDSHAKE_STATE');
  });
});

describe('oversized handshake messages', () => {
  it('a handshake message over 65,535 bytes is refused before any work (WICKET_ERR_MESSAGE_TOO_LARGE)', () => {
    const huge = Buffer.alloc(65_536);
    expect(codeOf(() => new ResponderHandshake(outlet.options).readMessage1(huge))).toBe('WICKET_ERR_MESSAGE_TOO_LARGE');
    const { initiator, m1 } = initiatorAwaiting2();
    expect(codeOf(() => initiator.readMessage2(huge))).toBe('WICKET_ERR_MESSAGE_TOO_LARGE');
    const { responder } = responderAwaiting3(m1);
    expect(codeOf(() => responder.readMessage3(huge))).toBe('WICKET_ERR_MESSAGE_TOO_LARGE');
  });
});

describe('a failed handshake tells the peer nothing', () => {
  it('after a rejection every call throws WICKET_ERR_HANDSHAKE_STATE and no message is produced', () => {
    const { initiator, m1 } = initiatorAwaiting2();
    const { m2 } = responderAwaiting3(m1);
    const tampered = Buffer.from(m2);
    tampered[100]! ^= 1;
    expect(codeOf(() => initiator.readMessage2(tampered))).toBe('WICKET_ERR_HANDSHAKE_DECRYPT');
    expect(initiator.state).toBe('failed');
    expect(codeOf(() => initiator.readMessage2(m2))).toBe('WICKET_ERR_HANDSHAKE_STATE'); // not even the genuine one
    expect(codeOf(() => initiator.writeMessage3())).toBe('WICKET_ERR_HANDSHAKE_STATE');
    expect(codeOf(() => initiator.finish())).toBe('WICKET_ERR_HANDSHAKE_STATE');

    const { responder } = responderAwaiting3(m1);
    expect(codeOf(() => responder.readMessage3(Buffer.alloc(100)))).toBe('WICKET_ERR_HANDSHAKE_DECRYPT');
    expect(codeOf(() => responder.finish())).toBe('WICKET_ERR_HANDSHAKE_STATE');
  });

  it('error messages carry no key material', () => {
    const { initiator, m1 } = initiatorAwaiting2();
    const m2 = forgedMessage2(m1, (staticKey) => buildHandshakePayload(seededIdentity('mallory'), staticKey, outlet.credential));
    try {
      initiator.readMessage2(m2);
      expect.unreachable();
    } catch (err) {
      const text = String((err as Error).message);
      for (const key of [inlet.options.staticPrivateKey!, inlet.options.ephemeralPrivateKey!]) {
        expect(text.includes(key.toString('hex'))).toBe(false);
        expect(text.includes(key.toString('base64'))).toBe(false);
      }
    }
  });
});
