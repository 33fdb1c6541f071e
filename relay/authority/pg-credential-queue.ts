import type pg from 'pg';
import { asWicketError } from '../../protocol/errors.js';
import type { CredentialAnswer, CredentialQueue, CredentialRequest, PendingCredentialRequest, SignerDecision } from './credential-queue.js';
import type { Endorsement, EndorsementKind } from './endorsement.js';
import { endorsementFromRow, insertNewEndorsement, upsertEndorsement, type EndorsementRow } from './pg-endorsements.js';
import type { StoreListener } from './pg-listener.js';
import { CREDENTIAL_ANSWER_CHANNEL, CREDENTIAL_REQUEST_CHANNEL } from './pg-schema.js';
import { memberFromRow, type MemberRow } from './store-rows.js';

// The credential queue on PostgreSQL (credential-queue.ts says what it is for): the
// credential_requests table of migration 3. A request and its NOTIFY commit together (one
// statement), so a signer that hears of it can read it; an answer likewise. Signers take the rows
// they answer with FOR UPDATE SKIP LOCKED, so two signers never sign one request twice and never
// wait on each other. Request ages are the database's clock, not the relays': a relay whose clock
// is off cannot have its requests pruned before they are answered. PgStore owns the pool; this
// file owns the SQL.

const DB_NOW_MS = '(extract(epoch from clock_timestamp()) * 1000)::bigint';

type Transaction = <T>(what: string, body: (client: pg.PoolClient) => Promise<T>) => Promise<T>;
type Query = <R extends pg.QueryResultRow>(what: string, text: string, values?: unknown[]) => Promise<R[]>;

interface RequestRow {
  request_id: number;
  kind: string;
  subject: string;
  public_key: Buffer | null;
  relay_id: string | null;
  requested_by: string;
  requested_at: number;
  ticket_id: Buffer | null;
  ticket_proof: Buffer | null;
  grant_statement: string | null;
  grant_signature: Buffer | null;
}

/** A NOTIFY payload as a request id; anything else (or nothing, after a reconnect) is undefined. */
function idOf(payload: string | undefined): number | undefined {
  if (payload === undefined || !/^\d{1,15}$/.test(payload)) return undefined;
  return Number(payload);
}

export class PgCredentialQueue implements CredentialQueue {
  constructor(
    private readonly transaction: Transaction,
    private readonly query: Query,
    private readonly listener: StoreListener,
  ) {}

  async request(r: CredentialRequest): Promise<number> {
    const rows = await this.query<{ request_id: number }>(
      'asking the authority for a credential',
      `WITH added AS (
         INSERT INTO credential_requests (kind, subject, public_key, relay_id, requested_by, requested_at, ticket_id, ticket_proof, grant_statement, grant_signature)
         VALUES ($1, $2, $3, $4, $5, ${DB_NOW_MS}, $7, $8, $9, $10) RETURNING request_id
       ) SELECT request_id, pg_notify($6, request_id::text) FROM added`,
      [
        r.kind,
        r.subject,
        r.publicKey ?? null,
        r.relayId ?? null,
        r.requestedBy,
        CREDENTIAL_REQUEST_CHANNEL,
        r.evidence?.ticketId ?? r.grant?.ticketId ?? null,
        r.evidence?.ticketProof ?? null,
        r.grant?.statement ?? null,
        r.grant?.signature ?? null,
      ],
    );
    return rows[0]!.request_id;
  }

  async answerOf(id: number): Promise<CredentialAnswer | undefined> {
    const row = (
      await this.query<{ credential: Buffer | null; ticket_expires_at: number | null; refused: string | null }>(
        'reading a credential answer',
        'SELECT credential, ticket_expires_at, refused FROM credential_requests WHERE request_id = $1 AND answered_at IS NOT NULL',
        [id],
      )
    )[0];
    if (row === undefined) return undefined;
    if (row.credential !== null) return { credential: row.credential };
    if (row.ticket_expires_at !== null) return { ticketExpiresAt: Number(row.ticket_expires_at) };
    return { refused: row.refused ?? 'WICKET_ERR_INTERNAL' };
  }

  async forget(id: number): Promise<void> {
    await this.query('deleting a credential request', 'DELETE FROM credential_requests WHERE request_id = $1', [id]);
  }

