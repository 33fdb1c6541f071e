import type { Logger } from 'pino';
import { asWicketError } from '../../protocol/errors.js';
import { MESH_NAMES_REREAD_MS } from '../../protocol/limits.js';
import type { AuthorityStore } from '../authority/store.js';

// Which relays serve which relay names (DESIGN.md, "Several relays"): the store holds one row per
// (relay, name) a relay has a live local outlet for; every relay caches the whole map and re-reads
// it when another relay's names change (NOTIFY) and every MESH_NAMES_REREAD_MS as a backstop. This
// relay's own names are written when they change; a write that failed (the store was away) is
// retried on each re-read until it lands. The router asks only the cache: opening
// a circuit never waits on the store.

export class NameDirectory {
  readonly #store: AuthorityStore;
  readonly #relayId: string;
  readonly #now: () => number;
  readonly #logger: Logger;
  /** name → relay ids serving it (other relays only). */
  #remote = new Map<string, string[]>();
  /** This relay's own names as the router last said: name → served. */
  readonly #local = new Map<string, boolean>();
  /** Own names whose last write failed (the store was away): written again on each re-read. */
  readonly #unwritten = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  #reading: Promise<void> | undefined;
  #readAgain = false;
  #failing = false;
  #writes: Promise<void> = Promise.resolve();

  constructor(o: { store: AuthorityStore; relayId: string; now: () => number; logger: Logger }) {
    this.#store = o.store;
    this.#relayId = o.relayId;
    this.#now = o.now;
    this.#logger = o.logger;
  }

  async start(): Promise<void> {
    this.#store.changes?.onServedNames(() => this.refresh());
    await this.#read();
    this.#timer = setInterval(() => {
      this.#retryWrites();
      this.refresh();
    }, MESH_NAMES_REREAD_MS);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** Relay ids of the other relays serving `name`, as last read. */
  relaysServing(name: string): readonly string[] {
    return this.#remote.get(name) ?? [];
  }

  /** This relay gained its first, or lost its last, local server of `name`. */
  localServing(name: string, served: boolean): void {
    this.#local.set(name, served);
    this.#write(name);
  }

  /**
   * Writes the name's current state. Writes go one at a time (a register and an unregister in
   * quick succession must land in order), and each writes the latest state, never a superseded one.
   */
  #write(name: string): void {
    this.#writes = this.#writes.then(() => this.#writeNow(name));
  }

  async #writeNow(name: string): Promise<void> {
    const served = this.#local.get(name) ?? false;
    await this.#store.setServedName(this.#relayId, name, served).then(
      () => {
        if (!served && this.#local.get(name) === false) this.#local.delete(name);
      },
      (err: unknown) => {
        this.#unwritten.add(name);
        this.#storeFailed(err, 'recording a served name');
      },
    );
  }

  /** Re-reads the map (coalesced: one read at a time, and one more if asked meanwhile). */
  refresh(): void {
    if (this.#reading !== undefined) {
      this.#readAgain = true;
      return;
    }
    this.#reading = this.#read()
      .catch((err: unknown) => this.#storeFailed(err, 'reading served names'))
      .finally(() => {
        this.#reading = undefined;
        if (this.#readAgain) {
          this.#readAgain = false;
          this.refresh();
        }
      });
  }

  async #read(): Promise<void> {
    const rows = await this.#store.servedNames(this.#now());
    const next = new Map<string, string[]>();
    for (const { relayId, name } of rows) {
      if (relayId === this.#relayId) continue;
      const relays = next.get(name);
      if (relays === undefined) next.set(name, [relayId]);
      else relays.push(relayId);
    }
    this.#remote = next;
    if (this.#failing) this.#logger.info('served names read from the store again');
    this.#failing = false;
  }

  #retryWrites(): void {
    const due = [...this.#unwritten];
    this.#unwritten.clear();
    for (const name of due) this.#write(name);
  }

  #storeFailed(err: unknown, what: string): void {
    // The store outage itself is reported by the revocation re-read; one line here is enough.
    if (!this.#failing) this.#logger.warn({ code: asWicketError(err).code, what }, 'mesh routing could not use the store; routing on what it last read');
    this.#failing = true;
  }
}
