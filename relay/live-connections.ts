import type { Identifier } from '../protocol/identity.js';
import type { RelayPeer } from './peer.js';

// Every open agent connection, and an index by identity for revocation and `member.list`.
// A connection joins the identity index as soon as its signature proves the key, BEFORE the
// store is asked whether the member is revoked: a revocation that lands after that read then
// still finds (and cuts) the connection, so there is no window where a revoked identity slips in.

export class LiveConnections {
  readonly #all = new Set<RelayPeer>();
  readonly #identifierOf = new Map<RelayPeer, Identifier>();
  readonly #byIdentifier = new Map<Identifier, Set<RelayPeer>>();

  add(peer: RelayPeer): void {
    this.#all.add(peer);
  }

  /** The peer proved it holds `identifier`'s key (it may still be refused by the store). */
  bindIdentity(peer: RelayPeer, identifier: Identifier): void {
    this.#identifierOf.set(peer, identifier);
    let set = this.#byIdentifier.get(identifier);
    if (set === undefined) {
      set = new Set();
      this.#byIdentifier.set(identifier, set);
    }
    set.add(peer);
  }

  remove(peer: RelayPeer): void {
    this.#all.delete(peer);
    const identifier = this.#identifierOf.get(peer);
    if (identifier === undefined) return;
    this.#identifierOf.delete(peer);
    const set = this.#byIdentifier.get(identifier);
    set?.delete(peer);
    if (set?.size === 0) this.#byIdentifier.delete(identifier);
  }

  /** Connections of one identity in any state (including ones still being authenticated). */
  ofIdentity(identifier: Identifier): RelayPeer[] {
    return [...(this.#byIdentifier.get(identifier) ?? [])];
  }

  isConnected(identifier: Identifier): boolean {
    for (const peer of this.#byIdentifier.get(identifier) ?? []) {
      if (peer.isOpen) return true;
    }
    return false;
  }

  all(): RelayPeer[] {
    return [...this.#all];
  }

  get size(): number {
    return this.#all.size;
  }
}
