import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REFERENCE_SUITES, SeededBytes, generateReferenceVector } from '../helpers/noble-noise-reference.js';
import {
  listVectorFiles,
  loadVectorFile,
  runVector,
  runVectorFile,
  runVectorFolder,
  vectorFolder,
  type NoiseVector,
  type VectorFile,
} from './noise-vector-runner.js';

// `npm run test:vectors`: every Noise_XX_25519_{ChaChaPoly,AESGCM}_{SHA256,SHA512,BLAKE2b,BLAKE2s}
// vector of every *.json in $NOISE_VECTORS (default ../shared/vectors/noise), byte for byte.

const folder = vectorFolder();
const files = listVectorFiles(folder);

describe(`Noise vectors in ${folder}`, () => {
  it('the folder holds at least one *.json vector file', () => {
    expect(files, `no *.json in ${folder} (set NOISE_VECTORS)`).not.toHaveLength(0);
  });

  for (const path of files) {
    describe(basename(path), () => {
      let file: VectorFile | Error;
      try {
        file = loadVectorFile(path);
      } catch (err) {
        file = err as Error;
      }

      it('holds at least one runnable Noise_XX_25519 vector', () => {
        if (file instanceof Error) throw file;
        expect(file.runnable.length, `skipped: ${file.skipped.join(', ')}`).toBeGreaterThan(0);
      });

      if (!(file instanceof Error)) {
        file.runnable.forEach((vector, index) => {
          it(`${vector.protocol_name} #${index}: handshake and transport reproduce byte for byte`, () => {
            runVector(vector);
          });
        });
      }
    });
  }
});

describe('the vector runner fails when it should', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'wicket-vectors-'));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  // A vector that is known good: the first runnable one of the folder, else a fresh noble one,
  // so these tests still prove something when NOISE_VECTORS names an unusual folder.
  const fromFolder = files.flatMap((path) => {
    try {
      return loadVectorFile(path).runnable;
    } catch {
      return [];
    }
  });
  const good: NoiseVector =
    fromFolder[0] ?? (generateReferenceVector(REFERENCE_SUITES[0]!, new SeededBytes('runner-self-test'), { withHash: true, withPsks: false }) as unknown as NoiseVector);
  const mutate = (edit: (v: NoiseVector) => void): NoiseVector => {
    const copy = structuredClone(good);
    edit(copy);
    return copy;
  };
  const flipHexByte = (text: string, byteIndex: number): string => {
    const at = byteIndex * 2;
    const flipped = (parseInt(text.slice(at, at + 2), 16) ^ 0x01).toString(16).padStart(2, '0');
    return text.slice(0, at) + flipped + text.slice(at + 2);
  };

  it('passes the unmutated vector (so the failures below are caused by the mutation)', () => {
    expect(() => runVector(good)).not.toThrow();
  });

  it('fails when one ciphertext byte is flipped, at the first, middle and last byte of every message', () => {
    good.messages.forEach((message, index) => {
      const length = message.ciphertext.length / 2;
      for (const byteIndex of new Set([0, Math.floor(length / 2), length - 1])) {
        const mutated = mutate((v) => (v.messages[index]!.ciphertext = flipHexByte(message.ciphertext, byteIndex)));
        expect(() => runVector(mutated), `message ${index} byte ${byteIndex}`).toThrow(/differs|WICKET_ERR/);
      }
    });
  });

  it('fails when a payload byte or the handshake hash is changed', () => {
    good.messages.forEach((message, index) => {
      if (message.payload.length === 0) return;
      expect(() => runVector(mutate((v) => (v.messages[index]!.payload = flipHexByte(message.payload, 0))))).toThrow(/differs/);
    });
    if (good.handshake_hash !== undefined) {
      expect(() => runVector(mutate((v) => (v.handshake_hash = flipHexByte(good.handshake_hash!, 5))))).toThrow(/handshake_hash differs/);
    }
  });

  it('fails a file whose flipped ciphertext byte sits in a later vector', () => {
    const path = join(scratch, 'one-bad.json');
    const bad = mutate((v) => (v.messages[4 % v.messages.length]!.ciphertext = flipHexByte(v.messages[4 % v.messages.length]!.ciphertext, 0)));
    writeFileSync(path, JSON.stringify({ vectors: [good, bad] }));
    expect(() => runVectorFile(path)).toThrow(/vector 1/);
  });

  it('fails a file that holds no runnable vector', () => {
    const path = join(scratch, 'none.json');
    writeFileSync(path, JSON.stringify({ vectors: [{ ...good, protocol_name: 'Noise_XX_448_ChaChaPoly_SHA256' }] }));
    expect(() => runVectorFile(path)).toThrow(/no runnable/);
    writeFileSync(path, JSON.stringify({ vectors: [] }));
    expect(() => runVectorFile(path)).toThrow(/no runnable/);
    writeFileSync(path, JSON.stringify({ notVectors: 1 }));
    expect(() => runVectorFile(path)).toThrow(/no "vectors"/);
  });

  it('fails an XX vector that carries PSKs or too few messages', () => {
    expect(() => runVector(mutate((v) => (v.init_psks = ['00'.repeat(32)])))).toThrow(/PSKs/);
    expect(() => runVector(mutate((v) => (v.messages = v.messages.slice(0, 2))))).toThrow(/handshake messages/);
  });

  it('fails a folder with no vector files', () => {
    const empty = mkdtempSync(join(scratch, 'empty-'));
    expect(() => runVectorFolder(empty)).toThrow(/no \*\.json/);
  });
});
