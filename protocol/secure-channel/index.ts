// Wicket's authenticated channel: Noise_XX_25519_ChaChaPoly_SHA256 whose handshake payloads carry
// each side's identity, a signature binding it to the Noise static key, and its credential.
// See protocol/README.md, "Secure channel".
export { InitiatorHandshake } from './initiator-handshake.js';
export { ResponderHandshake } from './responder-handshake.js';
export { SecureTransport, type SecureTransportOptions } from './secure-transport.js';
export { PROLOGUE_PREFIX, type SecureChannelOptions } from './channel-handshake.js';
export {
  STATIC_KEY_BINDING_DOMAIN,
  buildHandshakePayload,
  decodeHandshakePayload,
  encodeHandshakePayload,
  staticKeyBindingMessage,
  verifyHandshakePayload,
  type ChannelPeer,
  type HandshakePayload,
} from './handshake-payload.js';
