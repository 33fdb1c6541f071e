import { execFile, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Vault } from '../../agent/vault.js';
import { issueCredential } from '../../protocol/credential.js';
import { Identity } from '../../protocol/identity.js';
import { AGENT_BIN, errorLine, hasStackTrace, RELAY_BIN, runAgent, type RunResult } from './agent-cli-helpers.js';

// Each CLI mistake gets the right code and a message naming the option, variable, file or
// permission concerned: a missing option names it, a bad log level names where it came from and the
// levels there are, and a permission problem is WICKET_ERR_PERMISSION naming the path instead of
// "corrupt; re-create the identity".

const root = mkdtempSync(join(tmpdir(), 'wicket-cli-messages-'));
// Others may pass through (not list) the test folder, so a process running as another user can
// reach the homes made below; each home's own mode is what the permission tests set.
chmodSync(root, 0o711);
afterAll(() => {
  // chmod back first: a folder nobody may enter cannot be removed by a non-root test run.
  spawnSync('chmod', ['-R', 'u+rwx', root]);
  rmSync(root, { recursive: true, force: true });
});

function expectUsageError(r: RunResult, pattern: RegExp): void {
  expect(errorLine(r).code).toBe('WICKET_ERR_ARGUMENT');
  expect(r.code).toBe(2);
  expect(errorLine(r).line).toMatch(pattern);
  expect(hasStackTrace(r.stderr)).toBe(false);
}

describe('missing and mistaken options', () => {
  it('a missing required option is named with its form (`--to <host:port>`), not "(value not shown)"', async () => {
    const r = await runAgent(['--home', join(root, 'unused'), 'outlet', 'create', '--relay', 'svc', '--allow', 'svc-inlet']);
    expectUsageError(r, /^error: WICKET_ERR_ARGUMENT: required option '--to <host:port>' not specified \(see --help\)$/);
  });

  it('an option without its value is named too', async () => {
    const r = await runAgent(['--home', join(root, 'unused'), 'inlet', 'create', '--via']);
    expectUsageError(r, /option '--via <name>' argument missing/);
  });

  it('values stay masked: a mistyped option carrying a value shows only the option name', async () => {
    const r = await runAgent(['--home', join(root, 'unused'), 'status', '--colour=Secret-Looking+Value/123']);
    expectUsageError(r, /'--colour'/);
    expect(r.stderr).not.toContain('Secret-Looking');
  });
});

describe('log levels', () => {
  const levels = 'fatal, error, warn, info, debug, trace, silent';

  it('WICKET_LOG_LEVEL=verbose: WICKET_ERR_ARGUMENT naming the variable and the valid levels (was WICKET_ERR_INTERNAL)', async () => {
    const r = await runAgent(['--home', join(root, 'unused'), 'status'], { WICKET_LOG_LEVEL: 'verbose' });
    expectUsageError(r, new RegExp(`WICKET_LOG_LEVEL "verbose" is not a log level; use one of ${levels}$`));
  });

  it('--log-level verbose: the same, naming the option, before or after the command', async () => {
    for (const args of [['--log-level', 'verbose', 'status'], ['status', '--log-level', 'verbose']]) {
      expectUsageError(await runAgent(['--home', join(root, 'unused'), ...args]), /--log-level "verbose" is not a log level; use one of/);
    }
  });

  it('the flag wins over the variable', async () => {
    const r = await runAgent(['--home', join(root, 'unused'), '--log-level', 'warn', 'status'], { WICKET_LOG_LEVEL: 'verbose' });
    // Past the level check: the command itself runs (and finds no node).
    expect(errorLine(r).code).toBe('WICKET_ERR_CONTROL');
  });

  it('relay --log-level is checked the same way', async () => {
    const r = await run(process.execPath, [RELAY_BIN, '--log-level', 'loud', 'ticket', 'create', '--data', join(root, 'no-relay')]);
    expectUsageError(r, /--log-level "loud" is not a log level/);
  });

  it('JSON log lines carry the level by name, at the level --log-level asks for', async () => {
    const relay = spawn(process.execPath, [RELAY_BIN, '--log-level', 'debug', 'start', '--data', join(root, 'levels-relay'), '--listen', '127.0.0.1:0', '--json'], {
      env: { ...process.env, WICKET_LOG_LEVEL: 'error', WICKET_LOG_FORMAT: 'json' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const lines: Record<string, unknown>[] = [];
    try {
      const deadline = Date.now() + 20_000;
      let partial = '';
      relay.stderr.setEncoding('utf8');
      relay.stderr.on('data', (text: string) => {
        const parts = (partial + text).split('\n');
        partial = parts.pop()!;
        for (const line of parts) if (line.startsWith('{')) lines.push(JSON.parse(line) as Record<string, unknown>);
      });
      while (!lines.some((l) => l.level === 'info') && relay.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    } finally {
      relay.kill('SIGTERM');
      await once(relay, 'exit');
    }
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(['debug', 'info', 'warn', 'error', 'fatal']).toContain(line.level);
    // The flag won over WICKET_LOG_LEVEL=error: info lines are there.
    expect(lines.some((l) => l.level === 'info')).toBe(true);
  });
});

// --- permissions -------------------------------------------------------------------------------

/**
 * How to run a program as a user the test's files deny: as root (CI, this sandbox) permission
 * checks do not apply, so the program runs as `nobody` through setpriv; as anyone else, directly.
 */
function otherUser(): { wrap: string[] } | { skip: string } {
  if (process.getuid?.() !== 0) return { wrap: [] };
  const wrap = ['setpriv', '--reuid=nobody', `--regid=${spawnSync('id', ['-g', 'nobody']).stdout?.toString().trim() || 'nogroup'}`, '--clear-groups'];
  const probe = spawnSync(wrap[0]!, [...wrap.slice(1), process.execPath, '-e', `require('node:fs').accessSync(${JSON.stringify(AGENT_BIN)})`]);
  if (probe.error !== undefined || probe.status !== 0) return { skip: `running as root and cannot run node as nobody through setpriv (${probe.error?.message ?? probe.stderr.toString().trim()})` };
  return { wrap };
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: 30_000, env: { ...process.env, WICKET_LOG_LEVEL: 'error', WICKET_LOG_FORMAT: 'json', WICKET_DEBUG: '', ...env } }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : null, stdout, stderr });
    });
  });
}

