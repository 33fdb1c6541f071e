import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

// Real processes, for the end-to-end tests, the demo and the bench: the relay and agents started
// through their CLIs (`node bin/relay.js …`, `node bin/agent.js …`), each agent with its own
// WICKET_HOME.
//
//   const relay = await startRelayProcess();
//   const outletHome = await enrollAgent(relay, { attributes: ['svc-outlet'], relayNames: ['svc'] });
//   const outlet = await startNodeProcess(outletHome, { outlets: [{ to: echo.address, relay: 'svc', allow: 'svc-inlet' }] });
//   ...
//   await stopAll();   // in afterAll/afterEach: SIGTERM, then SIGKILL, every process started here
//
// Every wait is bounded (a hang fails the test with the process's recent output), and processes
// are tracked so a failing test cannot leak them.

export const REPO_ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const AGENT_BIN = join(REPO_ROOT, 'bin', 'agent.js');
const RELAY_BIN = join(REPO_ROOT, 'bin', 'relay.js');

/**
 * The node flags a program is installed to run with: those on its `#!/usr/bin/env -S node …` line
 * (bin/agent.js says why), so what tests and the benchmark start is what an installed command runs.
 */
function nodeFlagsOf(bin: string): string[] {
  const shebang = readFileSync(bin, 'utf8').split('\n', 1)[0] ?? '';
  const match = /^#!\/usr\/bin\/env -S node((?: --[\w-]+(?:=\S+)?)*)\s*$/.exec(shebang);
  if (match === null) throw new Error(`${bin}: first line ${JSON.stringify(shebang)} is not #!/usr/bin/env -S node [flags]`);
  return match[1]!.trim().split(/\s+/).filter((flag) => flag !== '');
}
/** The node flags `agent` runs with, for processes that run agent code in-process (the scale bench's load generators). */
export const AGENT_NODE_FLAGS = nodeFlagsOf(AGENT_BIN);
const RELAY_NODE_FLAGS = nodeFlagsOf(RELAY_BIN);
const DEFAULT_WAIT_MS = 20_000;

const running = new Set<ManagedProcess>();
const tempDirs = new Set<string>();

