import { chmodSync } from 'node:fs';
import { timingSafeEqual } from 'node:crypto';
import Database from 'better-sqlite3';
import { isWicketError, wicketError } from '../../protocol/errors.js';
import type { Identifier } from '../../protocol/identity.js';
import { STORE_BUSY_TIMEOUT_MS } from '../../protocol/limits.js';
import {
  applyEnrollment,
  type Attributes,
  type AuditEvent,
  type AuthorityStore,
  type MemberRecord,
  type RedeemOutcome,
  type RedeemRequest,
  type RevocationRecord,
  type RevokeOutcome,
  type TicketRecord,
} from './store.js';

// The single-relay authority store: one SQLite file in WAL mode, so the running relay and
// `relay ticket create` (another process, same data folder) can both use it; busy_timeout makes a
// writer wait for the other's lock instead of failing. The schema is created on open. Ticket
// secrets are stored only as hashTicketSecret(secret).

const SCHEMA_VERSION = 1;

const SCHEMA = `
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
);
`;

interface MemberRow {
  identifier: string;
  public_key: Buffer;
  attributes: string;
  enrolled_at: number;
  revoked_at: number | null;
}

interface TicketRow {
  secret_hash: Buffer;
  attributes: string;
  relay_names: string;
  uses_left: number;
  expires_at: number;
}

interface RevocationRow {
  seq: number;
  identifier: string;
  revoked_at: number;
  revoked_by: string;
}

interface AuditRow {
  at: number;
  event: string;
  identifier: string | null;
  detail: string | null;
}

function memberFromRow(row: MemberRow): MemberRecord {
  const member: MemberRecord = {
    identifier: row.identifier as Identifier,
    publicKey: row.public_key,
    attributes: JSON.parse(row.attributes) as Attributes,
    enrolledAt: row.enrolled_at,
  };
  return row.revoked_at === null ? member : { ...member, revokedAt: row.revoked_at };
}

function revocationFromRow(row: RevocationRow): RevocationRecord {
  return { seq: row.seq, identifier: row.identifier as Identifier, revokedAt: row.revoked_at, revokedBy: row.revoked_by };
}

/** Runs a store operation, turning a SQLite failure into WICKET_ERR_STORE (never leaking SQL values). */
function guarded<T>(what: string, operation: () => T): Promise<T> {
  try {
    return Promise.resolve(operation());
  } catch (err) {
    if (isWicketError(err)) return Promise.reject(err);
    const code = (err as { code?: unknown }).code;
    return Promise.reject(wicketError('WICKET_ERR_STORE', `${what} failed${typeof code === 'string' ? ` (${code})` : ''}`, err));
  }
}

export class SqliteStore implements AuthorityStore {
  readonly #db: Database.Database;
  readonly #statements;
  readonly #redeem: (request: RedeemRequest) => RedeemOutcome;
  readonly #revoke: (identifier: Identifier, now: number, revokedBy: string) => RevokeOutcome | undefined;

