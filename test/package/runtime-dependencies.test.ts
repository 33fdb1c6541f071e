import { readdirSync, readFileSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

// What `npm install -g` brings is package.json's "dependencies", and what the installed programs
// load is the compiled form of these folders. This keeps the two the same: every package a
// runtime file imports is a runtime dependency (or it would be missing once installed), and every
// runtime dependency is imported by one (or the install carries it for nothing: the Azure SDKs
// and the test tools once made it 291 MB). Scripts, tests, examples and the bench use
// devDependencies.

const ROOT = resolve(import.meta.dirname, '..', '..');
/** The folders the two programs run from: bin/ and the compiled form of the rest (package.json "files"). */
const RUNTIME = ['bin', 'cli', 'agent', 'relay', 'protocol'];
const SOURCE = /\.(ts|js|mjs|cjs)$/;

/**
 * Runtime dependencies no runtime file names in an import, with where the name is given instead;
 * the test checks that each text is still there, so an entry cannot outlive its reason.
 */
const LOADED_BY_NAME: Record<string, { file: string; text: string; why: string }> = {
  'pino-pretty': { file: 'cli/logger.ts', text: "'pino-pretty'", why: 'pino loads it by name as the transport for readable logs on a terminal' },
  bufferutil: { file: 'node_modules/ws/lib/buffer-util.js', text: "require('bufferutil')", why: 'ws requires it when installed: native masking of every WebSocket frame an agent sends' },
};

/** Files allowed an import of a computed name, which this test cannot check, and what they load. */
const COMPUTED_IMPORTS: Record<string, string> = {
  'bin/launch.js': 'dist/cli/<program>.js, our own compiled program',
};

interface PackageJson {
  name: string;
  version: string;
  files: string[];
  bin: Record<string, string>;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
}
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as PackageJson;

function runtimeFiles(): string[] {
  const files: string[] = [];
  for (const folder of RUNTIME) {
    for (const entry of readdirSync(join(ROOT, folder), { recursive: true, withFileTypes: true })) {
      if (entry.isFile() && SOURCE.test(entry.name) && !entry.name.endsWith('.d.ts')) files.push(join(entry.parentPath, entry.name));
    }
  }
  return files;
}

/**
 * Module specifiers a file loads at run time: static imports and re-exports (not `import type`,
 * which the compiler erases), side-effect imports, `import('x')` and `require('x')` (the gateway
 * loads zod and the tokenizer lazily through createRequire).
 */
function runtimeSpecifiers(path: string): string[] {
  const source = ts.createSourceFile(path, readFileSync(path, 'utf8'), ts.ScriptTarget.Latest, true);
  const found: string[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      if (node.importClause?.isTypeOnly !== true) found.push(node.moduleSpecifier.text);
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier !== undefined && ts.isStringLiteral(node.moduleSpecifier)) {
      if (!node.isTypeOnly) found.push(node.moduleSpecifier.text);
    } else if (ts.isCallExpression(node) && node.arguments.length >= 1) {
      const isDynamicImport = node.expression.kind === ts.SyntaxKind.ImportKeyword;
      const isRequire = ts.isIdentifier(node.expression) && node.expression.text === 'require';
      const [first] = node.arguments;
      if ((isDynamicImport || isRequire) && first !== undefined) {
        if (ts.isStringLiteralLike(first)) found.push(first.text);
        else if (COMPUTED_IMPORTS[relative(ROOT, path)] === undefined) throw new Error(`${relative(ROOT, path)}: ${node.getText(source)} loads a computed name; name the module literally so this test can check it`);
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/** "@scope/name/sub/path" → "@scope/name"; "name/sub" → "name". */
function packageOf(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

function scan(): { packages: Map<string, string[]>; outside: string[] } {
  const packages = new Map<string, string[]>();
  const outside: string[] = [];
  for (const file of runtimeFiles()) {
    const where = relative(ROOT, file);
    for (const specifier of runtimeSpecifiers(file)) {
      if (specifier.startsWith('.') || specifier.startsWith('/')) {
        // A relative import must stay inside the shipped folders (examples/, scripts/ are not packed).
        const top = relative(ROOT, resolve(dirname(file), specifier)).split(sep)[0]!;
        if (!RUNTIME.includes(top)) outside.push(`${where} → ${specifier}`);
        continue;
      }
      if (isBuiltin(specifier)) continue;
      const name = packageOf(specifier);
      packages.set(name, [...(packages.get(name) ?? []), where]);
    }
  }
  return { packages, outside };
}

describe('runtime dependencies (package.json "dependencies")', () => {
  const { packages, outside } = scan();

  it('the scan sees static, dynamic and require() imports (a guard against a scan that finds nothing)', () => {
    expect(packages.get('commander')).toContain('cli/agent.ts');
    expect(packages.get('reflect-metadata'), "relay/tls.ts: await import('reflect-metadata')").toContain('relay/tls.ts');
    expect(packages.get('zod'), "agent/gateway/gateway-spec.ts: require('zod')").toContain('agent/gateway/gateway-spec.ts');
  });

  it('every package a runtime file imports is a runtime dependency', () => {
    const missing = [...packages].filter(([name]) => pkg.dependencies[name] === undefined).map(([name, files]) => `${name} (imported by ${files.join(', ')})`);
    expect(missing, 'move these into "dependencies" (then: npm install --package-lock-only --ignore-scripts && node scripts/complete-lockfile.mjs)').toEqual([]);
  });

  it('every runtime dependency is imported by a runtime file, or loaded by name for a stated reason', () => {
    const unused = Object.keys(pkg.dependencies).filter((name) => !packages.has(name) && LOADED_BY_NAME[name] === undefined);
    expect(unused, 'no runtime file imports these: move them to "devDependencies" (or remove them)').toEqual([]);
    for (const [name, { file, text, why }] of Object.entries(LOADED_BY_NAME)) {
      expect(pkg.dependencies[name], `${name}: ${why}`).toBeDefined();
      expect(readFileSync(join(ROOT, file), 'utf8'), `${name} is kept because ${why}; ${file} no longer says ${text}`).toContain(text);
    }
  });

  it('no package is both a runtime and a dev dependency', () => {
    expect(Object.keys(pkg.dependencies).filter((name) => pkg.devDependencies[name] !== undefined)).toEqual([]);
  });

  it('runtime files import nothing of ours outside the packed folders (examples/, scripts/, test/ are not installed)', () => {
    expect(outside).toEqual([]);
  });

  it('"files" packs bin/ and the compiled form of every runtime folder, and each "bin" entry lies in bin/', () => {
    for (const folder of RUNTIME) expect(pkg.files).toContain(folder === 'bin' ? 'bin/' : `dist/${folder}/`);
    for (const [command, path] of Object.entries(pkg.bin)) expect(path, command).toMatch(/^\.\/bin\/[\w-]+\.js$/);
  });

  it("package-lock.json's root entry matches package.json (npm ci refuses a lock that does not)", () => {
    const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { name: string; version: string; packages: Record<string, Partial<PackageJson>> };
    const root = lock.packages['']!;
    expect({ name: lock.name, version: lock.version }).toEqual({ name: pkg.name, version: pkg.version });
    expect({ name: root.name, version: root.version, dependencies: root.dependencies, devDependencies: root.devDependencies }).toEqual({
      name: pkg.name,
      version: pkg.version,
      dependencies: pkg.dependencies,
      devDependencies: pkg.devDependencies,
    });
  });
});
