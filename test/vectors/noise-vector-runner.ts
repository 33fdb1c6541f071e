import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findCryptoSuite, HandshakeState, type CipherState } from '../../protocol/noise/index.js';

// The core of the Noise vector runner (test/vectors/noise-vectors.test.ts drives it). It runs a
// vector byte for byte through our HandshakeState / CipherState and throws on the first
// difference. Format (../shared/vectors/noise/SOURCES.md): cacophony JSON, all hex; senders
// alternate, initiator first; messages 0-2 are the XX handshake, the rest use Split()'s ciphers.

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** The folder named by NOISE_VECTORS (relative paths are taken from the repo root), default ../shared/vectors/noise. */
export function vectorFolder(env: NodeJS.ProcessEnv = process.env): string {
  const named = env.NOISE_VECTORS && env.NOISE_VECTORS.length > 0 ? env.NOISE_VECTORS : '../shared/vectors/noise';
  return isAbsolute(named) ? named : resolve(REPO_ROOT, named);
}

export interface VectorMessage {
  payload: string;
  ciphertext: string;
}

export interface NoiseVector {
  protocol_name: string;
  init_prologue: string;
  init_static: string;
  init_ephemeral: string;
  resp_prologue: string;
  resp_static: string;
  resp_ephemeral: string;
  handshake_hash?: string;
  init_psks?: string[];
  resp_psks?: string[];
  messages: VectorMessage[];
}

const HANDSHAKE_MESSAGES = 3;

/** Whether this runner runs a vector: its protocol is one of our XX suites. */
export function isRunnable(vector: { protocol_name?: unknown }): boolean {
  return typeof vector.protocol_name === 'string' && findCryptoSuite(vector.protocol_name) !== undefined;
}

function hex(value: unknown, field: string): Buffer {
  if (typeof value !== 'string' || !/^(?:[0-9a-fA-F]{2})*$/.test(value)) throw new Error(`${field} is not a hex string`);
  return Buffer.from(value, 'hex');
}

function expectEqual(actual: Buffer, expected: Buffer, what: string): void {
  if (!actual.equals(expected)) {
    throw new Error(`${what} differs:\n  expected ${expected.toString('hex')}\n  actual   ${actual.toString('hex')}`);
  }
}