  constructor(readonly path: string) {
    try {
      this.#db = new Database(path);
      this.#db.pragma('journal_mode = WAL');
      this.#db.pragma(`busy_timeout = ${STORE_BUSY_TIMEOUT_MS}`);
      // FULL: a revocation or a redeemed ticket must survive a power cut, and writes are rare.
      this.#db.pragma('synchronous = FULL');
      this.#db.exec(SCHEMA);
      const version = this.#db.pragma('user_version', { simple: true }) as number;
      if (version === 0) this.#db.pragma(`user_version = ${SCHEMA_VERSION}`);
      else if (version !== SCHEMA_VERSION) {
        throw wicketError('WICKET_ERR_STORE', `authority store schema version ${version}, this relay reads ${SCHEMA_VERSION}`);
      }
      if (path !== ':memory:') chmodSync(path, 0o600);
    } catch (err) {
      if (isWicketError(err)) throw err;
      throw wicketError('WICKET_ERR_STORE', `cannot open the authority store at ${path}`, err);
    }
    const db = this.#db;
    this.#statements = {
      insertTicket: db.prepare(
        `INSERT INTO tickets (ticket_id, secret_hash, attributes, relay_names, usage_count, uses_left, created_at, expires_at, created_by)
         VALUES (@ticketId, @secretHash, @attributes, @relayNames, @usageCount, @usageCount, @createdAt, @expiresAt, @createdBy)`,
      ),
      selectTicket: db.prepare<[Buffer], TicketRow>(
        'SELECT secret_hash, attributes, relay_names, uses_left, expires_at FROM tickets WHERE ticket_id = ?',
      ),
      useTicket: db.prepare<[Buffer]>('UPDATE tickets SET uses_left = uses_left - 1 WHERE ticket_id = ? AND uses_left > 0'),
      selectMember: db.prepare<[string], MemberRow>('SELECT * FROM members WHERE identifier = ?'),
      selectMembers: db.prepare<[], MemberRow>('SELECT * FROM members ORDER BY enrolled_at, identifier'),
      upsertMember: db.prepare(
        `INSERT INTO members (identifier, public_key, attributes, enrolled_at, revoked_at)
         VALUES (@identifier, @publicKey, @attributes, @enrolledAt, NULL)
         ON CONFLICT (identifier) DO UPDATE SET attributes = excluded.attributes, revoked_at = NULL`,
      ),
      markRevoked: db.prepare<[number, string]>('UPDATE members SET revoked_at = ? WHERE identifier = ? AND revoked_at IS NULL'),
      insertRevocation: db.prepare<[string, number, string]>(
        'INSERT INTO revocations (identifier, revoked_at, revoked_by) VALUES (?, ?, ?)',
      ),
      selectLatestRevocation: db.prepare<[string], RevocationRow>(
        'SELECT * FROM revocations WHERE identifier = ? ORDER BY seq DESC LIMIT 1',
      ),
      selectRevocationsAfter: db.prepare<[number], RevocationRow>('SELECT * FROM revocations WHERE seq > ? ORDER BY seq'),
      selectLastRevocationSeq: db.prepare<[], { seq: number | null }>('SELECT MAX(seq) AS seq FROM revocations'),
      insertAudit: db.prepare<[number, string, string | null, string | null]>(
        'INSERT INTO audit (at, event, identifier, detail) VALUES (?, ?, ?, ?)',
      ),
      selectAudit: db.prepare<[number], AuditRow>(
        'SELECT at, event, identifier, detail FROM (SELECT * FROM audit ORDER BY seq DESC LIMIT ?) ORDER BY seq',
      ),
    };
    const s = this.#statements;

    // One IMMEDIATE transaction: the write lock is taken before the ticket is read, so a second
    // process redeeming the same ticket waits (busy_timeout) and then sees uses_left already spent.
    const redeem = db.transaction((request: RedeemRequest): RedeemOutcome => {
      const ticket = s.selectTicket.get(request.ticketId);
      // Unknown id and wrong secret look the same, so the answer reveals nothing about valid ids.
      if (ticket === undefined || !timingSafeEqual(ticket.secret_hash, request.secretHash)) {
        return { ok: false, code: 'WICKET_ERR_TICKET_UNKNOWN' };
      }
      if (ticket.uses_left <= 0) return { ok: false, code: 'WICKET_ERR_TICKET_USED' };
      if (request.now >= ticket.expires_at) return { ok: false, code: 'WICKET_ERR_TICKET_EXPIRED' };
      if (s.useTicket.run(request.ticketId).changes !== 1) return { ok: false, code: 'WICKET_ERR_TICKET_USED' };
      const row = s.selectMember.get(request.identifier);
      const { member, kind } = applyEnrollment(
        row === undefined ? undefined : memberFromRow(row),
        { attributes: JSON.parse(ticket.attributes) as Attributes, relayNames: JSON.parse(ticket.relay_names) as string[] },
        request,
      );
      s.upsertMember.run({
        identifier: member.identifier,
        publicKey: member.publicKey,
        attributes: JSON.stringify(member.attributes),
        enrolledAt: member.enrolledAt,
      });
      return { ok: true, member, kind };
    });
    this.#redeem = (request) => redeem.immediate(request);

