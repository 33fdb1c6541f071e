import { wicketError } from '../errors.js';
import { DH_LEN } from '../limits.js';
import { ChannelHandshake, type SecureChannelOptions } from './channel-handshake.js';
import type { ChannelPeer } from './handshake-payload.js';
import type { SecureTransport } from './secure-transport.js';

// The responder's side of Wicket's Noise XX handshake (the outlet answers the inlet):
//
//   readMessage1    -> e                        exactly 32 bytes: payload must be empty
//   writeMessage2   <- e, ee, s, es             payload: our identity, binding, credential
//   readMessage3    -> s, se                    payload: initiator identity, binding, credential
//                   (caller checks its access policy on the returned ChannelPeer here)
//   finish          Split() -> SecureTransport

type ResponderState = 'readMessage1' | 'writeMessage2' | 'readMessage3' | 'finish';

export class ResponderHandshake extends ChannelHandshake<ResponderState> {
  constructor(options: SecureChannelOptions) {
    super(options, false, 'readMessage1');
  }

  /** Message 1: the initiator's ephemeral key. Anything but exactly 32 bytes is refused. */
  readMessage1(message: Buffer): void {
    this.step('readMessage1', 'readMessage1', 'writeMessage2', () => {
      this.checkMessageSize(message, 1);
      if (message.length !== DH_LEN) {
        throw wicketError('WICKET_ERR_HANDSHAKE_MALFORMED', `handshake message 1 is ${message.length} bytes, expected ${DH_LEN}`);
      }
      // -> e
      this.noise.readMessage(message);
    });
  }

  /** Message 2: our ephemeral and static keys and our payload, encrypted. */
  writeMessage2(): Buffer {
    return this.step('writeMessage2', 'writeMessage2', 'readMessage3', () => {
      // <- e, ee, s, es
      return this.noise.writeMessage(this.ownPayload());
    });
  }

  /** Message 3: authenticates the initiator and returns who it is (verify your policy, then finish). */
  readMessage3(message: Buffer): ChannelPeer {
    return this.step('readMessage3', 'readMessage3', 'finish', () => {
      this.checkMessageSize(message, 3);
      // -> s, se (then the payload, decrypted under the key from se)
      const payload = this.noise.readMessage(message);
      return this.verifyPeer(payload);
    });
  }

  /** The transport, after message 3 was read and verified. Callable once. */
  finish(): SecureTransport {
    return this.step('finish', 'finish', 'finished', () => this.transport());
  }
}
