import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Imports dist/cli/<name>.js, or says how to build it (instead of a bare ERR_MODULE_NOT_FOUND). */
export async function launch(name) {
  const entry = fileURLToPath(new URL(`../dist/cli/${name}.js`, import.meta.url));
  if (!existsSync(entry)) {
    process.stderr.write(`error: WICKET_ERR_INTERNAL: ${name} is not built (${entry} is missing): run \`npm run build\` (npm ci runs it)\n`);
    process.exit(1);
  }
  await import(entry);
}
