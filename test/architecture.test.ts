import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cruise, type ICruiseResult } from 'dependency-cruiser';
import extractDepcruiseOptions from 'dependency-cruiser/config-utl/extract-depcruise-options';
import extractTSConfig from 'dependency-cruiser/config-utl/extract-ts-config';
import { describe, expect, it } from 'vitest';

// DESIGN.md "Layout" as tests: the import graph obeys the layer rules in .dependency-cruiser.cjs
// (no cycles, type-only ones included; protocol/ pure and at the bottom; agent/ and relay/ apart;
// the libraries never reach up into cli/, scripts/ or test/), and source files stay small.

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CRUISED = ['protocol', 'agent', 'relay', 'cli', 'scripts', 'examples'];

/** DESIGN.md asks for files "under ~400 lines"; the "~" gets a little slack. */
const MAX_LINES = 420;
const SIZED = ['protocol', 'agent', 'relay', 'cli'];
const SOURCE_FILE = /\.(ts|mts|cts|js|mjs|cjs)$/;
/**
 * DESIGN.md also asks for ONE limits file ("one `protocol/limits.ts`"): every limit with its reason
 * in one place outranks the line budget, which exists to make files split by responsibility, and a
 * list of constants is one responsibility. It gets twice the budget, still checked.
 */
const LINE_BUDGET_EXCEPTIONS = new Map([['protocol/limits.ts', 2 * MAX_LINES]]);

describe('import graph (.dependency-cruiser.cjs)', () => {
  it('has no cycles and no import across the layers of DESIGN.md "Layout"', async () => {
    const options = await extractDepcruiseOptions(join(ROOT, '.dependency-cruiser.cjs'));
    // The rules are only as good as the graph: `import type` must count as an edge.
    expect(options.tsPreCompilationDeps).toBe(true);
    const { output } = await cruise(
      CRUISED,
      { ...options, baseDir: ROOT, outputType: 'json' },
      {},
      { tsConfig: extractTSConfig(join(ROOT, 'tsconfig.json')) },
    );
    const result = (typeof output === 'string' ? JSON.parse(output) : output) as ICruiseResult;

    // A guard against a cruise that silently saw nothing (a wrong base folder, say).
    const layers = new Set(result.modules.map((m) => m.source.split('/')[0]));
    for (const layer of ['protocol', 'agent', 'relay', 'cli']) expect(layers, `the cruise saw no module in ${layer}/`).toContain(layer);

    const violations = result.summary.violations.map((v) =>
      v.cycle?.length
        ? `${v.rule.name}: ${[v.from, ...v.cycle.map((step) => step.name)].join(' → ')}`
        : `${v.rule.name}: ${v.from} → ${v.to}`,
    );
    const reasons = new Map((options.ruleSet?.forbidden ?? []).map((rule) => [rule.name, rule.comment] as const));
    const broken = [...new Set(result.summary.violations.map((v) => v.rule.name))];
    expect(
      violations,
      [
        `${violations.length} import-graph violation(s):`,
        ...violations.map((line) => `  ${line}`),
        'why each rule exists (.dependency-cruiser.cjs):',
        ...broken.map((name) => `  ${name}: ${reasons.get(name ?? '') ?? ''}`),
        'reproduce: npx depcruise protocol agent relay cli scripts examples --config .dependency-cruiser.cjs',
      ].join('\n'),
    ).toEqual([]);
  });
});

describe('file size', () => {
  it(`every source file under ${SIZED.join('/, ')}/ is at most ${MAX_LINES} lines (DESIGN.md: "aim under ~400 lines")`, () => {
    const offenders: string[] = [];
    for (const folder of SIZED) {
      for (const entry of readdirSync(join(ROOT, folder), { recursive: true, withFileTypes: true })) {
        if (!entry.isFile() || !SOURCE_FILE.test(entry.name)) continue;
        const path = join(entry.parentPath, entry.name);
        const text = readFileSync(path, 'utf8');
        const lines = text.length === 0 ? 0 : text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
        if (lines > (LINE_BUDGET_EXCEPTIONS.get(relative(ROOT, path)) ?? MAX_LINES)) offenders.push(`${relative(ROOT, path)}: ${lines} lines`);
      }
    }
    expect(offenders.sort(), `source files over ${MAX_LINES} lines (split them by responsibility):\n  ${offenders.join('\n  ')}\n`).toEqual([]);
  });
});
