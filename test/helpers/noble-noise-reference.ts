import { gcm } from '@noble/ciphers/aes.js';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { x25519 } from '@noble/curves/ed25519.js';
import { blake2b, blake2s } from '@noble/hashes/blake2.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

// An independent, deliberately small Noise XX reference on the noble primitives (pure JS, audited,
// no OpenSSL), written from the spec (revision 34) without importing anything from protocol/.
// Tests compare our implementation (node:crypto and libsodium) against it: AEAD outputs, X25519 outputs, whole
// handshake transcripts, and fresh vector files "the project has never seen".

type Bytes = Uint8Array;
export type RefCipher = 'ChaChaPoly' | 'AESGCM';
export type RefHash = 'SHA256' | 'SHA512' | 'BLAKE2b' | 'BLAKE2s';

export const REFERENCE_SUITES: readonly string[] = (['ChaChaPoly', 'AESGCM'] as const).flatMap((c) =>
  (['SHA256', 'SHA512', 'BLAKE2b', 'BLAKE2s'] as const).map((h) => `Noise_XX_25519_${c}_${h}`),
);

const HASH_FUNCTIONS = { SHA256: sha256, SHA512: sha512, BLAKE2b: blake2b, BLAKE2s: blake2s } as const;

function concat(...parts: Bytes[]): Bytes {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** The 12-byte nonce: 4 zero bytes, then n as 8 bytes, little-endian (ChaChaPoly) or big-endian (AESGCM). */
export function referenceNonce(cipher: RefCipher, n: bigint): Bytes {
  const nonce = new Uint8Array(12);
  for (let i = 0; i < 8; i++) {
    const byte = Number((n >> BigInt(8 * i)) & 0xffn);
    nonce[cipher === 'ChaChaPoly' ? 4 + i : 11 - i] = byte;
  }
  return nonce;
}

/** ENCRYPT(k, n, ad, plaintext) with noble. */
export function referenceEncrypt(cipher: RefCipher, key: Bytes, n: bigint, ad: Bytes, plaintext: Bytes): Bytes {
  const nonce = referenceNonce(cipher, n);
  return cipher === 'ChaChaPoly' ? chacha20poly1305(key, nonce, ad).encrypt(plaintext) : gcm(key, nonce, ad).encrypt(plaintext);
}

/** X25519 public key of a raw private key, and DH, with noble. */
export const referencePublicKey = (privateKey: Bytes): Bytes => x25519.getPublicKey(privateKey);
export const referenceDh = (privateKey: Bytes, publicKey: Bytes): Bytes => x25519.getSharedSecret(privateKey, publicKey);

export interface ReferenceHandshakeInput {
  protocolName: string;
  prologue: Bytes;
  initStatic: Bytes;
  initEphemeral: Bytes;
  respStatic: Bytes;
  respEphemeral: Bytes;
  /** One payload per message; 0-2 are the handshake, the rest transport, senders alternating. */
  payloads: Bytes[];
}

export interface ReferenceTranscript {
  ciphertexts: Bytes[];
  handshakeHash: Bytes;
}

/**
 * The whole XX transcript. Both parties share h and ck in XX, so one symmetric state suffices:
 * each DH is computed with the writer's private key (DH(a, B) = DH(b, A)).
 *   -> e
 *   <- e, ee, s, es
 *   -> s, se
 */
export function referenceXXTranscript(input: ReferenceHandshakeInput): ReferenceTranscript {
  const match = /^Noise_XX_25519_(ChaChaPoly|AESGCM)_(SHA256|SHA512|BLAKE2b|BLAKE2s)$/.exec(input.protocolName);
  if (!match) throw new Error(`reference does not speak ${input.protocolName}`);
  const cipher = match[1] as RefCipher;
  const H = HASH_FUNCTIONS[match[2] as RefHash];
  const hashLen = H.outputLen;
  const hkdf = (ck: Bytes, ikm: Bytes): [Bytes, Bytes] => {
    const temp = hmac(H, ck, ikm);
    const out1 = hmac(H, temp, Uint8Array.of(1));
    return [out1, hmac(H, temp, concat(out1, Uint8Array.of(2)))];
  };

  const name = new TextEncoder().encode(input.protocolName);
  let h = name.length <= hashLen ? concat(name, new Uint8Array(hashLen - name.length)) : H(name);
  let ck = h;
  let k: Bytes | undefined;
  let n = 0n;
  const mixHash = (data: Bytes): void => void (h = H(concat(h, data)));
  const mixKey = (ikm: Bytes): void => {
    const [nextCk, temp] = hkdf(ck, ikm);
    ck = nextCk;
    k = temp.slice(0, 32);
    n = 0n;
  };
  const encryptAndHash = (plaintext: Bytes): Bytes => {
    const out = k === undefined ? plaintext : referenceEncrypt(cipher, k, n++, h, plaintext);
    mixHash(out);
    return out;
  };

  const ie = { priv: input.initEphemeral, pub: referencePublicKey(input.initEphemeral) };
  const is = { priv: input.initStatic, pub: referencePublicKey(input.initStatic) };
  const re = { priv: input.respEphemeral, pub: referencePublicKey(input.respEphemeral) };
  const rs = { priv: input.respStatic, pub: referencePublicKey(input.respStatic) };
  const payload = (i: number): Bytes => input.payloads[i] ?? new Uint8Array(0);

  mixHash(input.prologue);
  const ciphertexts: Bytes[] = [];
  // -> e
  mixHash(ie.pub);
  ciphertexts.push(concat(ie.pub, encryptAndHash(payload(0))));
  // <- e, ee, s, es
  mixHash(re.pub);
  mixKey(referenceDh(re.priv, ie.pub));
  const encryptedRs = encryptAndHash(rs.pub);
  mixKey(referenceDh(rs.priv, ie.pub));
  ciphertexts.push(concat(re.pub, encryptedRs, encryptAndHash(payload(1))));
  // -> s, se
  const encryptedIs = encryptAndHash(is.pub);
  mixKey(referenceDh(is.priv, re.pub));
  ciphertexts.push(concat(encryptedIs, encryptAndHash(payload(2))));
  // Split()
  const [k1, k2] = hkdf(ck, new Uint8Array(0)).map((key) => key.slice(0, 32)) as [Bytes, Bytes];
  const nonces = { initiator: 0n, responder: 0n };
  for (let i = 3; i < input.payloads.length; i++) {
    const initiatorSends = i % 2 === 0;
    const key = initiatorSends ? k1 : k2;
    const nonce = initiatorSends ? nonces.initiator++ : nonces.responder++;
    ciphertexts.push(referenceEncrypt(cipher, key, nonce, new Uint8Array(0), payload(i)));
  }
  return { ciphertexts, handshakeHash: h };
}

/** Deterministic bytes from a seed (SHA-256 in counter mode), so generated vectors reproduce. */
export class SeededBytes {
  #counter = 0;
  constructor(private readonly seed: string) {}
  next(length: number): Bytes {
    const out = new Uint8Array(length);
    for (let at = 0; at < length; at += 32) {
      const block = sha256(new TextEncoder().encode(`${this.seed}/${this.#counter++}`));
      out.set(block.subarray(0, Math.min(32, length - at)), at);
    }
    return out;
  }
  int(maxExclusive: number): number {
    const b = this.next(4);
    return (((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0) % maxExclusive;
  }
}

const toHex = (b: Bytes): string => Buffer.from(b).toString('hex');

/** One fresh vector in the cacophony JSON format, for a suite, from seeded randomness. */
export function generateReferenceVector(protocolName: string, random: SeededBytes, options: { withHash: boolean; withPsks: boolean }): Record<string, unknown> {
  const prologue = random.next(random.int(40));
  const keys = { initStatic: random.next(32), initEphemeral: random.next(32), respStatic: random.next(32), respEphemeral: random.next(32) };
  const count = 3 + 1 + random.int(6);
  const payloads = Array.from({ length: count }, () => random.next(random.int(4) === 0 ? 0 : random.int(300)));
  const transcript = referenceXXTranscript({ protocolName, prologue, ...keys, payloads });
  return {
    protocol_name: protocolName,
    init_prologue: toHex(prologue),
    ...(options.withPsks ? { init_psks: [] } : {}),
    init_static: toHex(keys.initStatic),
    init_ephemeral: toHex(keys.initEphemeral),
    resp_prologue: toHex(prologue),
    ...(options.withPsks ? { resp_psks: [] } : {}),
    resp_static: toHex(keys.respStatic),
    resp_ephemeral: toHex(keys.respEphemeral),
    ...(options.withHash ? { handshake_hash: toHex(transcript.handshakeHash) } : {}),
    messages: payloads.map((p, i) => ({ payload: toHex(p), ciphertext: toHex(transcript.ciphertexts[i]!) })),
  };
}

/**
 * Writes a folder of fresh vector files: every suite, several vectors each, some without
 * handshake_hash and some with empty PSK lists, plus a vector of another pattern the runner must
 * skip. Returns the number of runnable vectors written.
 */
export function writeReferenceVectorFolder(folder: string, seed: string, perSuite = 3): number {
  mkdirSync(folder, { recursive: true });
  const random = new SeededBytes(seed);
  let written = 0;
  REFERENCE_SUITES.forEach((suite, index) => {
    const vectors: Record<string, unknown>[] = [];
    for (let i = 0; i < perSuite; i++) {
      vectors.push(generateReferenceVector(suite, random, { withHash: i % 2 === 0, withPsks: i === 1 }));
      written++;
    }
    if (index === 0) vectors.push({ protocol_name: 'Noise_NN_25519_ChaChaPoly_SHA256', messages: [] });
    writeFileSync(join(folder, `fresh-${suite}.json`), JSON.stringify({ vectors }, null, 1));
  });
  return written;
}