export function tempDir(prefix = 'wicket-test-'): string {
  // Short paths: a Unix socket path must fit in ~100 bytes.
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

export class ManagedProcess {
  readonly child: ChildProcess;
  readonly name: string;
  readonly stdoutLines: string[] = [];
  readonly stderrLines: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  exitCode: number | null | undefined;
  readonly #lineWaiters = new Set<() => void>();

  constructor(name: string, command: string, args: string[], env: NodeJS.ProcessEnv) {
    this.name = name;
    this.child = spawn(command, args, { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(this);
    this.exited = new Promise((resolveExit) => {
      this.child.once('exit', (code, signal) => {
        this.exitCode = code;
        running.delete(this);
        this.#wake();
        resolveExit({ code, signal });
      });
    });
    const collect = (stream: NodeJS.ReadableStream | null, lines: string[]) => {
      let partial = '';
      stream?.setEncoding('utf8');
      stream?.on('data', (text: string) => {
        partial += text;
        const parts = partial.split('\n');
        partial = parts.pop()!;
        lines.push(...parts);
        if (lines.length > 20_000) lines.splice(0, lines.length - 10_000);
        this.#wake();
      });
      stream?.on('end', () => {
        if (partial !== '') lines.push(partial);
        this.#wake();
      });
    };
    collect(this.child.stdout, this.stdoutLines);
    collect(this.child.stderr, this.stderrLines);
  }

  get pid(): number {
    return this.child.pid!;
  }

  get alive(): boolean {
    return this.exitCode === undefined;
  }

  #wake(): void {
    for (const wake of this.#lineWaiters) wake();
  }

  /** Recent output, for failure messages. */
  tail(lines = 30): string {
    return [`--- ${this.name} stdout`, ...this.stdoutLines.slice(-lines), `--- ${this.name} stderr`, ...this.stderrLines.slice(-lines)].join('\n');
  }

  /** Waits for a line on stdout (or stderr) that satisfies `match`; returns it. */
  async waitForLine(match: (line: string) => boolean, o: { stream?: 'stdout' | 'stderr'; timeoutMs?: number; from?: number } = {}): Promise<string> {
    const lines = o.stream === 'stderr' ? this.stderrLines : this.stdoutLines;
    const timeoutMs = o.timeoutMs ?? DEFAULT_WAIT_MS;
    const deadline = Date.now() + timeoutMs;
    let checked = o.from ?? 0;
    for (;;) {
      for (; checked < lines.length; checked++) if (match(lines[checked]!)) return lines[checked]!;
      if (!this.alive) throw new Error(`${this.name} exited (${this.exitCode}) before the expected line\n${this.tail()}`);
      if (Date.now() > deadline) throw new Error(`${this.name}: no matching line within ${timeoutMs} ms\n${this.tail()}`);
      await new Promise<void>((wake) => {
        const timer = setTimeout(done, 200);
        function done() {
          clearTimeout(timer);
          wake();
        }
        this.#lineWaiters.add(done);
      });
      this.#lineWaiters.clear();
    }
  }

  /** Waits for a JSON line on stdout that satisfies `match`; returns it parsed. */
  async waitForJson<T = Record<string, unknown>>(match: (value: Record<string, unknown>) => boolean = () => true, timeoutMs?: number): Promise<T> {
    const line = await this.waitForLine((l) => {
      const value = tryJson(l);
      return value !== undefined && match(value);
    }, timeoutMs === undefined ? {} : { timeoutMs });
    return JSON.parse(line) as T;
  }

  /** Waits for a pino log line on stderr (JSON) whose fields match `fields`. */
  async waitForLog(fields: Record<string, unknown>, timeoutMs?: number): Promise<Record<string, unknown>> {
    const line = await this.waitForLine((l) => {
      const value = tryJson(l);
      return value !== undefined && Object.entries(fields).every(([k, v]) => value[k] === v);
    }, { stream: 'stderr', ...(timeoutMs === undefined ? {} : { timeoutMs }) });
    return JSON.parse(line) as Record<string, unknown>;
  }

  /** Sends `signal` and waits for exit; SIGKILL if it is still alive after `graceMs`. */
  async kill(signal: NodeJS.Signals = 'SIGTERM', graceMs = 5_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.alive) {
      this.child.kill(signal);
      const timer = setTimeout(() => {
        if (this.alive) this.child.kill('SIGKILL');
      }, graceMs);
      try {
        return await this.exited;
      } finally {
        clearTimeout(timer);
      }
    }
    return this.exited;
  }
}

function tryJson(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const value: unknown = JSON.parse(line);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A command prefix that runs a program somewhere else, e.g. `['ip', 'netns', 'exec', 'ns1']` to
 * run it inside a network namespace (the bench's 40 ms link). `ip netns exec` execs the program,
 * so the child's pid is still the program's own (its /proc figures are the program's).
 */
export type CommandWrap = readonly string[];

/** The [command, args] that run node with `args`, through `wrap` when one is given. */
function nodeCommand(args: string[], wrap: CommandWrap | undefined): [string, string[]] {
  if (wrap === undefined || wrap.length === 0) return [process.execPath, args];
  return [wrap[0]!, [...wrap.slice(1), process.execPath, ...args]];
}

function baseEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { ...process.env, WICKET_LOG_FORMAT: 'json', WICKET_LOG_LEVEL: process.env.WICKET_TEST_PROCESS_LOG_LEVEL ?? 'info', ...extra };
}

// --- one-shot commands -------------------------------------------------------------------------

export interface CommandResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a CLI command to completion (bounded). */
export async function runCommand(
  bin: 'agent' | 'relay',
  args: string[],
  o: { home?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number; wrap?: CommandWrap } = {},
): Promise<CommandResult> {
  const env = baseEnv({ ...(o.home !== undefined ? { WICKET_HOME: o.home } : {}), ...o.env });
  const program = bin === 'agent' ? [...AGENT_NODE_FLAGS, AGENT_BIN] : [...RELAY_NODE_FLAGS, RELAY_BIN];
  const proc = new ManagedProcess(`${bin} ${args[0] ?? ''}`, ...nodeCommand([...program, ...args], o.wrap), env);
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), o.timeoutMs ?? 30_000);
  const { code } = await proc.exited;
  clearTimeout(timer);
  // Let the pipes flush their last bytes.
  await new Promise((r) => setImmediate(r));
  return { code, stdout: proc.stdoutLines.join('\n'), stderr: proc.stderrLines.join('\n') };
}

export function runAgent(home: string, args: string[], o: { env?: NodeJS.ProcessEnv; timeoutMs?: number; wrap?: CommandWrap } = {}): Promise<CommandResult> {
  return runCommand('agent', args, { home, ...o });
}

// --- relay -------------------------------------------------------------------------------------

export interface RelayProcess {
  proc: ManagedProcess;
  url: string;
  authority: string;
  adminTicket: string | undefined;
  /** signing (holds the project key) or forwarding (verifies only; PostgreSQL store). */
  role: string;
  dataDir: string;
  /** The listen address (host:port of url), to restart on the same port. */
  listen: string;
}

/** Starts `relay start --listen … --data DIR --json` and waits for its JSON line. */
export async function startRelayProcess(
  o: { dataDir?: string; listen?: string; extraArgs?: string[]; env?: NodeJS.ProcessEnv; nodeArgs?: string[]; wrap?: CommandWrap } = {},
): Promise<RelayProcess> {
  const dataDir = o.dataDir ?? tempDir('wicket-relay-');
  const args = [...RELAY_NODE_FLAGS, ...(o.nodeArgs ?? []), RELAY_BIN, 'start', '--listen', o.listen ?? '127.0.0.1:0', '--data', dataDir, '--json', ...(o.extraArgs ?? [])];
  const proc = new ManagedProcess('relay', ...nodeCommand(args, o.wrap), baseEnv(o.env));
  const info = await proc.waitForJson<{ url: string; authority: string; role: string; adminTicketFile?: string }>((v) => typeof v.url === 'string');
  // The relay prints the admin ticket's text only to a terminal; scripts read the file it names.
  const adminTicket = info.adminTicketFile === undefined ? undefined : readFileSync(info.adminTicketFile, 'utf8').trim();
  return { proc, url: info.url, authority: info.authority, adminTicket, role: info.role, dataDir, listen: new URL(info.url).host };
}

/** `relay authority --store URL --authority-key FILE --json` (the signer alone); waits for its JSON line. */
export async function startAuthorityProcess(o: {
  store: string;
  keyFile: string;
  env?: NodeJS.ProcessEnv;
  extraArgs?: string[];
}): Promise<{ proc: ManagedProcess; authority: string; endorsedExisting: number }> {
  const args = [...RELAY_NODE_FLAGS, RELAY_BIN, 'authority', '--store', o.store, '--authority-key', o.keyFile, '--json', ...(o.extraArgs ?? [])];
  const proc = new ManagedProcess('relay authority', process.execPath, args, baseEnv(o.env));
  const info = await proc.waitForJson<{ authority: string; endorsedExisting: number }>((v) => typeof v.authority === 'string');
  return { proc, authority: info.authority, endorsedExisting: info.endorsedExisting };
}

/**
 * Mints a ticket from the relay's data folder (`relay ticket create`, no admin identity needed).
 * `extraArgs` and `env` reach the command: e.g. `--store postgres://… --authority-key FILE` and
 * PGPASSWORD for a relay on a shared store.
 */
export async function createTicket(
  relay: RelayProcess,
  o: { attributes?: string[]; relayNames?: string[]; usageCount?: number; expiresIn?: string; extraArgs?: string[]; env?: NodeJS.ProcessEnv } = {},
): Promise<string> {
  const args = ['ticket', 'create', '--data', relay.dataDir, '--json', ...(o.extraArgs ?? [])];
  for (const a of o.attributes ?? []) args.push('--attribute', a);
  for (const r of o.relayNames ?? []) args.push('--relay', r);
  if (o.usageCount !== undefined) args.push('--usage-count', String(o.usageCount));
  if (o.expiresIn !== undefined) args.push('--expires-in', o.expiresIn);
  const result = await runCommand('relay', args, o.env === undefined ? {} : { env: o.env });
  if (result.code !== 0) throw new Error(`relay ticket create failed (${result.code}): ${result.stderr}`);
  return (JSON.parse(result.stdout.trim().split('\n').pop()!) as { ticket: string }).ticket;
}

// --- agents ------------------------------------------------------------------------------------

export interface AgentHome {
  home: string;
  identifier: string;
}

/** A fresh WICKET_HOME enrolled with a new ticket carrying `attributes` and `relayNames`. */
export async function enrollAgent(
  relay: RelayProcess,
  o: { attributes?: string[]; relayNames?: string[]; ticket?: string; wrap?: CommandWrap } = {},
): Promise<AgentHome> {
  const home = tempDir('wicket-agent-');
  const ticket = o.ticket ?? (await createTicket(relay, o));
  const ticketFile = join(home, 'enroll.ticket');
  writeFileSync(ticketFile, ticket, { mode: 0o600 });
  const result = await runAgent(home, ['enroll', '--ticket-file', ticketFile, '--json'], o.wrap === undefined ? {} : { wrap: o.wrap });
  rmSync(ticketFile, { force: true });
  if (result.code !== 0) throw new Error(`agent enroll failed (${result.code}): ${result.stderr}`);
  const info = JSON.parse(result.stdout.trim().split('\n').pop()!) as { identifier: string };
  return { home, identifier: info.identifier };
}

export interface NodeConfigInput {
  outlets?: Record<string, unknown>[];
  inlets?: Record<string, unknown>[];
}

export interface NodeProcess {
  proc: ManagedProcess;
  home: string;
  identifier: string;
  /** inlet name → "host:port" actually bound. */
  inlets: Record<string, string>;
  ready: Record<string, unknown>;
}

/** `agent node start --json [--config F] [...args]` with its own home; waits for the ready line. */
/** `nodeArgs` go to node itself (e.g. ['--cpu-prof', '--cpu-prof-dir=/tmp/prof'] to profile); */
/** `args` go to `agent node start` (e.g. ['--metrics', '127.0.0.1:0']); `wrap` prefixes the command. */
export async function startNodeProcess(
  agent: AgentHome,
  config?: NodeConfigInput,
  o: { env?: NodeJS.ProcessEnv; timeoutMs?: number; nodeArgs?: string[]; args?: string[]; wrap?: CommandWrap } = {},
): Promise<NodeProcess> {
  const args = [...AGENT_NODE_FLAGS, ...(o.nodeArgs ?? []), AGENT_BIN, 'node', 'start', '--json', ...(o.args ?? [])];
  if (config !== undefined) {
    const file = join(agent.home, 'node.json');
    writeFileSync(file, JSON.stringify(config, null, 2), { mode: 0o600 });
    args.push('--config', file);
  }
  const proc = new ManagedProcess(`node ${agent.identifier.slice(0, 9)}`, ...nodeCommand(args, o.wrap), baseEnv({ WICKET_HOME: agent.home, ...o.env }));
  const ready = await proc.waitForJson((v) => v.ready === true, o.timeoutMs);
  const inlets: Record<string, string> = {};
  for (const i of (ready.inlets as { name: string; address: string }[] | undefined) ?? []) inlets[i.name] = i.address;
  return { proc, home: agent.home, identifier: String(ready.identifier), inlets, ready };
}

/** Kills every process these helpers started and removes their temp folders. */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((p) => p.kill('SIGTERM', 3_000)));
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}
