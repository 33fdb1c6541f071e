import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The README's table of environment variables cannot drift from the code: every variable a
// runtime source (agent/, relay/, cli/, protocol/, bin/) reads by name is in the table, no source
// reads one under a computed name (which no scan could check), and every WICKET_* row is still
// read somewhere in the repository.

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const RUNTIME = ['agent', 'relay', 'cli', 'protocol', 'bin'];
const EVERYWHERE = [...RUNTIME, 'scripts', 'test', 'examples'];
const SOURCE_FILE = /\.(ts|mts|cts|js|mjs|cjs)$/;
const TABLE_START = '<!-- env:start -->';
const TABLE_END = '<!-- env:end -->';

/** `process.env.NAME`, `process.env['NAME']`, and `env.NAME` for a ProcessEnv parameter. */
const READ_BY_NAME = /\benv(?:\.([A-Z][A-Z0-9_]*)\b|\[\s*['"`]([A-Z][A-Z0-9_]*)['"`]\s*\])/g;
/** `process.env[expression]`: a name the scan cannot see. */
const READ_COMPUTED = /\bprocess\.env\[\s*(?!['"`][A-Z][A-Z0-9_]*['"`]\s*\])/;

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir)) {
    if (entry === 'node_modules' || entry === 'dist') continue;
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) out.push(...sourceFiles(path));
    else if (SOURCE_FILE.test(entry)) out.push(path);
  }
  return out;
}

/** Variable name → the files that read it. */
function variablesRead(folders: readonly string[]): Map<string, string[]> {
  const read = new Map<string, string[]>();
  for (const file of folders.flatMap((folder) => sourceFiles(join(ROOT, folder)))) {
    for (const match of readFileSync(file, 'utf8').matchAll(READ_BY_NAME)) {
      const name = match[1] ?? match[2]!;
      read.set(name, [...(read.get(name) ?? []), relative(ROOT, file)]);
    }
  }
  return read;
}

function documented(): Set<string> {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf(TABLE_START);
  const end = readme.indexOf(TABLE_END);
  expect(start, `README.md has no ${TABLE_START} … ${TABLE_END} table`).toBeGreaterThan(0);
  expect(end).toBeGreaterThan(start);
  const names = new Set<string>();
  for (const row of readme.slice(start, end).split('\n').filter((line) => line.startsWith('| `'))) {
    const firstCell = row.split('|')[1]!;
    for (const match of firstCell.matchAll(/`([A-Z][A-Z0-9_]*)`/g)) names.add(match[1]!);
  }
  return names;
}

describe('README environment variables', () => {
  it('lists every variable the programs read', () => {
    const read = variablesRead(RUNTIME);
    // A guard against a scan that silently saw nothing.
    for (const known of ['WICKET_HOME', 'WICKET_RELAY_DATA', 'WICKET_LOG_LEVEL', 'WICKET_LOG_FORMAT']) expect([...read.keys()]).toContain(known);
    const table = documented();
    const missing = [...read].filter(([name]) => !table.has(name)).map(([name, files]) => `${name} (read in ${[...new Set(files)].join(', ')})`);
    expect(missing, 'add these to the README table between the env markers').toEqual([]);
  });

  it('no program reads a variable under a computed name', () => {
    const computed = RUNTIME.flatMap((folder) => sourceFiles(join(ROOT, folder)))
      .filter((file) => READ_COMPUTED.test(readFileSync(file, 'utf8')))
      .map((file) => relative(ROOT, file));
    expect(computed).toEqual([]);
  });

  it('every WICKET_* variable in the table is still read somewhere', () => {
    const read = variablesRead(EVERYWHERE);
    const stale = [...documented()].filter((name) => name.startsWith('WICKET_') && !read.has(name));
    expect(stale, 'nothing reads these any more: remove their rows').toEqual([]);
  });
});
