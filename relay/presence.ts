import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { asWicketError } from '../protocol/errors.js';
import { RELAY_HEARTBEAT_INTERVAL_MS } from '../protocol/limits.js';
import type { RelayEndpoint } from './authority/authority.js';
import type { AuthorityStore } from './authority/store.js';

// This relay's presence in the store (issue 14, "Several relays"): a row with its public URL, its
// pinned certificate when self-signed, and a heartbeat. Tickets list the relays seen within
// RELAY_LIVE_TIMEOUT_MS, so agents enrolled with them can move to another relay when theirs dies.
// A relay that stops or is killed simply stops beating and ages out of new tickets.

export class RelayPresence {
  /** Random per process: tells apart, in the store and the logs, two relays that took turns on one URL. */
  readonly relayId = randomBytes(8).toString('hex');
  readonly #store: AuthorityStore;
  readonly #endpoint: RelayEndpoint;
  readonly #logger: Logger;
  readonly #now: () => number;
  #timer: NodeJS.Timeout | undefined;
  /** Whether the last heartbeat failed: warn on the first failure and say when it works again. */
  #failing = false;

  constructor(o: { store: AuthorityStore; endpoint: RelayEndpoint; logger: Logger; now: () => number }) {
    this.#store = o.store;
    this.#endpoint = o.endpoint;
    this.#logger = o.logger;
    this.#now = o.now;
  }

  /** Records this relay at once (so its own first tickets list it), then every heartbeat. */
  async start(): Promise<void> {
    await this.#beat();
    this.#timer = setInterval(() => void this.#beat(), RELAY_HEARTBEAT_INTERVAL_MS);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  async #beat(): Promise<void> {
    try {
      await this.#store.upsertRelay({ relayId: this.relayId, url: this.#endpoint.url, lastSeen: this.#now(), ...(this.#endpoint.fingerprint === undefined ? {} : { fingerprint: this.#endpoint.fingerprint }) });
      if (this.#failing) this.#logger.info({ relayId: this.relayId }, 'presence recorded in the store again');
      this.#failing = false;
    } catch (err) {
      // The store outage itself is reported by the revocation re-read; one line here is enough.
      if (!this.#failing) this.#logger.warn({ code: asWicketError(err).code, relayId: this.relayId }, 'could not record this relay\'s presence in the store; new tickets from other relays may leave it out');
      this.#failing = true;
    }
  }
}
