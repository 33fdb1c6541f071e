import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { onCleanup } from './cleanup.js';
import type { CertificateFiles } from './self-signed.js';

// One process of a reference bench's pipeline (pipe-chain.ts, minimal-pipeline.ts): a TypeScript
// script run under tsx, ready once it prints its first line, stopped (SIGTERM) by cleanupAll().

/** The environment a reference script reads its TLS hops from: TLS=1 with CERT and KEY, or TLS=0. */
export function tlsEnvironment(tls: CertificateFiles | undefined): Record<string, string> {
  return { TLS: tls === undefined ? '0' : '1', CERT: tls?.cert ?? '', KEY: tls?.key ?? '' };
}

/** Runs `script` (next to this file) with `args` and extra `env`; resolves with its pid once ready. */
export async function startReferenceProcess(name: string, script: string, args: readonly (string | number)[], env: Record<string, string>): Promise<number> {
  const child = spawn(process.execPath, ['--import', 'tsx', new URL(script, import.meta.url).pathname, ...args.map(String)], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ...env },
  });
  onCleanup(name, async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  });
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', () => resolve());
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code}`)));
  });
  return child.pid!;
}
