// Writes a folder of fresh Noise XX vectors from the independent noble reference, to check the
// runner on vectors the project has never seen:
//   npx tsx test/vectors/generate-fresh-vectors.ts /tmp/fresh-noise [seed]
//   NOISE_VECTORS=/tmp/fresh-noise npm run test:vectors
import { writeReferenceVectorFolder } from '../helpers/noble-noise-reference.js';

const [folder, seed = `fresh-${Date.now()}`] = process.argv.slice(2);
if (!folder) {
  console.error('usage: generate-fresh-vectors.ts FOLDER [SEED]');
  process.exit(2);
}
const count = writeReferenceVectorFolder(folder, seed, 4);
console.log(`wrote ${count} vectors (seed ${seed}) to ${folder}`);
