import type pg from 'pg';
import type { Endorsement, EndorsementKind, EndorsementStore } from './endorsement.js';

// The signer's endorsements on PostgreSQL (endorsement.ts says what they are for): the
// endorsements table of migration 6, one row per ticket or member. Any relay can write this table
// too; that gains nothing, since a row only counts when its tag verifies under the project key.
// PgStore owns the pool; this file owns the SQL.

type Query = <R extends pg.QueryResultRow>(what: string, text: string, values?: unknown[]) => Promise<R[]>;

export interface EndorsementRow {
  kind: string;
  subject: string;
  statement: string;
  tag: Buffer;
}

/** A row as read: its kind is checked by the verifier (a row of another kind never verifies). */
export function endorsementFromRow(row: EndorsementRow): Endorsement {
  return { kind: row.kind as EndorsementKind, subject: row.subject, statement: row.statement, tag: row.tag };
}

const UPSERT = `INSERT INTO endorsements (kind, subject, statement, tag) VALUES ($1, $2, $3, $4)
  ON CONFLICT (kind, subject) DO UPDATE SET statement = EXCLUDED.statement, tag = EXCLUDED.tag`;

// Insert-only: a concurrent insert of the same record waits for the first to commit, then writes nothing.
const INSERT_NEW = `INSERT INTO endorsements (kind, subject, statement, tag) VALUES ($1, $2, $3, $4)
  ON CONFLICT (kind, subject) DO NOTHING RETURNING subject`;

/** Stores an endorsement inside a transaction the caller holds (a signer answering the queue). */
export async function upsertEndorsement(client: Pick<pg.ClientBase, 'query'>, e: Endorsement): Promise<void> {
  await client.query(UPSERT, [e.kind, e.subject, e.statement, e.tag]);
}

/** EndorsementStore.writeNew inside a transaction the caller holds: false when the record was endorsed already. */
export async function insertNewEndorsement(client: Pick<pg.ClientBase, 'query'>, e: Endorsement): Promise<boolean> {
  return (await client.query(INSERT_NEW, [e.kind, e.subject, e.statement, e.tag])).rows.length === 1;
}

export class PgEndorsements implements EndorsementStore {
  constructor(private readonly query: Query) {}

  async read(kind: EndorsementKind, subject: string): Promise<Endorsement | undefined> {
    const row = (await this.query<EndorsementRow>('reading an endorsement', 'SELECT kind, subject, statement, tag FROM endorsements WHERE kind = $1 AND subject = $2', [kind, subject]))[0];
    return row === undefined ? undefined : endorsementFromRow(row);
  }

  async write(e: Endorsement): Promise<void> {
    await this.query('storing an endorsement', UPSERT, [e.kind, e.subject, e.statement, e.tag]);
  }

  async writeNew(e: Endorsement): Promise<boolean> {
    return (await this.query('storing an endorsement', INSERT_NEW, [e.kind, e.subject, e.statement, e.tag])).length === 1;
  }
}
