import type pg from 'pg';
import { wicketError } from '../../protocol/errors.js';
import type { Identifier } from '../../protocol/identity.js';

// The authority's PostgreSQL schema, versioned like the SQLite one (sqlite-schema.ts) and holding
// the same rows; only the column types differ (bytea, bigint ms since epoch). Attributes stay JSON
// text, not jsonb, so they come back in the order they were granted, as from SQLite.
//
// Several relays may start at once on a fresh database: migrations run under a session advisory
// lock, each in its own transaction that also records its version in schema_migrations, so each
// version is applied exactly once and a relay that waited finds the work done.
//
// `project` holds one row: the authority identifier of the first relay that initialized the
// store. Every relay on a store must be that project; another is refused at start.

export const PG_SCHEMA_VERSION = 3;

/** Arbitrary constants naming our advisory locks (pg_advisory_lock takes a bigint). */
export const MIGRATION_LOCK = 0x77_69_63_6b_01; // "wick" 1
/** Held by each revoke/reinstate transaction: revocation seqs commit in the order they were drawn. */
export const REVOCATION_LOCK = 0x77_69_63_6b_02;
/** The channel every relay LISTENs on; the payload is the new event's seq. */
export const REVOCATION_CHANNEL = 'wicket_revocations';
/** NOTIFY channel for served-name changes (mesh routing); the payload is the relay id. */
export const SERVED_NAMES_CHANNEL = 'wicket_served_names';

const MIGRATIONS: Record<number, string> = {
  1: `
CREATE TABLE project (
  singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  authority   text NOT NULL,
  created_at  bigint NOT NULL
);
CREATE TABLE members (
  identifier  text PRIMARY KEY,
  public_key  bytea NOT NULL,
  attributes  text NOT NULL,
  enrolled_at bigint NOT NULL,
  revoked_at  bigint
);
CREATE TABLE tickets (
  ticket_id   bytea PRIMARY KEY,
  secret_hash bytea NOT NULL,
  attributes  text NOT NULL,
  relay_names text NOT NULL,
  usage_count integer NOT NULL,
  uses_left   integer NOT NULL,
  created_at  bigint NOT NULL,
  expires_at  bigint NOT NULL,
  created_by  text NOT NULL,
  revoked_at  bigint,
  revoked_by  text,
  -- insertion order, for listings (SQLite's rowid)
  created_seq bigserial NOT NULL
);
CREATE TABLE revocations (
  seq         bigserial PRIMARY KEY,
  identifier  text NOT NULL,
  revoked_at  bigint NOT NULL,
  revoked_by  text NOT NULL,
  kind        text NOT NULL CHECK (kind IN ('revoke', 'reinstate'))
);
CREATE INDEX revocations_by_time ON revocations (revoked_at);
CREATE TABLE redemptions (
  ticket_id   bytea NOT NULL,
  identifier  text NOT NULL,
  redeemed_at bigint NOT NULL,
  PRIMARY KEY (ticket_id, identifier)
);
CREATE INDEX redemptions_by_identifier ON redemptions (identifier);
CREATE TABLE audit (
  seq         bigserial PRIMARY KEY,
  at          bigint NOT NULL,
  event       text NOT NULL,
  identifier  text,
  detail      text
);`,
  // Presence (issue 14): each relay on the store records itself; tickets list the live ones.
  2: `
CREATE TABLE relays (
  url         text PRIMARY KEY,
  relay_id    text NOT NULL,
  fingerprint bytea,
  last_seen   bigint NOT NULL
);`,
  // 3: which relay names each relay serves, so a relay can route a circuit to the relay whose
  // agent serves the name (relay/mesh/). Rows of relays no longer in `relays` are deleted on write.
  3: `
CREATE TABLE served_names (
  relay_id text NOT NULL,
  name     text NOT NULL,
  PRIMARY KEY (relay_id, name)
);`,
};

async function appliedVersion(client: pg.ClientBase): Promise<number> {
  await client.query('CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, applied_at bigint NOT NULL)');
  const { rows } = await client.query<{ version: number | null }>('SELECT MAX(version) AS version FROM schema_migrations');
  return rows[0]?.version ?? 0;
}

/** Brings the schema to PG_SCHEMA_VERSION, one transaction per version, under the migration lock. */
export async function migratePostgres(client: pg.ClientBase, now: number): Promise<void> {
  await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
  try {
    const version = await appliedVersion(client);
    if (version > PG_SCHEMA_VERSION) {
      throw wicketError('WICKET_ERR_STORE', `the PostgreSQL store's schema version ${version} is newer than this relay (${PG_SCHEMA_VERSION}); upgrade the relay`);
    }
    for (let next = version + 1; next <= PG_SCHEMA_VERSION; next++) {
      await client.query('BEGIN');
      try {
        await client.query(MIGRATIONS[next]!);
        await client.query('INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)', [next, now]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK');
        throw err;
      }
    }
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]);
  }
}

/**
 * Records `authority` as the store's project if it has none yet, and refuses any other.
 * Returns true when this call initialized the project (the relay mints the first admin ticket).
 */
export async function claimProject(client: pg.ClientBase, authority: Identifier, now: number, shown: string): Promise<boolean> {
  const inserted = await client.query('INSERT INTO project (authority, created_at) VALUES ($1, $2) ON CONFLICT (singleton) DO NOTHING', [authority, now]);
  if (inserted.rowCount === 1) return true;
  const { rows } = await client.query<{ authority: string }>('SELECT authority FROM project');
  const recorded = rows[0]?.authority;
  if (recorded !== authority) {
    throw wicketError(
      'WICKET_ERR_STORE_PROJECT_MISMATCH',
      `the store ${shown} belongs to authority ${recorded ?? '(none)'}, but this relay's authority key is ${authority}; start it with that project's key (--authority-key FILE, a copy of the first relay's authority.key)`,
    );
  }
  return false;
}
