import { ChannelHandshake, type SecureChannelOptions } from './channel-handshake.js';
import type { ChannelPeer } from './handshake-payload.js';
import type { SecureTransport } from './secure-transport.js';

// The initiator's side of Wicket's Noise XX handshake (the inlet dials the outlet):
//
//   writeMessage1   -> e                        payload empty
//   readMessage2    <- e, ee, s, es             payload: responder identity, binding, credential
//                   (caller checks its access policy on the returned ChannelPeer here)
//   writeMessage3   -> s, se                    payload: our identity, binding, credential
//   finish          Split() -> SecureTransport
//
// The initiator reveals its identity only in message 3, encrypted to a responder it has verified.

type InitiatorState = 'writeMessage1' | 'readMessage2' | 'writeMessage3' | 'finish';

export class InitiatorHandshake extends ChannelHandshake<InitiatorState> {
  constructor(options: SecureChannelOptions) {
    super(options, true, 'writeMessage1');
  }

  /** Message 1: our ephemeral key, empty payload (32 bytes). */
  writeMessage1(): Buffer {
    return this.step('writeMessage1', 'writeMessage1', 'readMessage2', () => {
      // -> e
      return this.noise.writeMessage(Buffer.alloc(0));
    });
  }

  /** Message 2: authenticates the responder and returns who it is (verify your policy before message 3). */
  readMessage2(message: Buffer): ChannelPeer {
    return this.step('readMessage2', 'readMessage2', 'writeMessage3', () => {
      this.checkMessageSize(message, 2);
      // <- e, ee, s, es (then the payload, decrypted under the key from es)
      const payload = this.noise.readMessage(message);
      return this.verifyPeer(payload);
    });
  }

  /** Message 3: our static key and payload, encrypted. */
  writeMessage3(): Buffer {
    return this.step('writeMessage3', 'writeMessage3', 'finish', () => {
      // -> s, se
      return this.noise.writeMessage(this.ownPayload());
    });
  }

  /** The transport, after message 3 was written. Callable once. */
  finish(): SecureTransport {
    return this.step('finish', 'finish', 'finished', () => this.transport());
  }
}
