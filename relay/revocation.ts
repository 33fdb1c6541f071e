import type { Logger } from 'pino';
import { wicketError } from '../protocol/errors.js';
import type { Identifier } from '../protocol/identity.js';
import { STORE_OUTAGE_WARN_INTERVAL_MS } from '../protocol/limits.js';
import type { RelayToAgent } from '../protocol/relay-messages.js';
import type { Authority } from './authority/authority.js';
import type { RevocationEvent } from './authority/store.js';
import type { LiveConnections } from './live-connections.js';
import type { RelayPeer } from './peer.js';
import type { RevocationCounts } from './relay-counters.js';

// Revocation that bites (DESIGN.md property 5). The store's revocation events (revoke, reinstate)
// are the one sequence everybody follows, in seq order:
//
// - This relay applies them in order: a revoke cuts every connection of that identity (their
//   circuits close with WICKET_ERR_REVOKED at the other ends) and tells every other authenticated
//   agent `revoked {seq, identifier, until}`; a reinstate tells them `reinstated {seq, identifier}`.
//   Events from elsewhere (`relay member revoke` on the data folder, other relays on a shared
//   PostgreSQL store) are picked up by polling the store every pollMs, and with PostgreSQL at
//   once through its change feed (LISTEN/NOTIFY; the poll is then a backstop); events made here are applied through the same
//   path at once, so pushes always leave in seq order.
// - Agents keep a revoked set and refuse handshakes with it, whoever opened the circuit. An agent
//   that was away re-syncs when it authenticates: `auth` carries the last seq it saw, and right
//   behind `welcome` it gets every event after that which still matters, then
//   `revocations-synced {seq}`. Those come from the events this relay holds in memory (the ones of
//   the last `keepMs`, after which every credential of a revoked identity has expired), so the
//   re-sync is synchronous with the welcome and no push can fall between the two.

export interface RevocationResult {
  readonly identifier: Identifier;
  readonly at: number;
  readonly closedConnections: number;
  /** Tickets the revoked identity had redeemed whose remaining uses were spent (0 for a reinstate). */
  readonly ticketsSpent: number;
}

export class Revocation {
  /** Events of the last keepMs, in seq order (the re-sync source). */
  #recent: RevocationEvent[] = [];
  #lastSeq = 0;
  /** Catch-ups run one at a time, so events are applied (and pushed) strictly in order. */
  #queue: Promise<unknown> = Promise.resolve();
  #timer: NodeJS.Timeout | undefined;
  /** Re-reads that failed since the last warning, and when that warning was (undefined: reading works). */
  #failedReads = 0;
  #warnedAt: number | undefined;

  constructor(
    private readonly authority: Authority,
    private readonly connections: LiveConnections,
    private readonly pollMs: number,
    private readonly logger: Logger,
    private readonly counts: RevocationCounts,
  ) {}

