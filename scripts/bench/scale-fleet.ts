import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AGENT_NODE_FLAGS, REPO_ROOT } from '../lib/local-processes.js';
import { assertNotLeaving, onCleanup } from './cleanup.js';
import type { Failures, FromWorker, ToWorker } from './scale-agents.js';

// The load generators of `npm run bench:scale`: a few processes (scale-agents.ts, run compiled
// from dist/ with the agent's node flags, as `agent` runs) that together hold every agent. The
// fleet hands each its share of agents, runs one phase at a time on all of them, sums their
// progress and answers, and bounds every phase in time: a worker that does not answer by the
// deadline fails the bench rather than hanging it.
//
// Agent homes (identity key, enrollment) live in one temp folder (agentHomes()) that outlives a
// fleet: one fleet enrolls, the next connects.

const WORKER_SCRIPT = join(REPO_ROOT, 'dist', 'scripts', 'bench', 'scale-agents.js');
/** What one load generator holds at most (its descriptors, and one event loop for all of them). */
const AGENTS_PER_WORKER = 2_500;
const STOP_GRACE_MS = 15_000;

/**
 * A temp folder for the agents' homes, removed at cleanup. On tmpfs (/dev/shm) when there is one:
 * every home is written with an fsync, and 10,000 of them on a disk would measure the disk.
 */
export function agentHomes(): { dir: string; remove: () => Promise<void> } {
  const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'wicket-scale-'));
  return { dir, remove: onCleanup('scale agent homes', () => rmSync(dir, { recursive: true, force: true })) };
}

export type Progress = { done: number; failed: number };

class Worker {
  readonly child: ChildProcess;
  progress: Progress = { done: 0, failed: 0 };
  #waiting: { t: FromWorker['t']; resolve: (m: FromWorker) => void; reject: (e: Error) => void } | undefined;
  readonly exited: Promise<void>;

  constructor(readonly index: number) {
    this.child = spawn(process.execPath, [...AGENT_NODE_FLAGS, WORKER_SCRIPT], { cwd: REPO_ROOT, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.child.on('message', (m: FromWorker) => this.#onMessage(m));
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.#waiting?.reject(new Error(`load generator ${index} exited (${signal ?? code}) in the middle of a phase`));
        this.#waiting = undefined;
        resolve();
      });
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  #onMessage(m: FromWorker): void {
    if (m.t === 'progress') {
      this.progress = { done: m.done, failed: m.failed };
      return;
    }
    const waiting = this.#waiting;
    this.#waiting = undefined;
    if (m.t === 'error') waiting?.reject(new Error(`load generator ${this.index}: ${m.message}`));
    else if (waiting?.t === m.t) waiting.resolve(m);
    else waiting?.reject(new Error(`load generator ${this.index} answered '${m.t}' where '${waiting?.t}' was expected`));
  }

  /** Sends one phase and waits for its answer, at most until `deadline` (Date.now() ms). */
  ask<T extends FromWorker['t']>(message: ToWorker, answer: T, deadline: number): Promise<Extract<FromWorker, { t: T }>> {
    this.progress = { done: 0, failed: 0 };
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting = undefined;
        reject(new Error(`load generator ${this.index} did not finish '${message.t}' in time`));
      }, Math.max(0, deadline - Date.now()));
      this.#waiting = {
        t: answer,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m as Extract<FromWorker, { t: T }>);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.child.send(message);
    });
  }
}

export interface PhaseResult {
  ok: number;
  failures: Failures;
  seconds: number;
}

export interface FleetCount {
  connected: number;
  byRelay: Record<string, number>;
  drops: number;
}

export class AgentFleet {
  readonly #workers: Worker[];
  readonly #shares: { first: number; count: number }[];
  readonly #homes: string;
  readonly stop: () => Promise<void>;

  private constructor(workers: Worker[], shares: { first: number; count: number }[], homes: string, stop: () => Promise<void>) {
    this.#workers = workers;
    this.#shares = shares;
    this.#homes = homes;
    this.stop = stop;
  }

  /** Starts enough load generators for `agents` (at most AGENTS_PER_WORKER each), their homes in `homes`. */
  static start(agents: number, homes: string): AgentFleet {
    if (!existsSync(WORKER_SCRIPT)) throw new Error(`${WORKER_SCRIPT} is missing: run \`npm run build\` first`);
    assertNotLeaving('the load generators');
    const count = Math.max(1, Math.ceil(agents / AGENTS_PER_WORKER));
    const shares = Array.from({ length: count }, (_, w) => {
      const first = Math.floor((agents * w) / count);
      return { first, count: Math.floor((agents * (w + 1)) / count) - first };
    });
    const workers = shares.map((_, w) => new Worker(w));
    const stopWorkers = async () => {
      // Each worker stops its clients (a clean WebSocket close each) and exits; SIGKILL after the grace.
      for (const w of workers) if (w.child.connected) w.child.send({ t: 'stop' } satisfies ToWorker);
      const timer = setTimeout(() => workers.forEach((w) => w.child.kill('SIGKILL')), STOP_GRACE_MS);
      await Promise.all(workers.map((w) => w.exited));
      clearTimeout(timer);
    };
    return new AgentFleet(workers, shares, homes, onCleanup('scale load generators', stopWorkers));
  }

  get pids(): number[] {
    return this.#workers.map((w) => w.pid);
  }

  /** Summed progress of the phase running now. */
  progress(): Progress {
    return this.#workers.reduce((sum, w) => ({ done: sum.done + w.progress.done, failed: sum.failed + w.progress.failed }), { done: 0, failed: 0 });
  }

  /** Every agent redeems its ticket (agent i: tickets[i % tickets.length]), `concurrency` at a time in all. */
  enroll(tickets: string[], o: { concurrency: number; deadline: number }): Promise<PhaseResult> {
    const each = this.#perWorker(o.concurrency);
    return this.#phase((w, i) => w.ask({ t: 'enroll', ...this.#shares[i]!, tickets, homes: this.#homes, concurrency: each }, 'done', o.deadline));
  }

  /** Every enrolled agent connects and authenticates, `concurrency` at a time in all. */
  connect(o: { concurrency: number; timeoutMs: number; deadline: number }): Promise<PhaseResult> {
    const each = this.#perWorker(o.concurrency);
    return this.#phase((w, i) => w.ask({ t: 'connect', ...this.#shares[i]!, homes: this.#homes, concurrency: each, timeoutMs: o.timeoutMs }, 'done', o.deadline));
  }

  async count(deadline: number): Promise<FleetCount> {
    const answers = await Promise.all(this.#workers.map((w) => w.ask({ t: 'count' }, 'count', deadline)));
    const total: FleetCount = { connected: 0, byRelay: {}, drops: 0 };
    for (const a of answers) {
      total.connected += a.connected;
      total.drops += a.drops;
      for (const [url, n] of Object.entries(a.byRelay)) total.byRelay[url] = (total.byRelay[url] ?? 0) + n;
    }
    return total;
  }

  #perWorker(concurrency: number): number {
    return Math.max(1, Math.ceil(concurrency / this.#workers.length));
  }

  async #phase(run: (w: Worker, i: number) => Promise<{ ok: number; failures: Failures }>): Promise<PhaseResult> {
    const started = performance.now();
    const answers = await Promise.all(this.#workers.map(run));
    const result: PhaseResult = { ok: 0, failures: {}, seconds: (performance.now() - started) / 1000 };
    for (const a of answers) {
      result.ok += a.ok;
      for (const [code, n] of Object.entries(a.failures)) result.failures[code] = (result.failures[code] ?? 0) + n;
    }
    return result;
  }
}
