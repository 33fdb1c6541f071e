import type { IncomingHttpHeaders } from 'node:http';
import type { Logger } from 'pino';
import { asWicketError } from '../protocol/errors.js';
import { MAX_TICKET_RELAYS, RELAY_DIRECTORY_CHECK_INTERVAL_MS, RELAY_DIRECTORY_KEEP_MS, RELAY_LIVE_TIMEOUT_MS } from '../protocol/limits.js';
import { acceptsFeature, AGENT_FEATURES_HEADER, FEATURE_RELAYS, relayProblem, relaysToWire } from '../protocol/relay-directory.js';
import type { WireRelay } from '../protocol/relay-messages.js';
import type { TicketRelay } from '../protocol/ticket.js';
import type { Authority } from './authority/authority.js';
import type { RelayRecord } from './authority/store.js';
import type { RelayPeer } from './peer.js';

// Telling connected agents which relays the project has now (issue 14; protocol/README.md, "The
// relays message"). Tickets carry the live relays of the moment they were made, so an agent
// enrolled when the project had one relay would never learn of relays added later and could not
// move to them. Right behind the welcome to an `auth`, this relay sends the agent the list, and
// re-reads the store every RELAY_DIRECTORY_CHECK_INTERVAL_MS while any such agent is connected,
// sending each agent the list again only when it changed. The list, at most MAX_TICKET_RELAYS:
//
//   this relay ‖ the other live relays (presence), by URL ‖ relays silent for less than
//   RELAY_DIRECTORY_KEEP_MS, by URL
//
// Agents replace their list with it, so a retired relay leaves their lists a day after its last
// heartbeat, while one down for maintenance stays at the end as a last resort. The order is the
// same for every agent of this relay, so when this relay dies they all move to the same next relay
// and an inlet meets its outlet again there; a live relay comes before one that may be dead.
//
// Only agents whose upgrade request named the `relays` feature get it: an older agent closes the
// connection on a message type it does not know. A store row this relay could not list without
// the agent refusing the whole message (a URL outside the ticket's rules) is left out, with one
// warning per URL. The directory owns who was told what; a connection is seen only as a RelayPeer.

interface DirectoryList {
  /** The JSON of `wire`: what "changed" compares. */
  readonly key: string;
  readonly wire: WireRelay[];
}

export class RelayDirectory {
  readonly #authority: Authority;
  readonly #logger: Logger;
  readonly #intervalMs: number;
  /** Connections whose upgrade request named the feature (weak: one refused before its welcome just goes). */
  readonly #accepting = new WeakSet<RelayPeer>();
  /** Authenticated agents that take the list, each with the key of the list it was sent last. */
  readonly #told = new Map<RelayPeer, string>();
  #list: DirectoryList | undefined;
  #timer: NodeJS.Timeout | undefined;
  #checking = false;
  /** Whether the last read failed: warn once per outage, say when it works again. */
  #failing = false;
  /** Problems already warned about (a store row or this relay's own URL unfit for a list), once each. */
  readonly #warned = new Set<string>();

  constructor(authority: Authority, logger: Logger, intervalMs = RELAY_DIRECTORY_CHECK_INTERVAL_MS) {
    this.#authority = authority;
    this.#logger = logger;
    this.#intervalMs = intervalMs;
  }

  /** For each accepted WebSocket (server.ts): notes whether the agent said it understands `relays`. */
  connected(peer: RelayPeer, headers: IncomingHttpHeaders): void {
    if (acceptsFeature(headers[AGENT_FEATURES_HEADER], FEATURE_RELAYS)) this.#accepting.add(peer);
  }

