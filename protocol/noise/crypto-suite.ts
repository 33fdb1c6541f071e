import { wicketError } from '../errors.js';
import { CIPHERS, type CipherFunctions, type CipherName } from './cipher-functions.js';
import { HASHES, type HashFunctions, type HashName } from './hash-functions.js';

// A Noise protocol name (Noise §8) picks the handshake pattern, DH, cipher and hash functions.
// We implement the XX pattern over Curve25519 with either cipher and any of the four hashes:
//   Noise_XX_25519_{ChaChaPoly,AESGCM}_{SHA256,SHA512,BLAKE2b,BLAKE2s}
// Wicket's own channel uses exactly one of them, WICKET_PROTOCOL_NAME.

export interface CryptoSuite {
  readonly protocolName: string;
  readonly cipher: CipherFunctions;
  readonly hash: HashFunctions;
}

/** The suite Wicket's secure channel speaks (DESIGN.md, "Protocol decisions"). */
export const WICKET_PROTOCOL_NAME = 'Noise_XX_25519_ChaChaPoly_SHA256';

const PROTOCOL_NAME = /^Noise_XX_25519_(ChaChaPoly|AESGCM)_(SHA256|SHA512|BLAKE2b|BLAKE2s)$/;

/** The suite for a supported protocol name, or undefined for any other name. */
export function findCryptoSuite(protocolName: string): CryptoSuite | undefined {
  const match = PROTOCOL_NAME.exec(protocolName);
  if (!match) return undefined;
  return { protocolName, cipher: CIPHERS[match[1] as CipherName], hash: HASHES[match[2] as HashName] };
}

/** The suite for a protocol name; an unsupported name is a programming error (WICKET_ERR_ARGUMENT). */
export function cryptoSuite(protocolName: string): CryptoSuite {
  const suite = findCryptoSuite(protocolName);
  if (!suite) throw wicketError('WICKET_ERR_ARGUMENT', `unsupported Noise protocol ${JSON.stringify(protocolName.slice(0, 80))}`);
  return suite;
}
