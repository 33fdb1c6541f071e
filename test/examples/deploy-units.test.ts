import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EXIT_REVOKED } from '../../cli/cli-errors.js';
import { REPO_ROOT } from '../../scripts/lib/local-processes.js';

// The hardened units in examples/deploy/: `systemd-analyze verify` finds nothing to say about them
// (where systemd-analyze exists), and they carry the settings an operator relies on. verify checks
// that ExecStart's program exists, so the test copies each unit with the installed command's path
// (/usr/local/bin/relay, /usr/local/bin/agent) replaced by this checkout's bin/*.js.

const SYSTEMD_ANALYZE = '/usr/bin/systemd-analyze';
const DEPLOY = join(REPO_ROOT, 'examples', 'deploy');
const work = mkdtempSync(join(tmpdir(), 'wicket-units-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Each unit, and the installed command its ExecStart runs. */
const UNITS = [
  { unit: 'relay', program: 'relay' },
  { unit: 'agent', program: 'agent' },
  { unit: 'relay-authority', program: 'relay' },
] as const;
type UnitName = (typeof UNITS)[number]['unit'];

function unit(name: UnitName): string {
  return readFileSync(join(DEPLOY, `wicket-${name}.service`), 'utf8');
}

/** Every `Key=value` line of the [Service] section, in order (a key may repeat). */
function serviceSettings(text: string): [string, string][] {
  const service = text.split(/^\[Service\]$/m)[1]!.split(/^\[/m)[0]!;
  return service
    .split('\n')
    .filter((line) => /^[A-Za-z]+=/.test(line))
    .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]);
}

function setting(text: string, key: string): string[] {
  return serviceSettings(text)
    .filter(([k]) => k === key)
    .map(([, v]) => v);
}

describe('examples/deploy systemd units', () => {
  it('pass `systemd-analyze verify` without a single warning', () => {
    if (!existsSync(SYSTEMD_ANALYZE)) {
      console.log(`skipped: ${SYSTEMD_ANALYZE} is not installed (Debian: apt-get install systemd), so the units cannot be verified here`);
      return;
    }
    const files = UNITS.map(({ unit: name, program }) => {
      const installed = `/usr/local/bin/${program} `;
      const text = unit(name);
      expect(text).toContain(`ExecStart=${installed}`);
      const file = join(work, `wicket-${name}.service`);
      writeFileSync(file, text.replace(installed, `${join(REPO_ROOT, 'bin', `${program}.js`)} `));
      return file;
    });
    // --man=no: Documentation= links are not looked up; verify prints nothing when all is well.
    const result = spawnSync(SYSTEMD_ANALYZE, ['verify', '--man=no', ...files], { cwd: work, encoding: 'utf8', timeout: 30_000 });
    expect(result.error).toBeUndefined();
    expect(`${result.stdout}${result.stderr}`.trim()).toBe('');
    expect(result.status).toBe(0);

    // And the same verify does complain about a mistake, so silence above means something.
    const broken = join(work, 'wicket-broken.service');
    writeFileSync(broken, readFileSync(files[0]!, 'utf8').replace('ProtectHome=yes', 'ProtectHome=sometimes'));
    const complaint = spawnSync(SYSTEMD_ANALYZE, ['verify', '--man=no', broken], { cwd: work, encoding: 'utf8', timeout: 30_000 });
    expect(complaint.stderr).toMatch(/ProtectHome|protect home/i);
  });

  it('run as a dedicated user, hardened, never restarted after a revocation, and without W^X denial (V8 needs it)', () => {
    for (const { unit: program } of UNITS) {
      const text = unit(program);
      expect(setting(text, 'UMask')).toEqual(['0077']);
      expect(setting(text, 'Restart')).toEqual(['on-failure']);
      for (const [key, value] of [
        ['NoNewPrivileges', 'yes'],
        ['ProtectSystem', 'strict'],
        ['ProtectHome', 'yes'],
        ['PrivateTmp', 'yes'],
        ['PrivateDevices', 'yes'],
        ['ProtectKernelTunables', 'yes'],
        ['ProtectKernelModules', 'yes'],
        ['ProtectKernelLogs', 'yes'],
        ['RestrictAddressFamilies', 'AF_INET AF_INET6 AF_UNIX'],
      ]) {
        expect(setting(text, key!), `${program} ${key}`).toEqual([value]);
      }
      expect(setting(text, 'SystemCallFilter')[0]).toBe('@system-service');
      expect(setting(text, 'MemoryDenyWriteExecute'), program).toEqual([]);
    }
    for (const program of ['relay', 'agent'] as const) {
      const text = unit(program);
      expect(setting(text, 'User'), program).toEqual([`wicket-${program}`]);
      expect(setting(text, 'StateDirectory')).toEqual([`wicket-${program}`]);
      expect(setting(text, 'StateDirectoryMode')).toEqual(['0700']);
    }
    const relay = unit('relay');
    expect(setting(relay, 'Environment')).toContain('WICKET_RELAY_DATA=/var/lib/wicket-relay');
    expect(setting(relay, 'AmbientCapabilities')).toEqual(['CAP_NET_BIND_SERVICE']);
    expect(setting(relay, 'CapabilityBoundingSet')).toEqual(['CAP_NET_BIND_SERVICE']);
    const agent = unit('agent');
    expect(setting(agent, 'Environment')).toContain('WICKET_HOME=/var/lib/wicket-agent');
    expect(setting(agent, 'CapabilityBoundingSet')).toEqual(['']);
    expect(setting(agent, 'AmbientCapabilities')).toEqual([]);
    expect(setting(agent, 'RestartPreventExitStatus')).toEqual([String(EXIT_REVOKED)]);
    // The signer: its own user, no port and so no capability, the key handed in by systemd.
    const authority = unit('relay-authority');
    expect(setting(authority, 'User')).toEqual(['wicket-authority']);
    expect(setting(authority, 'CapabilityBoundingSet')).toEqual(['']);
    expect(setting(authority, 'AmbientCapabilities')).toEqual([]);
    expect(setting(authority, 'LoadCredential')).toContain('authority.key:/etc/wicket/authority.key');
    expect(setting(authority, 'ExecStart')[0]).toMatch(/ authority --authority-key \$\{CREDENTIALS_DIRECTORY\}\/authority\.key$/);
  });

  it('the Azure agent unit carries RestartPreventExitStatus too', () => {
    const azure = readFileSync(join(REPO_ROOT, 'scripts', 'azure', 'templates', 'wicket-agent.service'), 'utf8');
    expect(setting(azure, 'RestartPreventExitStatus')).toEqual([String(EXIT_REVOKED)]);
  });
});
