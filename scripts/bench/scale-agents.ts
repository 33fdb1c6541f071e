import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { enroll } from '../../agent/enroll.js';
import { RelayClient } from '../../agent/relay-client.js';
import { Vault } from '../../agent/vault.js';
import { createLogger } from '../../cli/logger.js';
import { asWicketError } from '../../protocol/errors.js';
import { decodeTicket } from '../../protocol/ticket.js';

// One load generator of `npm run bench:scale` (scale.ts forks a few, from dist/): many idle
// agents in one Node process, each an agent's own code path with its own identity and home:
// `enroll()` (agent/enroll.ts) redeems the bench's multi-use ticket, then a `RelayClient`
// (agent/relay-client.ts) dials, authenticates and stays connected: keepalive, credential
// refreshes, reconnects, as in `agent node start`. Nothing else runs (no inlets, outlets or
// control socket), so what the relay holds per agent is one authenticated, idle connection.
//
// Driven over the IPC channel, one phase at a time (messages below); the bench enrolls with one
// set of workers and connects with a fresh one, so the connected agents' figure holds no
// enrollment garbage. Each phase runs at most `concurrency` agents at once and reports progress
// every PROGRESS_MS. Leaves when the parent says stop or goes away (its IPC channel closes), so
// no worker outlives the bench.

export type ToWorker =
  /** Agents first..first+count-1 (bench-wide numbers); agent i redeems tickets[i % tickets.length]. */
  | { t: 'enroll'; first: number; count: number; tickets: string[]; homes: string; concurrency: number }
  /** The enrolled agents among first..first+count-1 connect (a fresh worker may do this: the homes hold all it needs). */
  | { t: 'connect'; first: number; count: number; homes: string; concurrency: number; timeoutMs: number }
  | { t: 'count' }
  | { t: 'stop' };

export type Failures = Record<string, number>;

export type FromWorker =
  | { t: 'progress'; done: number; failed: number }
  | { t: 'done'; ok: number; failures: Failures }
  /** Agents connected now, by the relay URL they are on; drops: 'disconnected' events since connecting. */
  | { t: 'count'; connected: number; byRelay: Record<string, number>; drops: number }
  | { t: 'error'; message: string };

const PROGRESS_MS = 500;

const log = createLogger('bench-scale-agents', { defaultLevel: 'error', pretty: false });
const clients: RelayClient[] = [];
let drops = 0;

function send(message: FromWorker): void {
  process.send?.(message);
}

/** Runs `each` over `items`, `limit` at a time; reports progress while it runs. */
async function inPool<T>(items: readonly T[], limit: number, each: (item: T) => Promise<string | undefined>): Promise<{ ok: number; failures: Failures }> {
  const failures: Failures = {};
  let next = 0;
  let ok = 0;
  let failed = 0;
  const progress = setInterval(() => send({ t: 'progress', done: ok, failed }), PROGRESS_MS);
  const lane = async () => {
    while (next < items.length) {
      const failure = await each(items[next++]!).catch((err: unknown) => asWicketError(err).code);
      if (failure === undefined) ok++;
      else {
        failed++;
        failures[failure] = (failures[failure] ?? 0) + 1;
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, lane));
  } finally {
    clearInterval(progress);
  }
  return { ok, failures };
}

async function enrollAll(m: Extract<ToWorker, { t: 'enroll' }>): Promise<{ ok: number; failures: Failures }> {
  const tickets = m.tickets.map((text) => decodeTicket(text));
  const indexes = Array.from({ length: m.count }, (_, i) => m.first + i);
  return inPool(indexes, m.concurrency, async (index) => {
    const home = join(m.homes, `a${index}`);
    mkdirSync(home, { mode: 0o700 });
    await enroll({ ticket: tickets[index % tickets.length]!, vault: Vault.open(home), logger: log });
    return undefined;
  });
}

/** Starts one agent's relay client; resolves once it is connected, or why not within timeoutMs. */
function connectOne(vault: Vault, timeoutMs: number): Promise<string | undefined> {
  const client = new RelayClient({ vault, logger: log });
  return new Promise((resolve) => {
    const settle = (failure: string | undefined) => {
      clearTimeout(timer);
      client.off('connected', onConnected);
      client.off('fatal', onFatal);
      if (failure === undefined) {
        clients.push(client);
        client.on('disconnected', () => drops++);
      } else void client.stop();
      resolve(failure);
    };
    const onConnected = () => settle(undefined);
    const onFatal = (err: unknown) => settle(asWicketError(err).code);
    // A client that keeps failing keeps retrying with backoff; after timeoutMs it counts as failed, with its last error.
    const timer = setTimeout(() => settle(client.lastError?.code ?? 'WICKET_ERR_RELAY_TIMEOUT'), timeoutMs);
    client.on('connected', onConnected);
    client.on('fatal', onFatal);
    client.start();
  });
}

function count(): Extract<FromWorker, { t: 'count' }> {
  const byRelay: Record<string, number> = {};
  let connected = 0;
  for (const client of clients) {
    if (!client.connected) continue;
    connected++;
    byRelay[client.relayUrl] = (byRelay[client.relayUrl] ?? 0) + 1;
  }
  return { t: 'count', connected, byRelay, drops };
}

async function stopAll(): Promise<void> {
  // Bounded by the parent, which kills this process if it takes too long.
  await Promise.all(clients.map((c) => c.stop().catch(() => undefined)));
}

async function handle(m: ToWorker): Promise<void> {
  switch (m.t) {
    case 'enroll':
      send({ t: 'done', ...(await enrollAll(m)) });
      return;
    case 'connect': {
      // An agent whose enrollment failed has nothing to connect with; the enroll phase counted it.
      const vaults = Array.from({ length: m.count }, (_, i) => Vault.open(join(m.homes, `a${m.first + i}`))).filter((v) => v.enrollment() !== undefined);
      send({ t: 'done', ...(await inPool(vaults, m.concurrency, (vault) => connectOne(vault, m.timeoutMs))) });
      return;
    }
    case 'count':
      send(count());
      return;
    case 'stop':
      await stopAll();
      process.exit(0);
  }
}

process.on('message', (m: ToWorker) => {
  handle(m).catch((err: unknown) => send({ t: 'error', message: asWicketError(err).message }));
});
process.on('disconnect', () => process.exit(0));
