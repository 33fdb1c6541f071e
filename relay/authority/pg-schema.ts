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
// store, and (from version 3) the authority's public key, which forwarding relays (no signing key)
// verify credentials with. Every relay on a store must be that project; another is refused at start.

export const PG_SCHEMA_VERSION = 7;

/** Arbitrary constants naming our advisory locks (pg_advisory_lock takes a bigint). */
export const MIGRATION_LOCK = 0x77_69_63_6b_01; // "wick" 1
/** Held by each revoke/reinstate transaction: revocation seqs commit in the order they were drawn. */
export const REVOCATION_LOCK = 0x77_69_63_6b_02;
/**
 * Held (a session lock) while a process reads or claims the project: two relays starting at once
 * on an empty store decide one after the other, so only one makes a key and the other sees its
 * project.
 */
export const PROJECT_LOCK = 0x77_69_63_6b_03;
/** The channel every relay LISTENs on; the payload is the new event's seq. */
export const REVOCATION_CHANNEL = 'wicket_revocations';
/** NOTIFY channel for served-name changes (mesh routing); the payload is the relay id. */
export const SERVED_NAMES_CHANNEL = 'wicket_served_names';
/** Signers LISTEN here for new credential requests; the payload is the request id. */
export const CREDENTIAL_REQUEST_CHANNEL = 'wicket_credential_requests';
/** Requesting relays LISTEN here for answers; the payload is the answered request id. */
export const CREDENTIAL_ANSWER_CHANNEL = 'wicket_credential_answers';

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
  // The signing key only where credentials are issued (issue 14): forwarding relays verify with
  // the project's public key and ask a signer for credentials through this queue. A row is a
  // request (kind, subject, and for a relay's own key the key and relay id); the signer fills in
  // either the credential or the code it refused with.
  3: `
ALTER TABLE project ADD COLUMN public_key bytea;
CREATE TABLE credential_requests (
  request_id   bigserial PRIMARY KEY,
  kind         text NOT NULL CHECK (kind IN ('member', 'relay')),
  subject      text NOT NULL,
  public_key   bytea,
  relay_id     text,
  requested_by text NOT NULL,
  requested_at bigint NOT NULL,
  answered_at  bigint,
  credential   bytea,
  refused      text
);
CREATE INDEX credential_requests_unanswered ON credential_requests (request_id) WHERE answered_at IS NULL;`,
  // 4: which relay names each relay serves, so a relay can route a circuit to the relay whose
  // agent serves the name (relay/mesh/). Rows of relays no longer in `relays` are deleted on write.
  4: `
CREATE TABLE served_names (
  relay_id text NOT NULL,
  name     text NOT NULL,
  PRIMARY KEY (relay_id, name)
);`,
  // 5: the ticket secret no longer reaches a relay (issue 14): a ticket row keeps the public key
  // the secret derives (protocol/ticket.ts, ticketKeyFromSecret) instead of a hash of the secret.
  // A hash cannot be turned into that key, so tickets made before stay listed but can no longer be
  // redeemed: their key is emptied, which no presented key matches. Make new ones.
  5: `
ALTER TABLE tickets RENAME COLUMN secret_hash TO ticket_key;
UPDATE tickets SET ticket_key = decode('', 'hex');`,
  // 6: the signer's endorsements of the tickets it created and the members it admitted
  // (endorsement.ts), and a redemption's evidence on a credential request (membership-rule.ts).
  // Members enrolled before this version have none: each needs a fresh ticket, or an operator's
  // `relay authority --endorse-existing` once, which vouches for the store as it is.
  6: `
CREATE TABLE endorsements (
  kind      text NOT NULL,
  subject   text NOT NULL,
  statement text NOT NULL,
  tag       bytea NOT NULL,
  PRIMARY KEY (kind, subject)
);
ALTER TABLE credential_requests ADD COLUMN ticket_id bytea, ADD COLUMN ticket_proof bytea;`,
  // 7: an admin's ticket grant through a forwarding relay (protocol/ticket-grant.ts, grant-rule.ts):
  // a request of kind 'ticket' names the admin (subject) and the ticket (ticket_id), carries the
  // statement the admin signed and its signature, and is answered with the expiry the signer fixed
  // and endorsed. Written so that running it over a half-applied copy changes nothing twice.
  7: `
ALTER TABLE credential_requests DROP CONSTRAINT IF EXISTS credential_requests_kind_check;
ALTER TABLE credential_requests ADD CONSTRAINT credential_requests_kind_check CHECK (kind IN ('member', 'relay', 'ticket'));
ALTER TABLE credential_requests
  ADD COLUMN IF NOT EXISTS grant_statement text,
  ADD COLUMN IF NOT EXISTS grant_signature bytea,
  ADD COLUMN IF NOT EXISTS ticket_expires_at bigint;`,
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

/** The project a store belongs to; publicKey is absent on a store no signer has opened since version 3. */
export interface ProjectRecord {
  readonly authority: Identifier;
  readonly publicKey?: Buffer;
}

export async function readProject(client: Pick<pg.ClientBase, 'query'>): Promise<ProjectRecord | undefined> {
  const row = (await client.query<{ authority: string; public_key: Buffer | null }>('SELECT authority, public_key FROM project')).rows[0];
  if (row === undefined) return undefined;
  return { authority: row.authority as Identifier, ...(row.public_key === null ? {} : { publicKey: row.public_key }) };
}

export async function withProjectLock<T>(client: pg.ClientBase, body: () => Promise<T>): Promise<T> {
  await client.query('SELECT pg_advisory_lock($1)', [PROJECT_LOCK]);
  try {
    return await body();
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [PROJECT_LOCK]);
  }
}

/**
 * Records `authority` as the store's project if it has none yet, and refuses any other (call it
 * under withProjectLock).
 * Returns true when this call initialized the project (the relay mints the first admin ticket).
 * With `publicKey` (a process holding the key) it also records the key where it is missing.
 */
export async function claimProject(client: pg.ClientBase, authority: Identifier, now: number, shown: string, publicKey?: Buffer): Promise<boolean> {
  const inserted = await client.query('INSERT INTO project (authority, created_at, public_key) VALUES ($1, $2, $3) ON CONFLICT (singleton) DO NOTHING', [authority, now, publicKey ?? null]);
  if (inserted.rowCount === 1) return true;
  if (publicKey !== undefined) await client.query('UPDATE project SET public_key = $1 WHERE authority = $2 AND public_key IS NULL', [publicKey, authority]);
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
