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

/** Stores an endorsement inside a transaction the caller holds (a signer answering the queue). */
export async function upsertEndorsement(client: Pick<pg.ClientBase, 'query'>, e: Endorsement): Promise<void> {
  await client.query(UPSERT, [e.kind, e.subject, e.statement, e.tag]);
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
}
