import type { Identifier } from '../protocol/identity.js';
import type { RelayConnection } from './connection.js';

// Every open agent connection, and an index by identity for revocation and `member.list`.
// A connection joins the identity index as soon as its signature proves the key, BEFORE the
// store is asked whether the member is revoked: a revocation that lands after that read then
// still finds (and cuts) the connection, so there is no window where a revoked identity slips in.

export class LiveConnections {
  readonly #all = new Set<RelayConnection>();
  readonly #byIdentifier = new Map<Identifier, Set<RelayConnection>>();

  add(connection: RelayConnection): void {
    this.#all.add(connection);
  }

  bindIdentity(connection: RelayConnection, identifier: Identifier): void {
    let set = this.#byIdentifier.get(identifier);
    if (set === undefined) {
      set = new Set();
      this.#byIdentifier.set(identifier, set);
    }
    set.add(connection);
  }

  remove(connection: RelayConnection): void {
    this.#all.delete(connection);
    const identifier = connection.identifier;
    if (identifier === undefined) return;
    const set = this.#byIdentifier.get(identifier);
    set?.delete(connection);
    if (set?.size === 0) this.#byIdentifier.delete(identifier);
  }

  /** Connections of one identity in any state (including ones still being authenticated). */
  ofIdentity(identifier: Identifier): RelayConnection[] {
    return [...(this.#byIdentifier.get(identifier) ?? [])];
  }

  isConnected(identifier: Identifier): boolean {
    for (const connection of this.#byIdentifier.get(identifier) ?? []) {
      if (connection.state === 'authenticated') return true;
    }
    return false;
  }

  all(): RelayConnection[] {
    return [...this.#all];
  }

  get size(): number {
    return this.#all.size;
  }
}