  /**
   * Right behind the welcome to an `auth` (connection.ts): the list as last read, at once, and
   * every change from now on. The first agent after a quiet spell starts the periodic re-read.
   */
  welcomed(peer: RelayPeer): void {
    if (!this.#accepting.has(peer) || !peer.isOpen) return;
    this.#told.set(peer, '');
    if (this.#list !== undefined) this.#tell(peer, this.#list);
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => void this.#check(), this.#intervalMs);
    this.#timer.unref();
    // The list kept from before a quiet spell may be stale, and a first one is wanted now.
    void this.#check();
  }

  async #check(): Promise<void> {
    for (const peer of this.#told.keys()) if (!peer.isOpen) this.#told.delete(peer);
    if (this.#told.size === 0) {
      // Nobody to tell: stop reading the store (a closed relay's last agents are gone too).
      clearInterval(this.#timer);
      this.#timer = undefined;
      return;
    }
    const self = this.#authority.endpoint;
    if (this.#checking || self === undefined) return;
    this.#checking = true;
    try {
      const now = this.#authority.now();
      const relays = this.#listOf(self, await this.#authority.store.liveRelays(now, RELAY_DIRECTORY_KEEP_MS), now);
      if (this.#failing) this.#logger.info('reading the project\'s relays works again');
      this.#failing = false;
      if (relays === undefined) return;
      const wire = relaysToWire(relays);
      const key = JSON.stringify(wire);
      if (key !== this.#list?.key) {
        if (this.#list !== undefined) this.#logger.info({ relays: relays.map((r) => r.url), agents: this.#told.size }, 'the project\'s relays changed; telling the connected agents');
        this.#list = { key, wire };
      }
      const list = this.#list;
      for (const [peer, sent] of [...this.#told]) if (sent !== key) this.#tell(peer, list);
    } catch (err) {
      // Agents keep the list they were sent; the store outage itself is reported elsewhere.
      if (!this.#failing) this.#logger.warn({ code: asWicketError(err).code }, 'could not read the project\'s relays; agents keep the list they have');
      this.#failing = true;
    } finally {
      this.#checking = false;
    }
  }

  /** This relay, the live others, the recently seen others; undefined when this relay's own URL cannot be listed. */
  #listOf(self: { url: string; fingerprint?: Buffer }, seen: readonly RelayRecord[], now: number): TicketRelay[] | undefined {
    const own: TicketRelay = self.fingerprint === undefined ? { url: self.url } : { url: self.url, fingerprint: self.fingerprint };
    if (!this.#fit(own)) return undefined;
    const others = seen.filter((r) => r.url !== self.url && this.#fit(r));
    const byUrl = (a: RelayRecord, b: RelayRecord): number => (a.url < b.url ? -1 : a.url > b.url ? 1 : 0);
    const live = others.filter((r) => r.lastSeen >= now - RELAY_LIVE_TIMEOUT_MS).sort(byUrl);
    const resting = others.filter((r) => r.lastSeen < now - RELAY_LIVE_TIMEOUT_MS).sort(byUrl);
    const listed = [...live, ...resting].slice(0, MAX_TICKET_RELAYS - 1);
    return [own, ...listed.map((r): TicketRelay => (r.fingerprint === undefined ? { url: r.url } : { url: r.url, fingerprint: r.fingerprint }))];
  }

  #fit(relay: { url: string; fingerprint?: Buffer }): boolean {
    const problem = relayProblem(relay);
    if (problem === undefined) return true;
    const warning = `${relay.url.slice(0, 80)}: ${problem}`;
    if (!this.#warned.has(warning)) {
      this.#warned.add(warning);
      this.#logger.warn({ relay: relay.url.slice(0, 80), problem }, 'a relay of the store cannot be listed to agents (its URL breaks the ticket rules); left out');
    }
    return false;
  }

  #tell(peer: RelayPeer, list: DirectoryList): void {
    if (!peer.isOpen) {
      this.#told.delete(peer);
      return;
    }
    this.#told.set(peer, list.key);
    // Counts against the peer's buffer cap like any reply (over it the peer is dropped).
    peer.send({ t: 'relays', relays: list.wire });
  }
}
