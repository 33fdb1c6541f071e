import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REFERENCE_SUITES, writeReferenceVectorFolder } from '../helpers/noble-noise-reference.js';
import { runVectorFolder } from './noise-vector-runner.js';

// "Passes on correct vectors the project has never seen": the independent noble reference
// (test/helpers/noble-noise-reference.ts) writes a fresh folder of vectors from a seed, and the
// runner's core runs the whole folder exactly as it runs $NOISE_VECTORS.

describe('vectors the project has never seen', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'wicket-fresh-vectors-'));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  for (const seed of ['wicket-fresh-vectors-1', 'wicket-fresh-vectors-2']) {
    it(`a fresh noble-generated folder (seed ${seed}) runs clean, every suite`, () => {
      const folder = join(scratch, seed);
      const written = writeReferenceVectorFolder(folder, seed, 3);
      const results = runVectorFolder(folder);
      expect(results.size).toBe(REFERENCE_SUITES.length);
      expect([...results.values()].reduce((a, b) => a + b, 0)).toBe(written);
    });
  }
});