    const revoke = db.transaction((identifier: Identifier, now: number, revokedBy: string): RevokeOutcome | undefined => {
      const row = s.selectMember.get(identifier);
      if (row === undefined) return undefined;
      const alreadyRevoked = row.revoked_at !== null;
      if (!alreadyRevoked) {
        s.markRevoked.run(now, identifier);
        s.insertRevocation.run(identifier, now, revokedBy);
      }
      const latest = s.selectLatestRevocation.get(identifier);
      if (latest === undefined) throw wicketError('WICKET_ERR_STORE', `member ${identifier} is revoked but has no revocation record`);
      return { revocation: revocationFromRow(latest), alreadyRevoked };
    });
    this.#revoke = (identifier, now, revokedBy) => revoke.immediate(identifier, now, revokedBy);
  }

  insertTicket(ticket: TicketRecord): Promise<void> {
    return guarded('storing a ticket', () => {
      this.#statements.insertTicket.run({
        ticketId: ticket.ticketId,
        secretHash: ticket.secretHash,
        attributes: JSON.stringify(ticket.attributes),
        relayNames: JSON.stringify(ticket.relayNames),
        usageCount: ticket.usageCount,
        createdAt: ticket.createdAt,
        expiresAt: ticket.expiresAt,
        createdBy: ticket.createdBy,
      });
    });
  }

  redeemTicket(request: RedeemRequest): Promise<RedeemOutcome> {
    return guarded('redeeming a ticket', () => this.#redeem(request));
  }

  getMember(identifier: Identifier): Promise<MemberRecord | undefined> {
    return guarded('reading a member', () => {
      const row = this.#statements.selectMember.get(identifier);
      return row === undefined ? undefined : memberFromRow(row);
    });
  }

  listMembers(): Promise<MemberRecord[]> {
    return guarded('listing members', () => this.#statements.selectMembers.all().map(memberFromRow));
  }

  revokeMember(identifier: Identifier, now: number, revokedBy: string): Promise<RevokeOutcome | undefined> {
    return guarded('revoking a member', () => this.#revoke(identifier, now, revokedBy));
  }

  revocationsAfter(afterSeq: number): Promise<RevocationRecord[]> {
    return guarded('reading revocations', () => this.#statements.selectRevocationsAfter.all(afterSeq).map(revocationFromRow));
  }

  lastRevocationSeq(): Promise<number> {
    return guarded('reading revocations', () => this.#statements.selectLastRevocationSeq.get()?.seq ?? 0);
  }

  appendAudit(event: AuditEvent): Promise<void> {
    return guarded('writing an audit event', () => {
      this.#statements.insertAudit.run(
        event.at,
        event.event,
        event.identifier ?? null,
        event.detail === undefined ? null : JSON.stringify(event.detail),
      );
    });
  }

  listAudit(limit: number): Promise<AuditEvent[]> {
    return guarded('listing audit events', () =>
      this.#statements.selectAudit.all(limit).map((row): AuditEvent => {
        const event: { at: number; event: AuditEvent['event']; identifier?: string; detail?: Record<string, unknown> } = {
          at: row.at,
          event: row.event as AuditEvent['event'],
        };
        if (row.identifier !== null) event.identifier = row.identifier;
        if (row.detail !== null) event.detail = JSON.parse(row.detail) as Record<string, unknown>;
        return event;
      }),
    );
  }

  close(): Promise<void> {
    return guarded('closing the store', () => {
      if (this.#db.open) this.#db.close();
    });
  }
}
