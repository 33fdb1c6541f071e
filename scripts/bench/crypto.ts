// npm run bench:crypto — the secure channel's cost beside raw node:crypto, on the same buffers.
//
//   1. Throughput for 64 KiB Noise messages (65,519-byte plaintexts, the largest a message holds):
//      SecureTransport seal + open  vs  raw chacha20-poly1305 encrypt + decrypt (createCipheriv),
//      with the ratio (target: the channel keeps at least 80% of raw).
//   2. Full handshakes per second, both roles in one process, including the Ed25519 binding
//      signatures and the credential checks.
//
// Each measurement runs for a fixed wall-clock budget, so the whole run takes a few seconds.
// Rounds alternate raw / channel and the best round of each counts (least disturbed by noise).
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
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

const plaintexts = Array.from({ length: BUFFERS }, () => randomBytes(MESSAGE));
const key = randomBytes(32);
const nonce = Buffer.alloc(12);

/** Runs `work` (one message) until the budget is spent; returns MB/s of plaintext. */
function measure(work: (plaintext: Buffer, i: number) => void): number {
  let bytes = 0;
  let i = 0;
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(ROUND_MS) * 1_000_000n;
  let now = start;
  while (now < deadline) {
    for (let k = 0; k < 16; k++, i++) {
      const plaintext = plaintexts[i % BUFFERS]!;
      work(plaintext, i);
      bytes += plaintext.length;
    }
    now = process.hrtime.bigint();
  }
  return bytes / 1e6 / (Number(now - start) / 1e9);
}

function raw(plaintext: Buffer, i: number): void {
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

const { a, b } = handshake();
function channel(plaintext: Buffer): void {
  // What the agent does: seal with room for the 5-byte relay DATA header, open the Noise message.
  const sealed = a.seal(plaintext, 5);
  b.open(sealed.subarray(5));
}

// Warm up both paths (JIT, OpenSSL contexts).
measure(raw);
measure(channel);
let bestRaw = 0;
let bestChannel = 0;
for (let round = 0; round < ROUNDS; round++) {
  bestRaw = Math.max(bestRaw, measure(raw));
  bestChannel = Math.max(bestChannel, measure(channel));
}

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

const ratio = bestChannel / bestRaw;
console.log(`secure channel, ${MESSAGE}-byte plaintexts (64 KiB Noise messages), best of ${ROUNDS} x ${ROUND_MS} ms`);
console.log(`  raw node:crypto chacha20-poly1305 encrypt+decrypt : ${bestRaw.toFixed(0)} MB/s`);
console.log(`  SecureTransport seal+open                         : ${bestChannel.toFixed(0)} MB/s`);
console.log(`  ratio channel / raw                               : ${(ratio * 100).toFixed(1)} % (target >= 80 %) ${ratio >= 0.8 ? 'OK' : 'BELOW TARGET'}`);
console.log(`full XX handshakes incl. binding signatures and credential checks: ${perSecond.toFixed(0)} /s (${(1000 / perSecond).toFixed(2)} ms each)`);
