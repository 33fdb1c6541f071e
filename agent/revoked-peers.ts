import { wicketError } from '../protocol/errors.js';
import type { Identifier } from '../protocol/identity.js';
import { MAX_REVOKED_PEERS } from '../protocol/limits.js';

// This agent's copy of the project's revoked set (DESIGN.md property 5): identities whose
// handshakes it refuses, whoever opened the circuit, even while their cached credentials are still
// within their lifetime. Fed by the relay's revocation events, in seq order: pushed as they
// happen, and re-sent after every (re)connect from the last seq this agent saw (`auth` carries it),
// so a push missed while away is never lost. An entry is kept until `until`, when every credential
// the revoked identity was issued has expired and the handshake's expiry check refuses it anyway.
//
// The set is owned by the relay client (it applies what the relay says); the secure channels ask
// `isRevoked` during every handshake.

export interface RevokedEntry {
  readonly identifier: Identifier;
  readonly until: number;
}

export class RevokedPeers {
  readonly #until = new Map<Identifier, number>();
  #lastSeq = 0;

  constructor(private readonly now: () => number) {}

  /** The last revocation event seq this agent applied (0: none); sent in `auth` to re-sync. */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  get size(): number {
    return this.#until.size;
  }

  /** Event `seq`: `identifier` is revoked until `until`. Returns true if it was not refused before. */
  revoked(seq: number, identifier: Identifier, until: number): boolean {
    this.#advance(seq);
    if (until <= this.now()) return false;
    const known = this.#until.has(identifier);
    if (!known && this.#until.size >= MAX_REVOKED_PEERS) {
      this.#prune();
      if (this.#until.size >= MAX_REVOKED_PEERS) {
        throw wicketError('WICKET_ERR_RELAY_PROTOCOL', `the relay sent more than ${MAX_REVOKED_PEERS} live revocations`);
      }
    }
    this.#until.set(identifier, Math.max(until, this.#until.get(identifier) ?? 0));
    return !known;
  }

  /** Event `seq`: an admin reinstated `identifier`. */
  reinstated(seq: number, identifier: Identifier): void {
    this.#advance(seq);
    this.#until.delete(identifier);
  }

  /** The relay finished re-sending everything up to `seq`. */
  synced(seq: number): void {
    this.#advance(seq);
  }

  isRevoked(identifier: string): boolean {
    const until = this.#until.get(identifier as Identifier);
    if (until === undefined) return false;
    if (until > this.now()) return true;
    this.#until.delete(identifier as Identifier);
    return false;
  }

  entries(): RevokedEntry[] {
    this.#prune();
    return [...this.#until].map(([identifier, until]) => ({ identifier, until }));
  }

  #advance(seq: number): void {
    if (seq > this.#lastSeq) this.#lastSeq = seq;
  }

  #prune(): void {
    const now = this.now();
    for (const [identifier, until] of this.#until) if (until <= now) this.#until.delete(identifier);
  }
}
