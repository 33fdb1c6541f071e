import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Secret } from '../../protocol/secret.js';
import { aiCorpCloudConfig, healthCorpCloudConfig, parseCloudConfig, relayCloudConfig } from '../../scripts/azure/cloud-init.js';
import { wrapScript } from '../../scripts/azure/run-command.js';
import { mintTicketScript, readAdminTicketScript } from '../../scripts/azure/tickets.js';
import { renderTemplate } from '../../scripts/azure/templates.js';

// shellcheck over every shell script in scripts/ (templates included), and over the scripts as
// rendered: what actually runs on the VMs and through run-command.

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const hasShellcheck = spawnSync('shellcheck', ['--version'], { encoding: 'utf8' }).status === 0;
if (!hasShellcheck) console.warn('skipping shellcheck tests: shellcheck is not installed (scripts/ci-setup.sh installs it in CI)');

function shellScripts(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.sh'))
    .map((e) => join(e.parentPath, e.name));
}

function shellcheck(args: string[], input?: string): { status: number | null; output: string } {
  const r = spawnSync('shellcheck', ['--shell=bash', '--format=gcc', ...args], { encoding: 'utf8', input });
  return { status: r.status, output: r.stdout + r.stderr };
}

describe.skipIf(!hasShellcheck)('shellcheck', () => {
  it('passes on every scripts/**/*.sh', () => {
    const files = shellScripts(join(ROOT, 'scripts'));
    expect(files.map((f) => relative(ROOT, f))).toContain('scripts/run.sh');
    const result = shellcheck(files);
    expect(result.output).toBe('');
    expect(result.status).toBe(0);
  });

  it('passes on the rendered cloud-init and run-command scripts', () => {
    const source = { repo: 'https://github.com/example/wicket.git', ref: 'main' };
    const ticket = new Secret('wkt1_AAAA');
    const docs = [
      relayCloudConfig(source, 'wss://203.0.113.10:443'),
      aiCorpCloudConfig(source, ticket, { region: 'eastus', endpoint: 'https://x.openai.azure.com/' }),
      healthCorpCloudConfig(source, ticket, 'gpt-4o-mini'),
    ];
    const scripts = docs.flatMap((d) => parseCloudConfig(d.reveal()).write_files.filter((f) => f.path.endsWith('.sh')).map((f) => f.content));
    scripts.push(
      ...[mintTicketScript('outlet'), mintTicketScript('inlet'), readAdminTicketScript(), renderTemplate('read-demo-answer.sh')].map((body) => wrapScript(body).join('\n')),
    );
    expect(scripts.length).toBeGreaterThanOrEqual(10);
    for (const script of scripts) {
      const result = shellcheck(['-'], script);
      expect(result.output).toBe('');
    }
  });
});
