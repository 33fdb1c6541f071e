import type Database from 'better-sqlite3';
import { isWicketError, wicketError } from '../../protocol/errors.js';
import type { Identifier } from '../../protocol/identity.js';
import { type MemberRow, memberFromRow, revocationFromRow, type RevocationRow, ticketFromRow, ticketKeyMatches, type TicketListingRow } from './store-rows.js';
import { RELAY_LIVE_TIMEOUT_MS } from '../../protocol/limits.js';
import { openAuthorityDatabase } from './sqlite-schema.js';
import {
  applyEnrollment,
  type Attributes,
  type AuditEvent,
  type AuthorityStore,
  type MemberRecord,
  type RedeemOutcome,
  type RedeemRequest,
  type ReinstateOutcome,
  type RevocationEvent,
  type RelayRecord,
  type ServedName,
  type RevokeOutcome,
  type TicketListing,
  type TicketRecord,
  type TicketRevokeOutcome,
} from './store.js';

// The single-relay authority store: one SQLite file in WAL mode (opened by sqlite-schema.ts), so
// the running relay and `relay ticket create` (another process, same data folder) can both use
// it; busy_timeout makes a writer wait for the other's lock instead of failing. Ticket secrets are
// never stored: only the public key each derives (ticketKeyFromSecret).

interface TicketRow {
  ticket_key: Buffer;
  attributes: string;
  relay_names: string;
  uses_left: number;
  expires_at: number;
  revoked_at: number | null;
}

interface AuditRow {
  at: number;
  event: string;
  identifier: string | null;
  detail: string | null;
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
  /**
   * Presence lives in memory: one relay holds a SQLite store (the data folder is locked), so it is
   * its own list of relays and nothing needs to outlive the process.
   */
  readonly #relays = new Map<string, RelayRecord>();
  /** Served names per relay id; one relay alone links to no other, so this is for the contract only. */
  readonly #servedNames = new Map<string, Set<string>>();
  readonly #statements;
  readonly #redeem: (request: RedeemRequest) => RedeemOutcome;
  readonly #revoke: (identifier: Identifier, now: number, by: string) => RevokeOutcome | undefined;
  readonly #reinstate: (identifier: Identifier, now: number, by: string) => ReinstateOutcome;
  readonly #revokeTicket: (ticketId: Buffer, now: number, by: string) => TicketRevokeOutcome | undefined;

