import type { Logger } from 'pino';
import type { Identifier } from '../../protocol/identity.js';
import { SqliteStore } from './sqlite-store.js';
import type { StoreLocation } from './store-location.js';
import type { AuthorityStore } from './store.js';

// Opens the store `--store` names: the data folder's SQLite file, or PostgreSQL, whose module
// (and the pg client) is imported only then, so a single relay on SQLite never loads it.

export interface OpenedStore {
  readonly store: AuthorityStore;
  /**
   * True when this open initialized the project: for SQLite, the authority key was just created
   * beside it; for PostgreSQL, this relay recorded its authority in the empty store. The relay
   * then mints the first admin ticket.
   */
  readonly initialized: boolean;
}

export async function openAuthorityStore(
  location: StoreLocation,
  o: { readonly sqlitePath: string; readonly authority: Identifier; readonly keyCreated: boolean; readonly now: number; readonly logger: Logger },
): Promise<OpenedStore> {
  if (location.kind === 'sqlite') return { store: new SqliteStore(o.sqlitePath), initialized: o.keyCreated };
  const { PgStore } = await import('./pg-store.js');
  return PgStore.open(location, { authority: o.authority, now: o.now, logger: o.logger });
}
