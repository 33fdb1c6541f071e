import { spawn } from 'node:child_process';
import { basename } from 'node:path';

// A TypeScript worker in a process of its own, for tests that need real concurrency between
// processes (separate SQLite connections racing on one file): the input goes in as JSON on stdin,
// the answer comes back as the one JSON line the worker prints. A worker that hangs is killed
// after 30 s, so a stuck race fails the test instead of holding the suite.

/** Runs `script` through tsx with `input` on stdin; resolves with its JSON output, rejects if it exits non-zero. */
export function runJsonWorker<T>(script: string, input: object): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code !== 0) reject(new Error(`${basename(script)} exited ${code}: ${err.slice(0, 500)}`));
      else resolve(JSON.parse(out.trim()) as T);
    });
    child.stdin.end(JSON.stringify(input));
  });
}
