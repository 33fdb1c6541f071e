import { chmodSync, closeSync, existsSync, openSync } from 'node:fs';
import Database from 'better-sqlite3';
import { isWicketError, wicketError } from '../../protocol/errors.js';
import { STORE_BUSY_TIMEOUT_MS } from '../../protocol/limits.js';

// Opening the authority's SQLite file: file modes, pragmas, and the versioned schema.
//
// Modes: the database holds members and tickets, and its side files (-wal, -shm) hold
// recent pages of it. SQLite creates the side files with the permissions of the database file, so
// the file is created 0600 BEFORE SQLite opens it (and an older file, or side files left by an
// older version, are narrowed to 0600): no moment exists where another local user can read them.
//
// Schema versions live in `user_version`; each migration moves one version forward inside one
// transaction, so a relay upgraded in place keeps its members, tickets and revocations.

export const SCHEMA_VERSION = 4;

const SIDE_FILE_SUFFIXES = ['-wal', '-shm', '-journal'];

const MIGRATIONS: Record<number, string> = {
  // 0 -> 1: the first schema.
  1: `
CREATE TABLE IF NOT EXISTS members (
  identifier  TEXT PRIMARY KEY,
  public_key  BLOB NOT NULL,
  attributes  TEXT NOT NULL,
  enrolled_at INTEGER NOT NULL,
  revoked_at  INTEGER
);
CREATE TABLE IF NOT EXISTS tickets (
  ticket_id    BLOB PRIMARY KEY,
  secret_hash  BLOB NOT NULL,
  attributes   TEXT NOT NULL,
  relay_names  TEXT NOT NULL,
  usage_count  INTEGER NOT NULL,
  uses_left    INTEGER NOT NULL,
  created_at   INTEGER NOT NULL,
  expires_at   INTEGER NOT NULL,
  created_by   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS revocations (
  seq         INTEGER PRIMARY KEY AUTOINCREMENT,
  identifier  TEXT NOT NULL,
  revoked_at  INTEGER NOT NULL,
  revoked_by  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
  seq         INTEGER PRIMARY KEY AUTOINCREMENT,
  at          INTEGER NOT NULL,
  event       TEXT NOT NULL,
  identifier  TEXT,
  detail      TEXT
);`,
  // 1 -> 2: revocation events may be reinstatements (agents apply both in order), and each
  // redemption is remembered so the same key redeeming the same ticket again spends nothing.
  2: `
ALTER TABLE revocations ADD COLUMN kind TEXT NOT NULL DEFAULT 'revoke' CHECK (kind IN ('revoke', 'reinstate'));
CREATE INDEX IF NOT EXISTS revocations_by_time ON revocations (revoked_at);
CREATE TABLE IF NOT EXISTS redemptions (
  ticket_id   BLOB NOT NULL,
  identifier  TEXT NOT NULL,
  redeemed_at INTEGER NOT NULL,
  PRIMARY KEY (ticket_id, identifier)
);`,
  // 2 -> 3: an admin can revoke a ticket before it is redeemed (`ticket revoke`); tickets made
  // before stay as they were (not revoked).
  3: `
ALTER TABLE tickets ADD COLUMN revoked_at INTEGER;
ALTER TABLE tickets ADD COLUMN revoked_by TEXT;`,
  // 3 -> 4: the ticket secret no longer reaches the relay (issue 14): a ticket row keeps the public
  // key the secret derives (protocol/ticket.ts, ticketKeyFromSecret) instead of a hash of the
  // secret. A hash cannot be turned into that key, so tickets made before stay listed but can no
  // longer be redeemed: their key is emptied, which no presented key matches. Make new ones.
  4: `
ALTER TABLE tickets RENAME COLUMN secret_hash TO ticket_key;
UPDATE tickets SET ticket_key = X'';`,
};

/** The SQL that moves a store from version `to - 1` to `to` (tests build old stores with it). */
export function migrationTo(to: number): string {
  const sql = MIGRATIONS[to];
  if (sql === undefined) throw wicketError('WICKET_ERR_INTERNAL', `no schema migration to version ${to}`);
  return sql;
}

/** Creates the file 0600 if absent, and narrows it and any side files to 0600 if present. */
function prepareFileModes(path: string): void {
  closeSync(openSync(path, 'a', 0o600));
  for (const file of [path, ...SIDE_FILE_SUFFIXES.map((suffix) => path + suffix)]) {
    if (existsSync(file)) chmodSync(file, 0o600);
  }
}

function migrate(db: Database.Database): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > SCHEMA_VERSION) {
    throw wicketError('WICKET_ERR_STORE', `authority store schema version ${version} is newer than this relay (${SCHEMA_VERSION}); upgrade the relay`);
  }
  for (let next = version + 1; next <= SCHEMA_VERSION; next++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[next]!);
      db.pragma(`user_version = ${next}`);
    }).immediate();
  }
}

/** Opens (creating and migrating as needed) the store at `path`, or ':memory:'. */
export function openAuthorityDatabase(path: string): Database.Database {
  try {
    if (path !== ':memory:') prepareFileModes(path);
    const db = new Database(path);
    try {
      db.pragma('journal_mode = WAL');
      db.pragma(`busy_timeout = ${STORE_BUSY_TIMEOUT_MS}`);
      // FULL: a revocation or a redeemed ticket must survive a power cut, and writes are rare.
      db.pragma('synchronous = FULL');
      migrate(db);
    } catch (err) {
      db.close();
      throw err;
    }
    return db;
  } catch (err) {
    if (isWicketError(err)) throw err;
    throw wicketError('WICKET_ERR_STORE', `cannot open the authority store at ${path}`, err);
  }
}
