import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

// `npm ci` (npm 11) refuses a lock that leaves out any optional dependency, and a registry that
// serves only this platform makes `npm install` leave them out. scripts/complete-lockfile.mjs puts
// them back; this test catches a lock rewritten without running it.
describe('package-lock.json', () => {
  it('lists every optional dependency of every locked package, so npm ci accepts it (run scripts/complete-lockfile.mjs)', () => {
    const lock = JSON.parse(readFileSync(new URL('../package-lock.json', import.meta.url), 'utf8')) as {
      packages: Record<string, { optionalDependencies?: Record<string, string> }>;
    };
    const missing: string[] = [];
    for (const [path, entry] of Object.entries(lock.packages)) {
      for (const name of Object.keys(entry.optionalDependencies ?? {})) {
        if (!lock.packages[`node_modules/${name}`] && !lock.packages[`${path}/node_modules/${name}`]) missing.push(`${name} (of ${path})`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('records no download addresses', () => {
    expect(readFileSync(new URL('../package-lock.json', import.meta.url), 'utf8')).not.toMatch(/"resolved": "http/);
  });
});
