import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

// Runs the real `agent` and `relay` programs (bin/*.js through tsx) as child processes.

const ROOT = join(import.meta.dirname, '..', '..');
export const AGENT_BIN = join(ROOT, 'bin', 'agent.js');
export const RELAY_BIN = join(ROOT, 'bin', 'relay.js');

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `agent ARGS` to completion (bounded: 30 s). Logs stay quiet unless WICKET_TEST_LOG is set. */
export function runAgent(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [AGENT_BIN, ...args],
      {
        timeout: 30_000,
        env: { ...process.env, WICKET_LOG_LEVEL: process.env.WICKET_TEST_LOG ?? 'error', WICKET_LOG_FORMAT: 'json', WICKET_DEBUG: '', ...env },
      },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** The error line contract: exactly `error: WICKET_ERR_…: message`, one line, no stack trace. */
export function errorLine(result: RunResult): { code: string; line: string } {
  const lines = result.stderr.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('{'));
  const line = lines.at(-1) ?? '';
  const match = /^error: (WICKET_ERR_[A-Z_]+): \S/.exec(line);
  return { code: match?.[1] ?? `(no error line in ${JSON.stringify(result.stderr.slice(0, 300))})`, line };
}

export function hasStackTrace(text: string): boolean {
  return /\n\s+at .+[:(]/.test(text) || /node:internal|\.ts:\d+:\d+/.test(text);
}

export interface RelayProcess {
  url: string;
  port: number;
  /** Only on the relay's first start (a fresh data folder). */
  adminTicket: string | undefined;
  child: ChildProcess;
  /** SIGTERM (graceful), SIGKILL after 5 s. */
  stop(): Promise<void>;
  /** SIGKILL: a crash, no close handshake with anyone. */
  kill(): Promise<void>;
}

/** `relay start --listen 127.0.0.1:PORT --data DIR --json`: reads the one JSON line it prints. */
export async function startRelayProcess(dataDir: string, port = 0): Promise<RelayProcess> {
  const child = spawn(process.execPath, [RELAY_BIN, 'start', '--listen', `127.0.0.1:${port}`, '--data', dataDir, '--json'], {
    env: { ...process.env, WICKET_LOG_LEVEL: process.env.WICKET_TEST_LOG ?? 'warn', WICKET_LOG_FORMAT: 'json' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    if (stderr.length < 8_192) stderr += chunk.toString();
  });
  const lines = createInterface({ input: child.stdout! });
  const first = await Promise.race([
    once(lines, 'line').then(([line]) => line as string),
    once(child, 'exit').then(([code]) => Promise.reject(new Error(`relay exited with ${code} before printing its URL: ${stderr}`))),
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`relay printed nothing in 30 s: ${stderr}`)), 30_000).unref()),
  ]);
  lines.close();
  const info = JSON.parse(first) as { url: string; adminTicketFile?: string };
  // The relay prints the admin ticket's text only to a terminal; read the file it names.
  const adminTicket = info.adminTicketFile === undefined ? undefined : readFileSync(info.adminTicketFile, 'utf8').trim();
  const end = async (signal: NodeJS.Signals): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  };
  return {
    url: info.url,
    port: Number(new URL(info.url).port),
    adminTicket,
    child,
    stop: () => end('SIGTERM'),
    kill: () => end('SIGKILL'),
  };
}
