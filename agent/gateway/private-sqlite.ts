import { chmodSync, closeSync, existsSync, openSync } from 'node:fs';
import Database from 'better-sqlite3';

// The gateway's SQLite files (usage ledger, limit counters) name identities and their usage, and
// several processes may share one (outlets on one host, `agent usage` while the node runs).
//
// Modes: SQLite creates -wal and -shm with the database file's permissions, so the file is made
// 0600 BEFORE SQLite opens it, and older side files are narrowed (the rule of
// relay/authority/sqlite-schema.ts, which agent/ must not import).
//
// WAL lets readers go on while a writer commits; synchronous NORMAL means a commit needs no fsync
// (a power cut may lose the last commits, never the file). Migrations are versioned in
// user_version, one version per IMMEDIATE transaction with the version re-read under the lock, so
// two processes opening a new file at once migrate it once.

const SIDE_FILE_SUFFIXES = ['-wal', '-shm', '-journal'];

export interface PrivateSqliteOptions {
  busyTimeoutMs: number;
  /** Schema version → the SQL that brings the previous version to it (1 = the first schema). */
  migrations: Readonly<Record<number, string>>;
  /** Thrown (as an Error message) when the file's schema is newer than this agent knows. */
  newerSchema: (version: number, known: number) => Error;
}

/** Opens (creating 0600 and migrating as needed) the SQLite file at `path`, or ':memory:'. */
export function openPrivateSqlite(path: string, options: PrivateSqliteOptions): Database.Database {
  if (path !== ':memory:') narrowModes(path);
  const db = new Database(path);
  try {
    db.pragma(`busy_timeout = ${options.busyTimeoutMs}`);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    migrate(db, options);
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

function narrowModes(path: string): void {
  closeSync(openSync(path, 'a', 0o600));
  for (const file of [path, ...SIDE_FILE_SUFFIXES.map((suffix) => path + suffix)]) {
    if (existsSync(file)) chmodSync(file, 0o600);
  }
}

function migrate(db: Database.Database, options: PrivateSqliteOptions): void {
  const known = Math.max(...Object.keys(options.migrations).map(Number));
  for (;;) {
    const done = db
      .transaction((): boolean => {
        const version = db.pragma('user_version', { simple: true }) as number;
        if (version > known) throw options.newerSchema(version, known);
        if (version === known) return true;
        db.exec(options.migrations[version + 1]!);
        db.pragma(`user_version = ${version + 1}`);
        return false;
      })
      .immediate();
    if (done) return;
  }
}
