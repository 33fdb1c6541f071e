import { spawn, type ChildProcess } from 'node:child_process';
import { stopAll } from '../lib/local-processes.js';

// Everything the bench sets up is undone on every way out: a normal end, an error, Ctrl-C or
// SIGTERM, and the bench's own overall deadline. Undo steps run newest first (a namespace's
// processes before the namespace); each is bounded, and a failing one does not stop the rest.

type Undo = () => void | Promise<void>;

const undos: { name: string; undo: Undo }[] = [];
const tools = new Set<ChildProcess>();

/** Registers an undo step; returns a function that runs it now (once) and forgets it. */
export function onCleanup(name: string, undo: Undo): () => Promise<void> {
  const entry = { name, undo };
  undos.push(entry);
  return async () => {
    const i = undos.indexOf(entry);
    if (i < 0) return;
    undos.splice(i, 1);
    await runBounded(entry);
  };
}

async function runBounded({ name, undo }: { name: string; undo: Undo }): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      Promise.resolve().then(undo),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('took over 15 s')), 15_000);
      }),
    ]);
  } catch (err) {
    console.error(`bench: cleanup "${name}" failed: ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs every undo step, newest first, then stops the Wicket and server processes. */
export async function cleanupAll(): Promise<void> {
  for (const child of tools) child.kill('SIGKILL');
  tools.clear();
  while (undos.length > 0) await runBounded(undos.pop()!);
  await stopAll();
}

export interface ToolResult {
  code: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/**
 * Runs an outside tool (iperf3, wrk, …) to its end, killed after `timeoutMs`. `wrap` prefixes the
 * command (e.g. `ip netns exec NS`). Tracked, so an interrupted bench leaves none behind.
 */
export function runTool(command: string, args: readonly string[], o: { timeoutMs: number; wrap?: readonly string[] }): Promise<ToolResult> {
  if (leaving) return Promise.resolve({ code: null, stdout: '', stderr: 'the bench is stopping', timedOut: false });
  const [cmd, argv] = o.wrap && o.wrap.length > 0 ? [o.wrap[0]!, [...o.wrap.slice(1), command, ...args]] : [command, [...args]];
  return new Promise((resolve) => {
    const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    tools.add(child);
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (text: string) => {
      if (stdout.length < 16 * 1024 * 1024) stdout += text;
    });
    child.stderr.setEncoding('utf8').on('data', (text: string) => {
      if (stderr.length < 1024 * 1024) stderr += text;
    });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, o.timeoutMs);
    child.once('error', (err) => {
      stderr += String(err);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      tools.delete(child);
      resolve({ code, stdout, stderr, timedOut });
    });
  });
}

let leaving = false;

/** True once a signal or the deadline started the way out: the main flow must not exit on its own then. */
export function isLeaving(): boolean {
  return leaving;
}

/** Called before starting anything: nothing new may start while (or after) the cleanup runs. */
export function assertNotLeaving(what: string): void {
  if (leaving) throw new Error(`not starting ${what}: the bench is stopping`);
}

/** Ctrl-C, SIGTERM and an overall deadline all end in cleanupAll() and a non-zero exit. */
export function installExitGuards(deadlineMs: number): void {
  const leave = (why: string, code: number) => {
    if (leaving) return;
    leaving = true;
    console.error(`bench: ${why}; cleaning up …`);
    void cleanupAll().finally(() => process.exit(code));
  };
  process.once('SIGINT', () => leave('interrupted (SIGINT)', 130));
  process.once('SIGTERM', () => leave('terminated (SIGTERM)', 143));
  setTimeout(() => leave(`still running after the overall deadline of ${Math.round(deadlineMs / 1000)} s`, 2), deadlineMs).unref();
}

/**
 * Runs a bench's `main` and exits with its code once everything is cleaned up; a thrown error is
 * printed (as `name failed: …`) and exits 2. After a signal the guard's own cleanup decides the
 * exit code, and the interrupted flow only waits for it.
 */
export function runToExit(name: string, main: () => Promise<number>): void {
  main().then(
    async (code) => {
      if (isLeaving()) return;
      await cleanupAll();
      process.exit(code);
    },
    async (err: unknown) => {
      if (isLeaving()) return;
      console.error(`${name} failed: ${err instanceof Error ? err.stack : String(err)}`);
      await cleanupAll();
      process.exit(2);
    },
  );
}