  constructor(readonly path: string) {
    this.#db = openAuthorityDatabase(path);
    const db = this.#db;
    this.#statements = {
      insertTicket: db.prepare(
        `INSERT INTO tickets (ticket_id, ticket_key, attributes, relay_names, usage_count, uses_left, created_at, expires_at, created_by)
         VALUES (@ticketId, @ticketKey, @attributes, @relayNames, @usageCount, @usageCount, @createdAt, @expiresAt, @createdBy)
         ON CONFLICT (ticket_id) DO NOTHING`,
      ),
      selectTicket: db.prepare<[Buffer], TicketRow>(
        'SELECT ticket_key, attributes, relay_names, uses_left, expires_at, revoked_at FROM tickets WHERE ticket_id = ?',
      ),
      // Never the ticket key: listings go to people.
      selectTicketListing: db.prepare<[Buffer], TicketListingRow>(
        `SELECT ticket_id, attributes, relay_names, usage_count, uses_left, created_at, expires_at, created_by, revoked_at, revoked_by
         FROM tickets WHERE ticket_id = ?`,
      ),
      selectOutstandingTickets: db.prepare<[number], TicketListingRow>(
        `SELECT ticket_id, attributes, relay_names, usage_count, uses_left, created_at, expires_at, created_by, revoked_at, revoked_by
         FROM tickets WHERE uses_left > 0 AND expires_at > ? AND revoked_at IS NULL ORDER BY created_at, rowid`,
      ),
      selectAllTickets: db.prepare<[], TicketListingRow>(
        `SELECT ticket_id, attributes, relay_names, usage_count, uses_left, created_at, expires_at, created_by, revoked_at, revoked_by
         FROM tickets ORDER BY created_at, rowid`,
      ),
      markTicketRevoked: db.prepare<[number, string, Buffer]>('UPDATE tickets SET revoked_at = ?, revoked_by = ? WHERE ticket_id = ? AND revoked_at IS NULL'),
      useTicket: db.prepare<[Buffer]>('UPDATE tickets SET uses_left = uses_left - 1 WHERE ticket_id = ? AND uses_left > 0'),
      selectMember: db.prepare<[string], MemberRow>('SELECT * FROM members WHERE identifier = ?'),
      selectMembers: db.prepare<[], MemberRow>('SELECT * FROM members ORDER BY enrolled_at, identifier'),
      // Never clears revoked_at: only reinstate does (a redemption cannot undo a revocation).
      upsertMember: db.prepare(
        `INSERT INTO members (identifier, public_key, attributes, enrolled_at, revoked_at)
         VALUES (@identifier, @publicKey, @attributes, @enrolledAt, NULL)
         ON CONFLICT (identifier) DO UPDATE SET attributes = excluded.attributes`,
      ),
      selectRedemption: db.prepare<[Buffer, string], { identifier: string }>('SELECT identifier FROM redemptions WHERE ticket_id = ? AND identifier = ?'),
      insertRedemption: db.prepare<[Buffer, string, number]>('INSERT INTO redemptions (ticket_id, identifier, redeemed_at) VALUES (?, ?, ?)'),
      markRevoked: db.prepare<[number, string]>('UPDATE members SET revoked_at = ? WHERE identifier = ? AND revoked_at IS NULL'),
      clearRevoked: db.prepare<[string]>('UPDATE members SET revoked_at = NULL WHERE identifier = ? AND revoked_at IS NOT NULL'),
      spendRedeemedTickets: db.prepare<[string]>(
        'UPDATE tickets SET uses_left = 0 WHERE uses_left > 0 AND ticket_id IN (SELECT ticket_id FROM redemptions WHERE identifier = ?)',
      ),
      insertRevocation: db.prepare<[string, number, string, string]>(
        'INSERT INTO revocations (identifier, revoked_at, revoked_by, kind) VALUES (?, ?, ?, ?)',
      ),
      selectLatestRevocation: db.prepare<[string, string], RevocationRow>(
        'SELECT * FROM revocations WHERE identifier = ? AND kind = ? ORDER BY seq DESC LIMIT 1',
      ),
      selectRevocationsAfter: db.prepare<[number, number], RevocationRow>('SELECT * FROM revocations WHERE seq > ? AND revoked_at >= ? ORDER BY seq'),
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
      // Unknown id and wrong ticket key look the same, so the answer reveals nothing about valid ids.
      if (ticket === undefined || !ticketKeyMatches(ticket.ticket_key, request.ticketKey)) {
        return { ok: false, code: 'WICKET_ERR_TICKET_UNKNOWN' };
      }
      const row = s.selectMember.get(request.identifier);
      const existing = row === undefined ? undefined : memberFromRow(row);
      // A revoked key stays revoked, whatever ticket it holds; no use is spent on it.
      if (existing?.revokedAt !== undefined) return { ok: false, code: 'WICKET_ERR_REVOKED' };
      // The same key redeeming the same ticket again: its first welcome was lost (a relay killed
      // mid-redemption). Answer as before, spending nothing.
      if (existing !== undefined && s.selectRedemption.get(request.ticketId, request.identifier) !== undefined) {
        return { ok: true, member: existing, kind: 'repeated' };
      }
      // The secret is proven: saying "revoked" tells the holder nothing it could not guess.
      if (ticket.revoked_at !== null) return { ok: false, code: 'WICKET_ERR_TICKET_REVOKED' };
      if (ticket.uses_left <= 0) return { ok: false, code: 'WICKET_ERR_TICKET_USED' };
      if (request.now >= ticket.expires_at) return { ok: false, code: 'WICKET_ERR_TICKET_EXPIRED' };
      if (s.useTicket.run(request.ticketId).changes !== 1) return { ok: false, code: 'WICKET_ERR_TICKET_USED' };
      const { member, kind } = applyEnrollment(
        existing,
        { attributes: JSON.parse(ticket.attributes) as Attributes, relayNames: JSON.parse(ticket.relay_names) as string[] },
        request,
      );
      s.upsertMember.run({
        identifier: member.identifier,
        publicKey: member.publicKey,
        attributes: JSON.stringify(member.attributes),
        enrolledAt: member.enrolledAt,
      });
      s.insertRedemption.run(request.ticketId, request.identifier, request.now);
      return { ok: true, member, kind };
    });
    this.#redeem = (request) => redeem.immediate(request);

    const latest = (identifier: Identifier, kind: RevocationEvent['kind']): RevocationEvent => {
      const event = s.selectLatestRevocation.get(identifier, kind);
      if (event === undefined) throw wicketError('WICKET_ERR_STORE', `member ${identifier} has no ${kind} event`);
      return revocationFromRow(event);
    };

    const revoke = db.transaction((identifier: Identifier, now: number, by: string): RevokeOutcome | undefined => {
      const row = s.selectMember.get(identifier);
      if (row === undefined) return undefined;
      const alreadyRevoked = row.revoked_at !== null;
      if (!alreadyRevoked) {
        s.markRevoked.run(now, identifier);
        s.insertRevocation.run(identifier, now, by, 'revoke');
      }
      const ticketsSpent = s.spendRedeemedTickets.run(identifier).changes;
      return { event: latest(identifier, 'revoke'), alreadyRevoked, ticketsSpent };
    });
    this.#revoke = (identifier, now, by) => revoke.immediate(identifier, now, by);

    const reinstate = db.transaction((identifier: Identifier, now: number, by: string): ReinstateOutcome => {
      const row = s.selectMember.get(identifier);
      if (row === undefined) return { ok: false, code: 'WICKET_ERR_MEMBER_UNKNOWN' };
      if (s.clearRevoked.run(identifier).changes !== 1) return { ok: false, code: 'WICKET_ERR_MEMBER_NOT_REVOKED' };
      s.insertRevocation.run(identifier, now, by, 'reinstate');
      return { ok: true, event: latest(identifier, 'reinstate') };
    });
    this.#reinstate = (identifier, now, by) => reinstate.immediate(identifier, now, by);

    const revokeTicket = db.transaction((ticketId: Buffer, now: number, by: string): TicketRevokeOutcome | undefined => {
      const changed = s.markTicketRevoked.run(now, by, ticketId).changes === 1;
      const row = s.selectTicketListing.get(ticketId);
      return row === undefined ? undefined : { ticket: ticketFromRow(row), alreadyRevoked: !changed };
    });
    this.#revokeTicket = (ticketId, now, by) => revokeTicket.immediate(ticketId, now, by);
  }

  insertTicket(ticket: TicketRecord): Promise<boolean> {
    return guarded('storing a ticket', () => {
      const { changes } = this.#statements.insertTicket.run({
        ticketId: ticket.ticketId,
        ticketKey: ticket.ticketKey,
        attributes: JSON.stringify(ticket.attributes),
        relayNames: JSON.stringify(ticket.relayNames),
        usageCount: ticket.usageCount,
        createdAt: ticket.createdAt,
        expiresAt: ticket.expiresAt,
        createdBy: ticket.createdBy,
      });
      return changes === 1;
    });
  }

  redeemTicket(request: RedeemRequest): Promise<RedeemOutcome> {
    return guarded('redeeming a ticket', () => this.#redeem(request));
  }

  listTickets(query: { readonly now: number; readonly all: boolean }): Promise<TicketListing[]> {
    return guarded('listing tickets', () =>
      (query.all ? this.#statements.selectAllTickets.all() : this.#statements.selectOutstandingTickets.all(query.now)).map(ticketFromRow),
    );
  }

  revokeTicket(ticketId: Buffer, now: number, by: string): Promise<TicketRevokeOutcome | undefined> {
    return guarded('revoking a ticket', () => this.#revokeTicket(ticketId, now, by));
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

  revokeMember(identifier: Identifier, now: number, by: string): Promise<RevokeOutcome | undefined> {
    return guarded('revoking a member', () => this.#revoke(identifier, now, by));
  }

  reinstateMember(identifier: Identifier, now: number, by: string): Promise<ReinstateOutcome> {
    return guarded('reinstating a member', () => this.#reinstate(identifier, now, by));
  }

  revocationEventsAfter(afterSeq: number, sinceAt: number): Promise<RevocationEvent[]> {
    return guarded('reading revocations', () => this.#statements.selectRevocationsAfter.all(afterSeq, sinceAt).map(revocationFromRow));
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

  async upsertRelay(record: RelayRecord): Promise<void> {
    this.#relays.set(record.url, record);
  }

  async liveRelays(now: number, withinMs = RELAY_LIVE_TIMEOUT_MS): Promise<RelayRecord[]> {
    return [...this.#relays.values()].filter((r) => r.lastSeen >= now - withinMs).sort((a, b) => b.lastSeen - a.lastSeen);
  }

  async setServedName(relayId: string, name: string, served: boolean): Promise<void> {
    let names = this.#servedNames.get(relayId);
    if (names === undefined) this.#servedNames.set(relayId, (names = new Set()));
    if (served) names.add(name);
    else names.delete(name);
  }

  async servedNames(now: number): Promise<ServedName[]> {
    const live = new Set((await this.liveRelays(now)).map((relay) => relay.relayId));
    return [...this.#servedNames].filter(([relayId]) => live.has(relayId)).flatMap(([relayId, names]) => [...names].map((name) => ({ relayId, name })));
  }

  close(): Promise<void> {
    return guarded('closing the store', () => {
      if (this.#db.open) this.#db.close();
    });
  }
}
