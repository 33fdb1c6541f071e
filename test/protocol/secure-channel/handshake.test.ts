import { describe, expect, it } from 'vitest';
import { InitiatorHandshake, ResponderHandshake } from '../../../protocol/secure-channel/index.js';
import { codeOf, handshake, inletAttributes, outletAttributes, party } from './channel-fixtures.js';

describe('secure channel handshake', () => {
  const inlet = party('inlet', inletAttributes);
  const outlet = party('outlet', outletAttributes);

  it("a completed handshake gives each side the peer's verified identifier and attributes", () => {
    const result = handshake(inlet.options, outlet.options);
    expect(result.responderPeer.identifier).toBe(outlet.identity.identifier);
    expect(result.responderPeer.publicKey.equals(outlet.identity.publicKey)).toBe(true);
    expect({ ...result.responderPeer.attributes }).toEqual(outletAttributes);
    expect(result.initiatorPeer.identifier).toBe(inlet.identity.identifier);
    expect({ ...result.initiatorPeer.attributes }).toEqual(inletAttributes);
    expect(result.initiatorPeer.credentialExpiresAt).toBeGreaterThan(0);
  });

  it('both sides end with the same handshake hash and a working transport in both directions', () => {
    const { initiator, responder } = handshake(inlet.options, outlet.options);
    expect(initiator.handshakeHash.equals(responder.handshakeHash)).toBe(true);
    expect(responder.open(initiator.seal(Buffer.from('ping'))).toString()).toBe('ping');
    expect(initiator.open(responder.seal(Buffer.from('pong'))).toString()).toBe('pong');
  });

  it('the initiator knows the responder before it reveals itself in message 3 (policy check point)', () => {
    const initiator = new InitiatorHandshake(inlet.options);
    const responder = new ResponderHandshake(outlet.options);
    responder.readMessage1(initiator.writeMessage1());
    const peer = initiator.readMessage2(responder.writeMessage2());
    expect(peer.identifier).toBe(outlet.identity.identifier);
    expect(initiator.state).toBe('writeMessage3');
    expect(responder.state).toBe('readMessage3');
  });

  it('message 1 is 32 bytes and messages 2 and 3 never show an identity key or credential in clear', () => {
    const { messages } = handshake(inlet.options, outlet.options);
    expect(messages[0].length).toBe(32);
    for (const message of messages) {
      for (const secret of [inlet.identity.publicKey, outlet.identity.publicKey, inlet.credential.subarray(0, 40), outlet.credential.subarray(0, 40)]) {
        expect(message.includes(secret)).toBe(false);
      }
    }
  });

  it('without injected keys every handshake uses fresh static and ephemeral keys', () => {
    const a = handshake(party('inlet', inletAttributes, { fixedKeys: false }).options, party('outlet', outletAttributes, { fixedKeys: false }).options);
    const b = handshake(party('inlet', inletAttributes, { fixedKeys: false }).options, party('outlet', outletAttributes, { fixedKeys: false }).options);
    expect(a.messages[0].equals(b.messages[0])).toBe(false);
    expect(a.messages[1].subarray(32, 80).equals(b.messages[1].subarray(32, 80))).toBe(false);
    expect(a.initiator.handshakeHash.equals(b.initiator.handshakeHash)).toBe(false);
  });

  it('sides that disagree on the prologue (e.g. the relay name) fail at message 2', () => {
    const initiator = new InitiatorHandshake(party('inlet', inletAttributes, { prologue: Buffer.from('openai') }).options);
    const responder = new ResponderHandshake(party('outlet', outletAttributes, { prologue: Buffer.from('other') }).options);
    responder.readMessage1(initiator.writeMessage1());
    expect(codeOf(() => initiator.readMessage2(responder.writeMessage2()))).toBe('WICKET_ERR_HANDSHAKE_DECRYPT');
  });

  it('matching custom prologues work', () => {
    const prologue = Buffer.from('relay-name:openai');
    const result = handshake(party('inlet', inletAttributes, { prologue }).options, party('outlet', outletAttributes, { prologue }).options);
    expect(result.responderPeer.identifier).toBe(outlet.identity.identifier);
  });

  it('our own credential naming another identity is refused when the handshake is created', () => {
    const other = party('someone-else', {});
    expect(codeOf(() => new InitiatorHandshake({ ...inlet.options, credential: other.credential }))).toBe('WICKET_ERR_CREDENTIAL_SUBJECT');
    expect(codeOf(() => new ResponderHandshake({ ...outlet.options, credential: Buffer.from('junk') }))).toBe('WICKET_ERR_CREDENTIAL_MALFORMED');
  });

  it('calls out of order throw WICKET_ERR_HANDSHAKE_STATE, and finish() works once', () => {
    const initiator = new InitiatorHandshake(inlet.options);
    const responder = new ResponderHandshake(outlet.options);
    expect(codeOf(() => initiator.writeMessage3())).toBe('WICKET_ERR_HANDSHAKE_STATE');
    expect(codeOf(() => responder.writeMessage2())).toBe('WICKET_ERR_HANDSHAKE_STATE');
    expect(codeOf(() => responder.finish())).toBe('WICKET_ERR_HANDSHAKE_STATE');

    const fresh = handshake(inlet.options, outlet.options);
    expect(fresh.initiator.closed).toBe(false);
    const i2 = new InitiatorHandshake(inlet.options);
    const r2 = new ResponderHandshake(outlet.options);
    r2.readMessage1(i2.writeMessage1());
    i2.readMessage2(r2.writeMessage2());
    r2.readMessage3(i2.writeMessage3());
    i2.finish();
    expect(codeOf(() => i2.finish())).toBe('WICKET_ERR_HANDSHAKE_STATE');
    expect(i2.state).toBe('finished');
  });

  it('rejects a bad rekey interval option', () => {
    expect(codeOf(() => new InitiatorHandshake({ ...inlet.options, rekeyIntervalMessages: 0 }))).toBe('WICKET_ERR_ARGUMENT');
  });
});