  answerPending(
    decide: (request: PendingCredentialRequest) => SignerDecision,
    o: { now: number; keepMs: number; limit: number; answered?: (request: PendingCredentialRequest, answer: SignerDecision) => void },
  ): Promise<number> {
    return this.transaction('answering credential requests', async (c) => {
      await c.query(`DELETE FROM credential_requests WHERE requested_at < ${DB_NOW_MS} - $1`, [o.keepMs]);
      const pending = (
        await c.query<RequestRow>(
          `SELECT request_id, kind, subject, public_key, relay_id, requested_by, requested_at, ticket_id, ticket_proof, grant_statement, grant_signature FROM credential_requests
           WHERE answered_at IS NULL ORDER BY request_id LIMIT $1 FOR UPDATE SKIP LOCKED`,
          [o.limit],
        )
      ).rows;
      if (pending.length === 0) return 0;
      const subjects = [...new Set(pending.map((p) => p.subject))];
      const members = new Map(
        subjects.length === 0 ? [] : (await c.query<MemberRow>('SELECT * FROM members WHERE identifier = ANY($1)', [subjects])).rows.map((row) => [row.identifier, row]),
      );
      const ticketIds = [...new Set(pending.flatMap((p) => (p.ticket_id === null ? [] : [p.ticket_id.toString('hex')])))];
      const endorsements = new Map(
        (
          await c.query<EndorsementRow>(
            `SELECT kind, subject, statement, tag FROM endorsements WHERE (kind = 'member' AND subject = ANY($1)) OR (kind = 'ticket' AND subject = ANY($2))`,
            [subjects, ticketIds],
          )
        ).rows.map((row) => [`${row.kind}:${row.subject}`, endorsementFromRow(row)]),
      );
      const endorsementOf = (kind: EndorsementKind, subject: string): Endorsement | undefined => endorsements.get(`${kind}:${subject}`);
      for (const row of pending) {
        let answer: SignerDecision;
        let request: PendingCredentialRequest | undefined;
        // One bad row (a member row that does not parse, attributes over a credential's caps) is
        // refused on its own; it must not roll back, and so block, every request behind it.
        try {
          const member = members.get(row.subject);
          request = {
            requestId: row.request_id,
            kind: row.kind,
            subject: row.subject,
            publicKey: row.public_key ?? undefined,
            relayId: row.relay_id ?? undefined,
            requestedBy: row.requested_by,
            requestedAt: row.requested_at,
            member: member === undefined ? undefined : memberFromRow(member),
            evidence: row.ticket_id === null || row.ticket_proof === null ? undefined : { ticketId: row.ticket_id, ticketProof: row.ticket_proof },
            grant:
              row.ticket_id === null || row.grant_statement === null || row.grant_signature === null
                ? undefined
                : { ticketId: row.ticket_id, statement: row.grant_statement, signature: row.grant_signature },
            memberEndorsement: endorsementOf('member', row.subject),
            ticketEndorsement: row.ticket_id === null ? undefined : endorsementOf('ticket', row.ticket_id.toString('hex')),
          };
          answer = decide(request);
        } catch (err) {
          answer = { refused: asWicketError(err).code };
        }
        // Stored before the answer commits (same transaction): the member's next request finds it,
        // and a second grant of the same ticket in this batch sees it endorsed. A member's is
        // replaced when it changes; a ticket's is insert-only, since the read above proves nothing
        // against a signer answering another row naming the same ticket right now: its insert
        // wins, this one writes nothing and the grant is refused.
        if (answer.endorse !== undefined) {
          if (answer.endorse.kind === 'member') await upsertEndorsement(c, answer.endorse);
          else if (!(await insertNewEndorsement(c, answer.endorse))) answer = { refused: 'WICKET_ERR_GRANT_INVALID' };
          if (answer.endorse !== undefined) endorsements.set(`${answer.endorse.kind}:${answer.endorse.subject}`, answer.endorse);
        }
        if (request !== undefined) o.answered?.(request, answer);
        await c.query('UPDATE credential_requests SET answered_at = $1, credential = $2, ticket_expires_at = $3, refused = $4 WHERE request_id = $5', [
          o.now,
          'credential' in answer ? answer.credential : null,
          'ticketExpiresAt' in answer ? answer.ticketExpiresAt : null,
          'refused' in answer ? answer.refused : null,
          row.request_id,
        ]);
        await c.query('SELECT pg_notify($1, $2)', [CREDENTIAL_ANSWER_CHANNEL, String(row.request_id)]);
      }
      return pending.length;
    });
  }

  onRequests(listener: (id: number | undefined) => void): void {
    this.listener.on(CREDENTIAL_REQUEST_CHANNEL, (payload) => listener(idOf(payload)));
  }

  onAnswers(listener: (id: number | undefined) => void): void {
    this.listener.on(CREDENTIAL_ANSWER_CHANNEL, (payload) => listener(idOf(payload)));
  }
}
