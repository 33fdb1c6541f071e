// Completes package-lock.json with the platform-specific optional packages npm left out.
//
// Why: rollup (under vitest) lists one native package per platform as optionalDependencies. When
// the registry in use serves only this machine's platform (as this project's build machines'
// registry does), npm drops the others from the lock while resolving, and npm 11's `npm ci` then
// refuses that lock ("Missing: @rollup/rollup-darwin-x64@ from lock file"; npm/cli#4828 is the
// same family of bug). npm ci never fetches an optional package whose os/cpu/libc do not match,
// so entries carrying those fields make the lock complete without anything to download.
//
// Run after any `npm install` that rewrites the lock:  node scripts/complete-lockfile.mjs
import { readFileSync, writeFileSync } from 'node:fs';

const LOCK = new URL('../package-lock.json', import.meta.url);
const lock = JSON.parse(readFileSync(LOCK, 'utf8'));
const packages = lock.packages;

/** os/cpu/libc of a native package from its conventional name: @scope/pkg-<os>-<cpu>[-<abi>]. */
function platformOf(name) {
  const match = /-(android|darwin|freebsd|linux|openbsd|openharmony|win32)-(arm64|arm|x64|ia32|loong64|ppc64|riscv64|s390x)(?:-([a-z]+))?$/.exec(name);
  if (!match) return undefined;
  const [, os, cpu, abi] = match;
  const libc = abi?.startsWith('gnu') ? ['glibc'] : abi?.startsWith('musl') ? ['musl'] : undefined;
  return { os: [os], cpu: [cpu], ...(libc ? { libc } : {}) };
}

let added = 0;
for (const [path, entry] of Object.entries(packages)) {
  for (const [name, version] of Object.entries(entry.optionalDependencies ?? {})) {
    const key = `node_modules/${name}`;
    if (packages[key] || packages[`${path}/node_modules/${name}`]) continue;
    const platform = platformOf(name);
    if (!platform) throw new Error(`${name} (optional dependency of ${path}) is missing from the lock and is not a platform package`);
    packages[key] = { version, ...(entry.dev ? { dev: true } : {}), optional: true, ...platform };
    added++;
  }
}
const sorted = Object.fromEntries(Object.entries(packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a < b ? -1 : 1)));
lock.packages = sorted;
writeFileSync(LOCK, `${JSON.stringify(lock, null, 2)}\n`);
console.log(`complete-lockfile: added ${added} platform package entr${added === 1 ? 'y' : 'ies'}`);
