import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { freePort, waitForPort } from './net-util.js';

// The `ssh -L` baseline: a throwaway OpenSSH server on loopback with its own host key, config and
// authorized key, and an `ssh -N -L` client forwarding a local port to the target. Nothing of the
// machine's own SSH setup is touched.

const SSHD = ['/usr/sbin/sshd', '/usr/local/sbin/sshd'].find((p) => existsSync(p));

export interface SshTunnel {
  /** The local port that forwards to the target. */
  port: number;
  /** OpenSSH's version line, for the report. */
  version: string;
  close(): Promise<void>;
}

/** Why the ssh baseline cannot run here, or undefined when it can. */
export function sshUnavailableReason(): string | undefined {
  if (!SSHD) return 'OpenSSH server (sshd) is not installed: apt-get install openssh-server';
  if (spawnSync('ssh', ['-V']).error) return 'OpenSSH client (ssh) is not installed: apt-get install openssh-client';
  return undefined;
}

function killAndWait(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

export async function startSshTunnel(targetPort: number): Promise<SshTunnel> {
  const reason = sshUnavailableReason();
  if (reason) throw new Error(reason);
  const dir = mkdtempSync(join(tmpdir(), 'wicket-bench-ssh-'));
  const keygen = (file: string) => spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', file], { stdio: 'ignore' });
  keygen(join(dir, 'host_key'));
  keygen(join(dir, 'client_key'));
  writeFileSync(join(dir, 'authorized_keys'), spawnSync('cat', [join(dir, 'client_key.pub')]).stdout, { mode: 0o600 });
  // sshd insists on its privilege-separation directory.
  if (!existsSync('/run/sshd')) mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const sshdPort = await freePort();
  const user = userInfo().username;
  writeFileSync(
    join(dir, 'sshd_config'),
    [
      `Port ${sshdPort}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${join(dir, 'host_key')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      `AllowUsers ${user}`,
      'PermitRootLogin prohibit-password',
      `PidFile ${join(dir, 'sshd.pid')}`,
      'AllowTcpForwarding yes',
      'LogLevel ERROR',
    ].join('\n') + '\n',
  );
  const sshd = spawn(SSHD!, ['-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
  await waitForPort(sshdPort, 10_000);
  const localPort = await freePort();
  const ssh = spawn(
    'ssh',
    [
      '-N', '-T',
      '-o', 'BatchMode=yes',
      '-o', 'StrictHostKeyChecking=no',
      '-o', `UserKnownHostsFile=${join(dir, 'known_hosts')}`,
      '-o', 'ExitOnForwardFailure=yes',
      '-i', join(dir, 'client_key'),
      '-p', String(sshdPort),
      '-L', `127.0.0.1:${localPort}:127.0.0.1:${targetPort}`,
      `${user}@127.0.0.1`,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  await waitForPort(localPort, 10_000);
  const version = String(spawnSync('ssh', ['-V']).stderr).trim();
  return {
    port: localPort,
    version,
    async close() {
      await killAndWait(ssh);
      await killAndWait(sshd);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
