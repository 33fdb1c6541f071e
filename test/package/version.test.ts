import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { WICKET_VERSION } from '../../protocol/version.js';

// One release number in two places: package.json (what npm publishes and installs) and
// protocol/version.ts (what the programs print; protocol/ reads no files). This keeps them equal,
// and checks that both programs print it and exit 0, as scripts and packagers expect.

const ROOT = join(import.meta.dirname, '..', '..');

function run(bin: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [join(ROOT, 'bin', bin), ...args], { timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : null, stdout, stderr });
    });
  });
}

describe('version', () => {
  it('protocol/version.ts WICKET_VERSION equals package.json "version"', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(WICKET_VERSION).toBe(pkg.version);
  });

  for (const bin of ['agent.js', 'relay.js']) {
    for (const flag of ['--version', '-V']) {
      it(`${bin} ${flag} prints the version alone and exits 0`, async () => {
        const r = await run(bin, [flag]);
        expect(r).toEqual({ code: 0, stdout: `${WICKET_VERSION}\n`, stderr: '' });
      });
    }
  }
});