/** Runs one vector; throws an Error naming the first message or hash that differs. */
export function runVector(vector: NoiseVector): void {
  const name = vector.protocol_name;
  if (!isRunnable(vector)) throw new Error(`${String(name)} is not a runnable Noise_XX_25519 vector`);
  for (const field of ['init_psks', 'resp_psks'] as const) {
    const psks = vector[field];
    if (psks !== undefined && (!Array.isArray(psks) || psks.length > 0)) throw new Error(`${name}: XX takes no PSKs but ${field} is not empty`);
  }
  if (!Array.isArray(vector.messages) || vector.messages.length < HANDSHAKE_MESSAGES) {
    throw new Error(`${name}: needs at least the ${HANDSHAKE_MESSAGES} handshake messages`);
  }
  const initiator = new HandshakeState({
    protocolName: name,
    initiator: true,
    prologue: hex(vector.init_prologue, 'init_prologue'),
    staticPrivateKey: hex(vector.init_static, 'init_static'),
    ephemeralPrivateKey: hex(vector.init_ephemeral, 'init_ephemeral'),
  });
  const responder = new HandshakeState({
    protocolName: name,
    initiator: false,
    prologue: hex(vector.resp_prologue, 'resp_prologue'),
    staticPrivateKey: hex(vector.resp_static, 'resp_static'),
    ephemeralPrivateKey: hex(vector.resp_ephemeral, 'resp_ephemeral'),
  });
  let transport: { initiator: { send: CipherState; receive: CipherState }; responder: { send: CipherState; receive: CipherState } } | undefined;

  vector.messages.forEach((message, index) => {
    const payload = hex(message.payload, `messages[${index}].payload`);
    const ciphertext = hex(message.ciphertext, `messages[${index}].ciphertext`);
    const initiatorSends = index % 2 === 0;
    const what = `${name} message ${index} (${initiatorSends ? 'initiator' : 'responder'} → ${initiatorSends ? 'responder' : 'initiator'})`;
    if (index < HANDSHAKE_MESSAGES) {
      const [writer, reader] = initiatorSends ? [initiator, responder] : [responder, initiator];
      expectEqual(writer.writeMessage(payload), ciphertext, `${what} ciphertext`);
      // The reader gets the vector's bytes, not ours: both directions are checked independently.
      expectEqual(reader.readMessage(ciphertext), payload, `${what} decrypted payload`);
      if (index === HANDSHAKE_MESSAGES - 1) {
        if (!initiator.isComplete || !responder.isComplete) throw new Error(`${name}: handshake not complete after message ${index}`);
        expectEqual(initiator.handshakeHash(), responder.handshakeHash(), `${name} handshake hash (initiator vs responder)`);
        if (vector.handshake_hash !== undefined) {
          expectEqual(initiator.handshakeHash(), hex(vector.handshake_hash, 'handshake_hash'), `${name} handshake_hash`);
        }
        transport = { initiator: initiator.split(), responder: responder.split() };
      }
      return;
    }
    const ciphers = transport!;
    const [sender, receiver] = initiatorSends ? [ciphers.initiator, ciphers.responder] : [ciphers.responder, ciphers.initiator];
    expectEqual(sender.send.encryptWithAd(Buffer.alloc(0), payload), ciphertext, `${what} transport ciphertext`);
    expectEqual(receiver.receive.decryptWithAd(Buffer.alloc(0), ciphertext), payload, `${what} transport payload`);
  });
}

export interface VectorFile {
  readonly path: string;
  readonly runnable: NoiseVector[];
  /** Protocol names of vectors this runner does not cover (other patterns or primitives). */
  readonly skipped: string[];
}

/** Reads a vector file; throws if it is not `{ "vectors": [...] }`. */
export function loadVectorFile(path: string): VectorFile {
  const parsed: unknown = JSON.parse(readFileSync(path, 'utf8'));
  const vectors = (parsed as { vectors?: unknown })?.vectors;
  if (!Array.isArray(vectors)) throw new Error(`${path}: no "vectors" array`);
  const runnable: NoiseVector[] = [];
  const skipped: string[] = [];
  for (const vector of vectors as { protocol_name?: unknown }[]) {
    if (isRunnable(vector)) runnable.push(vector as NoiseVector);
    else skipped.push(String(vector?.protocol_name));
  }
  return { path, runnable, skipped };
}

/** Runs every runnable vector in a file. A file with no runnable vector fails. Returns the count run. */
export function runVectorFile(path: string): number {
  const file = loadVectorFile(path);
  if (file.runnable.length === 0) {
    throw new Error(`${path}: no runnable Noise_XX_25519 vector (skipped: ${file.skipped.join(', ') || 'none'})`);
  }
  file.runnable.forEach((vector, index) => {
    try {
      runVector(vector);
    } catch (err) {
      throw new Error(`${path} vector ${index}: ${(err as Error).message}`, { cause: err });
    }
  });
  return file.runnable.length;
}

/** The *.json files in a folder, sorted. */
export function listVectorFiles(folder: string): string[] {
  if (!statSync(folder, { throwIfNoEntry: false })?.isDirectory()) return [];
  return readdirSync(folder)
    .filter((name) => name.endsWith('.json'))
    .sort()
    .map((name) => join(folder, name));
}

/** Runs every file of a folder; a folder without JSON files fails. Returns vectors run per file. */
export function runVectorFolder(folder: string): Map<string, number> {
  const files = listVectorFiles(folder);
  if (files.length === 0) throw new Error(`${folder}: no *.json vector files`);
  return new Map(files.map((path) => [path, runVectorFile(path)]));
}
