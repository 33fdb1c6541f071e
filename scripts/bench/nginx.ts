import { existsSync, mkdtempSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManagedProcess } from '../lib/local-processes.js';
import { assertNotLeaving, onCleanup, runTool } from './cleanup.js';
import { waitForPort } from './net-util.js';

// The HTTP target: a throwaway nginx on 127.0.0.1 serving a 1,024-byte file at /1k, with its own
// config, pid file, logs and temp folders in a temp dir; nothing of the machine's nginx is used.

export const NGINX = ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/local/nginx/sbin/nginx'].find((p) => existsSync(p)) ?? 'nginx';

export interface Nginx {
  port: number;
  /** The master's pid (its worker is a child). */
  pid: number;
  stop(): Promise<void>;
}

export async function startNginx(port: number): Promise<Nginx> {
  assertNotLeaving('nginx');
  const dir = mkdtempSync(join(tmpdir(), 'wicket-bench-nginx-'));
  const removeDir = onCleanup('nginx temp dir', () => rmSync(dir, { recursive: true, force: true }));
  // The worker runs as nginx's unprivileged user when the bench is root: it must read the file.
  chmodSync(dir, 0o755);
  writeFileSync(join(dir, '1k'), Buffer.alloc(1024, 'w'), { mode: 0o644 });
  const config = [
    'daemon off;',
    'master_process on;',
    'worker_processes 1;',
    `pid ${join(dir, 'nginx.pid')};`,
    `error_log ${join(dir, 'error.log')} error;`,
    'events { worker_connections 4096; }',
    'http {',
    '  access_log off;',
    // Every temp path nginx may create, so it never touches /var/lib/nginx.
    ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${join(dir, t)};`),
    // wrk's keep-alive connections must stay open for the whole run.
    '  keepalive_requests 1000000000;',
    '  keepalive_timeout 60s;',
    '  server {',
    `    listen 127.0.0.1:${port};`,
    `    root ${dir};`,
    '    location = /1k { default_type application/octet-stream; }',
    '  }',
    '}',
  ].join('\n');
  const conf = join(dir, 'nginx.conf');
  writeFileSync(conf, config + '\n', { mode: 0o644 });
  const proc = new ManagedProcess('nginx', NGINX, ['-p', dir, '-c', conf, '-e', join(dir, 'error.log')], process.env);
  try {
    await waitForPort(port, 10_000);
    const res = await fetch(`http://127.0.0.1:${port}/1k`);
    const body = await res.arrayBuffer();
    if (res.status !== 200 || body.byteLength !== 1024) throw new Error(`nginx answered ${res.status} with ${body.byteLength} bytes for /1k`);
  } catch (err) {
    await proc.kill('SIGTERM', 3_000);
    await removeDir();
    throw new Error(`nginx did not start: ${err instanceof Error ? err.message : String(err)}\n${proc.tail(10)}`);
  }
  return {
    port,
    pid: proc.pid,
    async stop() {
      await proc.kill('SIGTERM', 3_000);
      await removeDir();
    },
  };
}

/** nginx's version, for the report (`nginx -v` prints to stderr). */
export async function nginxVersion(): Promise<string> {
  const r = await runTool(NGINX, ['-v'], { timeoutMs: 5_000 });
  return (r.stderr + r.stdout).trim().replace(/^nginx version: /, '') || 'nginx (version unknown)';
}
