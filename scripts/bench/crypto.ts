// npm run bench:crypto — the secure channel's cost beside the raw AEADs, on the same buffers.
//
//   1. Throughput for 64 KiB Noise messages (65,519-byte plaintexts, the largest a message holds):
//      SecureTransport seal + open  vs  raw node:crypto chacha20-poly1305 encrypt + decrypt (what
//      the channel uses at this size), with the ratio (target: the channel keeps at least 80% of
//      raw); raw libsodium beside them for reference.
//   2. Cost per 1 KiB message, seal + open: node:crypto, libsodium (what the channel uses at this
//      size), the channel. See AEAD_LIBSODIUM_BELOW in protocol/limits.ts.
//   3. Full handshakes per second, both roles in one process, including the Ed25519 binding
//      signatures and the credential checks.
//
// Each measurement runs for a fixed wall-clock budget, so the whole run takes a few seconds.
// Rounds alternate between the contenders and the best round of each counts (least disturbed by
// noise).
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import sodium from 'sodium-native';
import { issueCredential } from '../../protocol/credential.js';
import { Identity } from '../../protocol/identity.js';
import { NOISE_MAX_PLAINTEXT } from '../../protocol/limits.js';
import { InitiatorHandshake, ResponderHandshake, type SecureChannelOptions, type SecureTransport } from '../../protocol/secure-channel/index.js';

const ROUNDS = 5;
const ROUND_MS = 300;
const HANDSHAKE_MS = 1_500;
const MESSAGE = NOISE_MAX_PLAINTEXT;
const BUFFERS = 16;

const authority = Identity.generate();
const now = Date.now();
function options(attribute: string): SecureChannelOptions {
  const identity = Identity.generate();
  const credential = issueCredential(authority, { subject: identity.identifier, attributes: { [attribute]: 'true' }, issuedAt: now, ttlMs: 600_000 }).encoded;
  return { identity, credential, authorityPublicKey: authority.publicKey, now: () => Date.now() };
}
const inlet = options('inlet');
const outlet = options('outlet');

function handshake(): { a: SecureTransport; b: SecureTransport } {
  const initiator = new InitiatorHandshake(inlet);
  const responder = new ResponderHandshake(outlet);
  responder.readMessage1(initiator.writeMessage1());
  initiator.readMessage2(responder.writeMessage2());
  responder.readMessage3(initiator.writeMessage3());
  return { a: initiator.finish(), b: responder.finish() };
}

const key = randomBytes(32);
const nonce = Buffer.alloc(12);

/** Runs `work` on one of `inputs` at a time until the budget is spent; returns MB/s of input. */
function measure(inputs: readonly Buffer[], work: (plaintext: Buffer, i: number) => void): number {
  let bytes = 0;
  let i = 0;
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(ROUND_MS) * 1_000_000n;
  let now = start;
  while (now < deadline) {
    for (let k = 0; k < 16; k++, i++) {
      const plaintext = inputs[i % inputs.length]!;
      work(plaintext, i);
      bytes += plaintext.length;
    }
    now = process.hrtime.bigint();
  }
  return bytes / 1e6 / (Number(now - start) / 1e9);
}

function rawNode(plaintext: Buffer, i: number): void {
  nonce.writeUInt32LE(i >>> 0, 4);
  const cipher = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
  const ciphertext = cipher.update(plaintext);
  cipher.final();
  const tag = cipher.getAuthTag();
  const decipher = createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
  decipher.setAuthTag(tag);
  decipher.update(ciphertext);
  decipher.final();
}

function rawSodium(plaintext: Buffer, i: number): void {
  nonce.writeUInt32LE(i >>> 0, 4);
  const sealed = Buffer.allocUnsafe(plaintext.length + 16);
  sodium.crypto_aead_chacha20poly1305_ietf_encrypt(sealed, plaintext, null, null, nonce, key);
  sodium.crypto_aead_chacha20poly1305_ietf_decrypt(Buffer.allocUnsafe(plaintext.length), null, sealed, null, nonce, key);
}

const { a, b } = handshake();
function channel(plaintext: Buffer): void {
  // What the agent does: seal with room for the 5-byte relay DATA header, open the Noise message.
  const sealed = a.seal(plaintext, 5);
  b.open(sealed.subarray(5));
}

/** The best of ROUNDS rounds for each contender (MB/s), after one warm-up round each. */
function best(inputs: readonly Buffer[], contenders: readonly ((plaintext: Buffer, i: number) => void)[]): number[] {
  for (const work of contenders) measure(inputs, work);
  const results = contenders.map(() => 0);
  for (let round = 0; round < ROUNDS; round++) {
    contenders.forEach((work, k) => {
      results[k] = Math.max(results[k]!, measure(inputs, work));
    });
  }
  return results;
}

const large = Array.from({ length: BUFFERS }, () => randomBytes(MESSAGE));
const [bestNode, bestSodium, bestChannel] = best(large, [rawNode, rawSodium, channel]) as [number, number, number];
const small = Array.from({ length: BUFFERS }, () => randomBytes(1024));
const microsPerKiB = best(small, [rawNode, rawSodium, channel]).map((megabytesPerSecond) => 1024 / megabytesPerSecond);

let handshakes = 0;
const handshakeStart = process.hrtime.bigint();
const handshakeDeadline = handshakeStart + BigInt(HANDSHAKE_MS) * 1_000_000n;
let t = handshakeStart;
while (t < handshakeDeadline) {
  handshake();
  handshakes++;
  t = process.hrtime.bigint();
}
const perSecond = handshakes / (Number(t - handshakeStart) / 1e9);

const ratio = bestChannel / bestNode;
console.log(`secure channel, ${MESSAGE}-byte plaintexts (64 KiB Noise messages), best of ${ROUNDS} x ${ROUND_MS} ms`);
console.log(`  raw node:crypto chacha20-poly1305 encrypt+decrypt : ${bestNode.toFixed(0)} MB/s`);
console.log(`  raw libsodium chacha20-poly1305 encrypt+decrypt   : ${bestSodium.toFixed(0)} MB/s`);
console.log(`  SecureTransport seal+open                         : ${bestChannel.toFixed(0)} MB/s`);
console.log(`  ratio channel / raw node:crypto                   : ${(ratio * 100).toFixed(1)} % (target >= 80 %) ${ratio >= 0.8 ? 'OK' : 'BELOW TARGET'}`);
const [nodeMicros, sodiumMicros, channelMicros] = microsPerKiB as [number, number, number];
console.log(`1 KiB messages, seal+open per message: node:crypto ${nodeMicros.toFixed(1)} µs, libsodium ${sodiumMicros.toFixed(1)} µs, SecureTransport ${channelMicros.toFixed(1)} µs`);
console.log(`full XX handshakes incl. binding signatures and credential checks: ${perSecond.toFixed(0)} /s (${(1000 / perSecond).toFixed(2)} ms each)`);
