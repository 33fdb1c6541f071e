// Noise Protocol Framework, revision 34: XX over Curve25519, ChaChaPoly or AESGCM, and SHA-256,
// SHA-512, BLAKE2b or BLAKE2s, on node:crypto except X25519 and the ChaChaPoly AEAD, which run on
// libsodium (see dh25519.ts and cipher-functions.ts). Wicket's channel (protocol/secure-channel/) uses
// Noise_XX_25519_ChaChaPoly_SHA256; the other suites exist so the cacophony vectors can be run.
export { CipherState } from './cipher-state.js';
export { SymmetricState } from './symmetric-state.js';
export { HandshakeState, XX_PATTERN, type HandshakeStateOptions, type TransportCiphers, type Token, type HandshakePattern } from './handshake-state.js';
export { cryptoSuite, findCryptoSuite, WICKET_PROTOCOL_NAME, type CryptoSuite } from './crypto-suite.js';
export { CIPHERS, CHACHA_POLY, AES_GCM, type CipherFunctions, type CipherName } from './cipher-functions.js';
export { HASHES, hash, hmac, hkdf, type HashFunctions, type HashName } from './hash-functions.js';
export { dh25519, generateKeyPair25519, keyPair25519FromPrivate, type KeyPair25519 } from './dh25519.js';
