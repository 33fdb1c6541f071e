import { join } from 'node:path';
import { createTicket, startRelayProcess, type RelayProcess } from '../lib/local-processes.js';
import { PG_USER, postgresBinaries, startPostgresCluster } from '../lib/postgres-cluster.js';
import { assertNotLeaving, onCleanup } from './cleanup.js';

// The relays of `npm run bench:scale`, as an operator runs them: `relay start` from the built CLI
// (TLS with its generated certificate, pinned in the tickets, unless told otherwise), and the
// tickets the agents enroll with, minted from each relay's data folder (`relay ticket create
// --usage-count N`):
//
//   one relay     the default store (SQLite in its data folder); one ticket for every agent
//   three relays  one PostgreSQL store (a throwaway cluster, scripts/lib/postgres-cluster.ts): the
//                 first relay records the project, the other two join with its authority key
//                 (--authority-key). One ticket per relay, minted from its folder so it names that
//                 relay first: agent i redeems ticket i mod 3, which spreads the agents evenly.
//
// restart() stops every relay and starts it again on its folder and port, as after an upgrade:
// the bench enrolls the agents, restarts, and only then lets them connect, so a relay's memory
// holds connected agents and none of the enrollment's garbage. The relays log at warn, so their
// own log lines do not weigh on what is measured.

export interface ScaleRelays {
  /** What the relays keep their authority in, for the report. */
  store: string;
  /** Replaced in place by restart(). */
  readonly relays: RelayProcess[];
  /** Agent i enrolls with tickets[i % tickets.length]. */
  tickets: string[];
  restart(): Promise<void>;
  stop(): Promise<void>;
}

type Start = (o: { dataDir?: string; listen?: string }) => Promise<RelayProcess>;

/** Stops relays[i] and starts it again on its folder and port with `start`, one after another. */
async function restartEach(relays: RelayProcess[], start: (i: number) => Start): Promise<void> {
  for (const [i, relay] of relays.entries()) {
    await relay.proc.kill('SIGTERM', 5_000);
    assertNotLeaving('a restarted relay');
    relays[i] = await start(i)({ dataDir: relay.dataDir, listen: relay.listen });
  }
}

const TICKET_LIFETIME = '6h';
const ATTRIBUTE = 'bench-scale';

/** How many of agents 0..total-1 redeem ticket k of `tickets` (i mod tickets === k). */
export function agentsOfTicket(total: number, tickets: number, k: number): number {
  return Math.floor(total / tickets) + (k < total % tickets ? 1 : 0);
}

function relayArgs(tls: boolean, store: string[]): string[] {
  return [...(tls ? ['--tls'] : []), ...store];
}

const QUIET = { WICKET_LOG_LEVEL: 'warn' };

export async function startOneRelay(agents: number, o: { tls: boolean }): Promise<ScaleRelays> {
  assertNotLeaving('the relay');
  const start: Start = (at) => startRelayProcess({ ...at, extraArgs: relayArgs(o.tls, []), env: QUIET });
  const relays = [await start({})];
  const stop = onCleanup('scale relay', () => relays[0]!.proc.kill('SIGTERM', 5_000).then(() => undefined));
  try {
    const ticket = await createTicket(relays[0]!, { attributes: [ATTRIBUTE], usageCount: agents, expiresIn: TICKET_LIFETIME });
    return { store: 'SQLite', relays, tickets: [ticket], restart: () => restartEach(relays, () => start), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Why three relays cannot run here, or undefined. */
export function threeRelaysUnavailable(): string | undefined {
  const found = postgresBinaries();
  return 'skip' in found ? found.skip : undefined;
}

export async function startThreeRelays(agents: number, o: { tls: boolean }): Promise<ScaleRelays> {
  assertNotLeaving('PostgreSQL');
  const cluster = await startPostgresCluster();
  const stopCluster = onCleanup('scale PostgreSQL', () => cluster.stop());
  const relays: RelayProcess[] = [];
  const stopRelays = onCleanup('scale relays', async () => {
    await Promise.all(relays.map((r) => r.proc.kill('SIGTERM', 5_000)));
  });
  const stop = async () => {
    await stopRelays();
    await stopCluster();
  };
  try {
    // The password stays out of the URL (and so out of `ps`): pg reads PGPASSWORD.
    const database = await cluster.createDatabase('scale');
    const store = `postgres://${PG_USER}@127.0.0.1:${cluster.port}/${database}`;
    const env = { ...QUIET, PGPASSWORD: cluster.password };
    // The first relay records the project in the store and makes the key in its folder; the
    // others join with that key file (it stays put across restarts).
    const shared = () => ['--store', store, '--authority-key', join(relays[0]!.dataDir, 'authority.key')];
    const startAs =
      (i: number): Start =>
      (at) =>
        startRelayProcess({ ...at, extraArgs: relayArgs(o.tls, i === 0 ? ['--store', store] : shared()), env });
    for (let i = 0; i < 3; i++) {
      assertNotLeaving('a relay');
      relays.push(await startAs(i)({}));
    }
    const tickets: string[] = [];
    for (const [k, relay] of relays.entries()) {
      tickets.push(await createTicket(relay, { attributes: [ATTRIBUTE], usageCount: Math.max(1, agentsOfTicket(agents, 3, k)), expiresIn: TICKET_LIFETIME, extraArgs: shared(), env }));
    }
    return { store: 'PostgreSQL (one, shared)', relays, tickets, restart: () => restartEach(relays, startAs), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
