import type { Logger } from 'pino';
import { wicketError } from '../protocol/errors.js';
import type { Identifier } from '../protocol/identity.js';
import type { Authority } from './authority/authority.js';
import type { LiveConnections } from './live-connections.js';

// Revocation that bites (DESIGN.md property 5, relay-semantics.md "Revocation"): the store marks
// the member revoked (new connections refused at once), then every live connection of that
// identity gets `error {WICKET_ERR_REVOKED}` and is closed (its circuits close with
// WICKET_ERR_REVOKED at the other ends), and every other authenticated connection is told
// `revoked {identifier}` so agents drop their channels with it.
//
// Revocations made elsewhere (`relay member revoke` from the data folder, or another relay sharing
// the store) are picked up by polling the store's revocation sequence every revocationPollMs.

export interface RevocationResult {
  readonly identifier: Identifier;
  readonly revokedAt: number;
  readonly closedConnections: number;
}

export class Revocation {
  #lastSeq = 0;
  /** Sequence numbers this relay applied itself; the poller skips them. */
  readonly #appliedHere = new Set<number>();
  #timer: NodeJS.Timeout | undefined;
  #polling = false;

  constructor(
    private readonly authority: Authority,
    private readonly connections: LiveConnections,
    private readonly pollMs: number,
    private readonly logger: Logger,
  ) {}

  async start(): Promise<void> {
    this.#lastSeq = await this.authority.store.lastRevocationSeq();
    this.#timer = setInterval(() => void this.#poll(), this.pollMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Revokes in the store, then cuts and broadcasts. Throws WICKET_ERR_MEMBER_UNKNOWN. */
  async revoke(identifier: Identifier, revokedBy: string): Promise<RevocationResult> {
    const started = performance.now();
    const revocation = await this.authority.revoke(identifier, revokedBy);
    this.#appliedHere.add(revocation.seq);
    const closedConnections = this.apply(identifier);
    this.logger.info({ identifier, revokedBy, closedConnections, ms: Math.round(performance.now() - started) }, 'revocation applied');
    return { identifier, revokedAt: revocation.revokedAt, closedConnections };
  }

  /** Cuts every connection of `identifier` and tells everyone else. Returns how many were cut. */
  apply(identifier: Identifier): number {
    const cut = this.connections.ofIdentity(identifier);
    for (const connection of cut) {
      connection.fail(wicketError('WICKET_ERR_REVOKED', `${identifier} was revoked`), { circuitCode: 'WICKET_ERR_REVOKED' });
    }
    for (const connection of this.connections.all()) {
      if (connection.state === 'authenticated' && connection.identifier !== identifier) {
        connection.send({ t: 'revoked', identifier });
      }
    }
    return cut.length;
  }

  async #poll(): Promise<void> {
    if (this.#polling) return;
    this.#polling = true;
    try {
      const records = await this.authority.store.revocationsAfter(this.#lastSeq);
      for (const record of records) {
        this.#lastSeq = Math.max(this.#lastSeq, record.seq);
        if (this.#appliedHere.delete(record.seq)) continue;
        const closed = this.apply(record.identifier);
        this.logger.info({ identifier: record.identifier, revokedBy: record.revokedBy, closedConnections: closed }, 'revocation from the store applied');
      }
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'revocation poll failed');
    } finally {
      this.#polling = false;
    }
  }
}
