import { wicketError, type ErrorCode } from '../../protocol/errors.js';
import { MAX_ATTRIBUTE_VALUE_LEN, MAX_ATTRIBUTES } from '../../protocol/limits.js';
import type { Identifier } from '../../protocol/identity.js';
import { ADMIN_ATTRIBUTE, RELAYS_ATTRIBUTE } from '../../protocol/relay-names.js';

// The authority's persistent state behind one small interface: members, tickets, revocations and
// the audit trail. Every method is async so that several relays can later share one PostgreSQL
// store; SqliteStore (sqlite-store.ts) is the single-relay implementation. Whatever backs it, each
// method is one transaction: in particular redeemTicket checks, decrements and creates the member
// atomically, so two racing redemptions of a one-use ticket give exactly one member.

export type Attributes = Record<string, string>;

export interface MemberRecord {
  readonly identifier: Identifier;
  readonly publicKey: Buffer;
  readonly attributes: Attributes;
  /** ms since epoch of the first enrollment. */
  readonly enrolledAt: number;
  /** ms since epoch; present when revoked. */
  readonly revokedAt?: number;
}

export interface TicketRecord {
  readonly ticketId: Buffer;
  /** hashTicketSecret(secret): the secret itself is never stored. */
  readonly secretHash: Buffer;
  readonly attributes: Attributes;
  readonly relayNames: readonly string[];
  readonly usageCount: number;
  readonly createdAt: number;
  readonly expiresAt: number;
  /** Identifier of the admin who created it, or 'relay' / 'cli' for the relay host. */
  readonly createdBy: string;
}

export interface RedeemRequest {
  readonly ticketId: Buffer;
  readonly secretHash: Buffer;
  readonly identifier: Identifier;
  readonly publicKey: Buffer;
  readonly now: number;
}

export type RedeemOutcome =
  | { readonly ok: true; readonly member: MemberRecord; readonly kind: 'new' | 'merged' | 'reinstated' }
  | { readonly ok: false; readonly code: Extract<ErrorCode, 'WICKET_ERR_TICKET_UNKNOWN' | 'WICKET_ERR_TICKET_EXPIRED' | 'WICKET_ERR_TICKET_USED'> };

export interface RevocationRecord {
  /** Monotonic sequence number; relays poll for revocations after the last one they saw. */
  readonly seq: number;
  readonly identifier: Identifier;
  readonly revokedAt: number;
  readonly revokedBy: string;
}

export interface RevokeOutcome {
  readonly revocation: RevocationRecord;
  /** True when the member was already revoked before this call (nothing changed). */
  readonly alreadyRevoked: boolean;
}

export type AuditEventName = 'enroll' | 'revoke' | 'connect' | 'disconnect' | 'ticket-create';

export interface AuditEvent {
  readonly at: number;
  readonly event: AuditEventName;
  readonly identifier?: string;
  readonly detail?: Record<string, unknown>;
}

export interface AuthorityStore {
  insertTicket(ticket: TicketRecord): Promise<void>;
  /** Atomic: check ticket (secret hash, uses left, expiry), use it once, create or update the member. */
  redeemTicket(request: RedeemRequest): Promise<RedeemOutcome>;
  getMember(identifier: Identifier): Promise<MemberRecord | undefined>;
  listMembers(): Promise<MemberRecord[]>;
  /** Marks the member revoked (idempotent: the first revocation's record is kept). Undefined: no such member. */
  revokeMember(identifier: Identifier, now: number, revokedBy: string): Promise<RevokeOutcome | undefined>;
  /** Revocations with seq > afterSeq, oldest first. */
  revocationsAfter(afterSeq: number): Promise<RevocationRecord[]>;
  lastRevocationSeq(): Promise<number>;
  appendAudit(event: AuditEvent): Promise<void>;
  /** The most recent `limit` events, oldest first. */
  listAudit(limit: number): Promise<AuditEvent[]>;
  close(): Promise<void>;
}

/**
 * The enrollment rule every store applies inside its redemption transaction (kept here so that
 * all implementations agree):
 * - a new identity becomes a member with the ticket's attributes, plus `wicket:relays` = the
 *   ticket's relay names;
 * - an existing, non-revoked member re-enrolling merges: the ticket's attributes override
 *   same-named ones, and the relay names are the union of old and new;
 * - a revoked member redeeming a NEW ticket is reinstated with exactly the new ticket's grants
 *   (the admin issued that ticket on purpose; the old grants stay gone).
 */
export function applyEnrollment(
  existing: MemberRecord | undefined,
  ticket: Pick<TicketRecord, 'attributes' | 'relayNames'>,
  request: Pick<RedeemRequest, 'identifier' | 'publicKey' | 'now'>,
): { member: MemberRecord; kind: 'new' | 'merged' | 'reinstated' } {
  const granted: Attributes = { ...ticket.attributes };
  if (existing === undefined || existing.revokedAt !== undefined) {
    if (ticket.relayNames.length > 0) granted[RELAYS_ATTRIBUTE] = ticket.relayNames.join(',');
    return {
      kind: existing === undefined ? 'new' : 'reinstated',
      member: {
        identifier: request.identifier,
        publicKey: request.publicKey,
        attributes: granted,
        enrolledAt: existing?.enrolledAt ?? request.now,
      },
    };
  }
  const names = new Set(relayNamesOf(existing.attributes));
  for (const name of ticket.relayNames) names.add(name);
  const merged: Attributes = { ...existing.attributes, ...granted };
  if (names.size > 0) merged[RELAYS_ATTRIBUTE] = [...names].join(',');
  // The merge must still fit in a credential; refusing rolls the redemption back.
  if (Object.keys(merged).length > MAX_ATTRIBUTES || Buffer.byteLength(merged[RELAYS_ATTRIBUTE] ?? '') > MAX_ATTRIBUTE_VALUE_LEN) {
    throw wicketError('WICKET_ERR_ARGUMENT', `member ${existing.identifier} would exceed the attribute caps after merging this ticket`);
  }
  return { kind: 'merged', member: { ...existing, attributes: merged } };
}

/** The relay names an attribute set allows (the `wicket:relays` attribute, comma-separated). */
export function relayNamesOf(attributes: Readonly<Attributes>): string[] {
  const value = attributes[RELAYS_ATTRIBUTE];
  if (value === undefined || value === '') return [];
  return value.split(',').filter((name) => name.length > 0);
}

export function isAdmin(attributes: Readonly<Attributes>): boolean {
  return attributes[ADMIN_ATTRIBUTE] === 'true';
}
