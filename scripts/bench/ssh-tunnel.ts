import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { freePort, waitForPort } from './net-util.js';

// The `ssh -L` baseline: a throwaway OpenSSH server on loopback with its own host key, config and
// authorized key, and one `ssh -N` client forwarding a local port to each target (`-L` per port,
// all over the one SSH connection, as a user would). Nothing of the machine's own SSH setup is
// touched.

const SSHD = ['/usr/sbin/sshd', '/usr/local/sbin/sshd'].find((p) => existsSync(p));

export interface SshForwards {
  /** The local ports, one per target port, in the same order. */
  ports: number[];
  /** OpenSSH's version line, for the report. */
  version: string;
  /** The ssh client and the sshd listener (whose per-connection children do the server's work). */
  pids: { ssh: number; sshd: number };
  close(): Promise<void>;
}

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
  const forwards = await startSshForwards([targetPort]);
  return { port: forwards.ports[0]!, version: forwards.version, close: () => forwards.close() };
}

export async function startSshForwards(targetPorts: number[]): Promise<SshForwards> {
  const reason = sshUnavailableReason();
  if (reason) throw new Error(reason);
  const dir = mkdtempSync(join(tmpdir(), 'wicket-bench-ssh-'));
  const children: ChildProcess[] = [];
  const close = async () => {
    for (const child of [...children].reverse()) await killAndWait(child);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    return await startIn(dir, targetPorts, children, close);
  } catch (err) {
    await close();
    throw err;
  }
}

async function startIn(dir: string, targetPorts: number[], children: ChildProcess[], close: () => Promise<void>): Promise<SshForwards> {
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
  children.push(sshd);
  await waitForPort(sshdPort, 10_000);
  const localPorts: number[] = [];
  for (const _ of targetPorts) localPorts.push(await freePort());
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
      ...targetPorts.flatMap((port, i) => ['-L', `127.0.0.1:${localPorts[i]}:127.0.0.1:${port}`]),
      `${user}@127.0.0.1`,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  children.push(ssh);
  for (const port of localPorts) await waitForPort(port, 10_000);
  const version = String(spawnSync('ssh', ['-V']).stderr).trim();
  return { ports: localPorts, version, pids: { ssh: ssh.pid!, sshd: sshd.pid! }, close };
}