  /** Loads the events that still matter and starts polling the store. */
  async start(): Promise<void> {
    this.#lastSeq = await this.authority.store.lastRevocationSeq();
    this.#recent = await this.authority.store.revocationEventsAfter(0, this.authority.now() - this.authority.revocationKeepMs);
    // A store that pushes (PostgreSQL's LISTEN) makes other relays' revocations bite at once; the
    // timer below is then only the backstop re-read.
    this.authority.store.changes?.onRevocationEvents(() => void this.#reread());
    this.#timer = setInterval(() => void this.#reread(), this.pollMs);
    this.#timer.unref();
  }

  /** A catch-up from the store's notification or the timer; a store that is down warns once a minute, not every poll. */
  async #reread(): Promise<void> {
    try {
      await this.#catchUp();
    } catch (err) {
      this.#failedReads++;
      const now = Date.now();
      if (this.#warnedAt !== undefined && now - this.#warnedAt < STORE_OUTAGE_WARN_INTERVAL_MS) return;
      const seconds = Math.round(STORE_OUTAGE_WARN_INTERVAL_MS / 1000);
      this.logger.warn({ err: (err as Error).message, failedReads: this.#failedReads }, `revocation re-read failed (${this.#failedReads} since the last warning); retrying, warning again at most every ${seconds} s`);
      this.#warnedAt = now;
      this.#failedReads = 0;
      return;
    }
    if (this.#warnedAt === undefined) return;
    this.logger.info({ failedReads: this.#failedReads }, 'revocation re-reads work again');
    this.#warnedAt = undefined;
    this.#failedReads = 0;
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Revokes in the store, then cuts and tells everyone (in order with every other event). Throws MEMBER_UNKNOWN. */
  async revoke(identifier: Identifier, by: string): Promise<RevocationResult> {
    const started = performance.now();
    const { event, ticketsSpent } = await this.authority.revoke(identifier, by);
    const cut = await this.#catchUp();
    const closedConnections = cut.get(event.seq) ?? 0;
    this.logger.info({ identifier, by, closedConnections, ticketsSpent, ms: Math.round(performance.now() - started) }, 'revocation applied');
    return { identifier, at: event.at, closedConnections, ticketsSpent };
  }

  /** Reinstates in the store and tells everyone. Throws MEMBER_UNKNOWN / MEMBER_NOT_REVOKED. */
  async reinstate(identifier: Identifier, by: string): Promise<RevocationResult> {
    const event = await this.authority.reinstate(identifier, by);
    await this.#catchUp();
    return { identifier, at: event.at, closedConnections: 0, ticketsSpent: 0 };
  }

  /** What a freshly authenticated agent that last saw `afterSeq` must be told, in order. */
  resyncFor(afterSeq: number, recipient: Identifier): RelayToAgent[] {
    this.#prune();
    // An agent ahead of us saw a sequence this store no longer has (restored from a backup):
    // everything that still matters is sent again, so nothing is skipped on its say-so.
    const after = afterSeq > this.#lastSeq ? 0 : afterSeq;
    const messages: RelayToAgent[] = [];
    for (const event of this.#recent) {
      if (event.seq > after && event.identifier !== recipient) messages.push(this.#messageFor(event));
    }
    messages.push({ t: 'revocations-synced', seq: this.#lastSeq });
    return messages;
  }

  /** Reads and applies every event after the last one applied; returns connections cut per seq. */
  #catchUp(): Promise<Map<number, number>> {
    const run = this.#queue.then(async () => {
      const cut = new Map<number, number>();
      const events = await this.authority.store.revocationEventsAfter(this.#lastSeq, 0);
      for (const event of events) {
        if (event.seq <= this.#lastSeq) continue;
        this.#lastSeq = event.seq;
        this.#recent.push(event);
        cut.set(event.seq, this.#apply(event));
      }
      // Kept short here too, not only when an agent re-syncs: a relay nobody reconnects to
      // would otherwise keep every event of its lifetime.
      this.#prune();
      return cut;
    });
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** Cuts (for a revoke) and tells every other authenticated agent. Returns how many were cut. */
  #apply(event: RevocationEvent): number {
    let cut: RelayPeer[] = [];
    if (event.kind === 'revoke') {
      cut = this.connections.ofIdentity(event.identifier);
      for (const peer of cut) {
        peer.fail(wicketError('WICKET_ERR_REVOKED', `${event.identifier} was revoked`), { circuitCode: 'WICKET_ERR_REVOKED' });
      }
    }
    this.counts.revocationApplied(event.kind);
    const message = this.#messageFor(event);
    for (const peer of this.connections.all()) {
      if (peer.isOpen && peer.identity?.identifier !== event.identifier) peer.send(message);
    }
    this.logger.info({ seq: event.seq, kind: event.kind, identifier: event.identifier, by: event.by, closedConnections: cut.length }, 'revocation event applied');
    return cut.length;
  }

  #messageFor(event: RevocationEvent): RelayToAgent {
    return event.kind === 'revoke'
      ? { t: 'revoked', seq: event.seq, identifier: event.identifier, until: event.at + this.authority.revocationKeepMs }
      : { t: 'reinstated', seq: event.seq, identifier: event.identifier };
  }

  #prune(): void {
    const oldest = this.authority.now() - this.authority.revocationKeepMs;
    let drop = 0;
    while (drop < this.#recent.length && this.#recent[drop]!.at < oldest) drop++;
    if (drop > 0) this.#recent = this.#recent.slice(drop);
  }
}
