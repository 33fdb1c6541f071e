import { MAX_TICKET_RELAYS } from '../protocol/limits.js';
import { sameRelays } from '../protocol/relay-directory.js';
import type { TicketRelay } from '../protocol/ticket.js';
import { dialRelay } from './relay-dial.js';
import type { RelayLink } from './relay-link.js';
import type { Enrollment } from './vault.js';

// The relays an agent may use, from its ticket (issue 14, "Several relays"): the relays of one
// project share a store, so any of them authenticates this agent. The agent dials the current one;
// when it is lost (a dial fails or the connection drops) it moves on to the next, round-robin.
// Within a round the next relay is dialled at once, so a dead relay costs no backoff delay when
// another is up; after a whole round failed the caller waits its backoff delay, so an agent whose
// every relay is down retries no faster than an agent with one relay.
//
// The list starts as the enrollment's and follows what the relays say: each relay tells its agents
// the project's relays (`relays`, protocol/relay-directory.ts), and learn() takes that list
// without leaving the relay in use, so an agent enrolled when the project had one relay can still
// move to the relays added since.

export class RelayList {
  #relays: readonly TicketRelay[];
  #index = 0;
  /** Failures since the last successful connection. */
  #failures = 0;

  constructor(relays: readonly TicketRelay[]) {
    if (relays.length === 0) throw new Error('a relay list is never empty');
    this.#relays = relays;
  }

  /** The enrollment's relays, in dial order: the ticket's (or the last list a relay sent), first relay first. */
  static of(e: Enrollment): RelayList {
    const first: TicketRelay = e.relayCertFingerprint === undefined ? { url: e.relayUrl } : { url: e.relayUrl, fingerprint: e.relayCertFingerprint };
    return new RelayList([first, ...(e.otherRelays ?? [])]);
  }

  get current(): TicketRelay {
    return this.#relays[this.#index]!;
  }

  get urls(): string[] {
    return this.#relays.map((r) => r.url);
  }

  get size(): number {
    return this.#relays.length;
  }

  /** Every relay, in dial order (what the enrollment keeps). */
  get relays(): readonly TicketRelay[] {
    return this.#relays;
  }

  /**
   * The project's relays as the relay in use lists them (itself first): they replace the list, in
   * their order, and the relay in use stays current, so the connection is not disturbed and the
   * next loss moves to the relay after it. A relay in use that the list leaves out (reached under
   * another URL than the one it lists itself under) is kept in front: it is proven to work.
   * Returns whether the list changed.
   */
  learn(listed: readonly TicketRelay[]): boolean {
    if (listed.length === 0) return false;
    const current = this.current;
    const next = listed.some((r) => r.url === current.url) ? [...listed] : [current, ...listed].slice(0, MAX_TICKET_RELAYS);
    if (sameRelays(next, this.#relays)) return false;
    this.#relays = next;
    this.#index = next.findIndex((r) => r.url === current.url);
    return true;
  }

  /**
   * Dials the current relay (see relay-dial.ts). `avoid`: a relay to pass over while another is
   * listed (an outlet's standby connection keeps off the relay its main connection is on); passing
   * over it is not a failure, so it costs no backoff.
   */
  dial(o: { insecure: boolean; timeoutMs: number; signal: AbortSignal; avoid?: string | undefined }): Promise<RelayLink> {
    const { avoid, ...options } = o;
    if (avoid !== undefined && this.current.url === avoid && this.#relays.length > 1) this.#index = (this.#index + 1) % this.#relays.length;
    return dialRelay({ url: this.current.url, fingerprint: this.current.fingerprint, ...options });
  }

  /**
   * The current relay was lost: the next one becomes current. True when every relay failed once
   * since the last success (a full round): time for the backoff delay before dialling again.
   */
  failed(): boolean {
    this.#failures++;
    this.#index = (this.#index + 1) % this.#relays.length;
    return this.#failures % this.#relays.length === 0;
  }

  /** Connected to the current relay: the next loss starts a new round from it. */
  connected(): void {
    this.#failures = 0;
  }
}