const asOther = otherUser();
/** nobody's uid and gid (setpriv runs the programs as nobody and nobody's group). */
const NOBODY_UID = Number(spawnSync('id', ['-u', 'nobody']).stdout?.toString().trim() || 65_534);
const NOBODY_GID = Number(spawnSync('id', ['-g', 'nobody']).stdout?.toString().trim() || 65_534);
if ('skip' in asOther) console.warn(`permission tests skipped: ${asOther.skip}`);

function runAs(bin: string, args: string[]): Promise<RunResult> {
  const wrap = 'wrap' in asOther ? asOther.wrap : [];
  return wrap.length === 0 ? run(process.execPath, [bin, ...args]) : run(wrap[0]!, [...wrap.slice(1), process.execPath, bin, ...args]);
}

/** An agent home with an identity and an enrollment (for a relay that need not exist). */
function enrolledHome(name: string): string {
  const home = join(root, name);
  const vault = Vault.open(home);
  const identity = vault.identity();
  const authority = Identity.generate();
  const credential = issueCredential(authority, { subject: identity.identifier, attributes: {}, issuedAt: Date.now(), ttlMs: 600_000 });
  vault.saveEnrollment({ relayUrl: 'ws://127.0.0.1:9', authorityPublicKey: authority.publicKey, identifier: identity.identifier, credential: credential.encoded, enrolledAt: Date.now() });
  return home;
}

function expectPermission(r: RunResult, path: string, needed: RegExp): void {
  expect(errorLine(r).code).toBe('WICKET_ERR_PERMISSION');
  expect(r.code).toBe(1);
  expect(errorLine(r).line).toContain(path);
  expect(errorLine(r).line).toMatch(needed);
  expect(hasStackTrace(r.stderr)).toBe(false);
}

describe.skipIf('skip' in asOther)('permissions: WICKET_ERR_PERMISSION names the path and the permission', () => {
  it('a home this user may not enter (mode 000): node start names the enrollment, status the control socket', async () => {
    const home = enrolledHome('home-000');
    chmodSync(home, 0o000);
    expectPermission(await runAs(AGENT_BIN, ['--home', home, 'node', 'start']), join(home, 'enrollment.json'), /may not read the enrollment \(r on the file, x on the agent home\)/);
    expectPermission(await runAs(AGENT_BIN, ['--home', home, 'status']), join(home, 'control.sock'), /may not connect to the node's control socket/);
  });

  it('an identity key this user may not read: WICKET_ERR_PERMISSION, not "corrupt; re-create the identity" (WICKET_ERR_KEY_INVALID)', async () => {
    const home = enrolledHome('home-key');
    if (process.getuid?.() === 0) {
      // The home and enrollment become nobody's; identity.key stays root's, mode 0600.
      chownSync(home, NOBODY_UID, NOBODY_GID);
      chownSync(join(home, 'enrollment.json'), NOBODY_UID, NOBODY_GID);
    } else {
      chmodSync(join(home, 'identity.key'), 0o000);
    }
    expectPermission(await runAs(AGENT_BIN, ['--home', home, 'node', 'start']), join(home, 'identity.key'), /may not read the identity key/);
  });

  it('a relay data folder this user may not use: WICKET_ERR_PERMISSION naming the folder (start and ticket create)', async () => {
    const data = join(root, 'relay-000');
    mkdirSync(data, { mode: 0o000 });
    chmodSync(data, 0o000);
    expectPermission(await runAs(RELAY_BIN, ['start', '--data', data, '--listen', '127.0.0.1:0']), data, /needs read, write and search \(rwx\)/);
    expectPermission(await runAs(RELAY_BIN, ['ticket', 'create', '--data', data]), data, /needs read, write and search \(rwx\)/);
  });
});
