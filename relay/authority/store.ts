import { wicketError, type ErrorCode } from '../../protocol/errors.js';
import { MAX_ATTRIBUTE_VALUE_LEN, MAX_ATTRIBUTES } from '../../protocol/limits.js';
import type { Identifier } from '../../protocol/identity.js';
import { RELAYS_ATTRIBUTE, relayNamesOf } from '../../protocol/relay-names.js';
import type { CredentialQueue } from './credential-queue.js';
import type { EndorsementStore } from './endorsement.js';

// The authority's persistent state behind one small interface: members, tickets, revocations and
// the audit trail. Every method is async so that several relays can later share one PostgreSQL
// store; SqliteStore (sqlite-store.ts) is the single-relay implementation, PgStore (pg-store.ts) the
// shared one (open-store.ts picks by `--store`). Whatever backs it, each
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
  /** ticketKeyFromSecret(secret).publicKey: the secret itself is never stored, nor seen by a relay. */
  readonly ticketKey: Buffer;
  readonly attributes: Attributes;
  readonly relayNames: readonly string[];
  readonly usageCount: number;
  readonly createdAt: number;
  readonly expiresAt: number;
  /** Identifier of the admin who created it, or 'relay' / 'cli' for the relay host. */
  readonly createdBy: string;
}

/** A stored ticket as `ticket list` shows it: everything but the ticket's public key. */
export interface TicketListing {
  readonly ticketId: Buffer;
  readonly attributes: Attributes;
  readonly relayNames: readonly string[];
  readonly usageCount: number;
  /** Uses not yet redeemed (a revoked ticket keeps the count it had; none can be redeemed). */
  readonly usesLeft: number;
  readonly createdAt: number;
  readonly expiresAt: number;
  readonly createdBy: string;
  /** ms since epoch; present when an admin revoked the ticket. */
  readonly revokedAt?: number;
  readonly revokedBy?: string;
}

export interface TicketRevokeOutcome {
  /** The ticket after the call. */
  readonly ticket: TicketListing;
  /** True when it was already revoked (nothing changed: the first revocation is kept). */
  readonly alreadyRevoked: boolean;
}

export interface RedeemRequest {
  readonly ticketId: Buffer;
  /** The ticket public key the agent presented (its proof already verified); must equal the stored one. */
  readonly ticketKey: Buffer;
  readonly identifier: Identifier;
  readonly publicKey: Buffer;
  readonly now: number;
}

export type RedeemOutcome =
  | { readonly ok: true; readonly member: MemberRecord; readonly kind: EnrollmentKind }
  | {
      readonly ok: false;
      readonly code: Extract<ErrorCode, 'WICKET_ERR_TICKET_UNKNOWN' | 'WICKET_ERR_TICKET_EXPIRED' | 'WICKET_ERR_TICKET_USED' | 'WICKET_ERR_TICKET_REVOKED' | 'WICKET_ERR_REVOKED'>;
    };

/**
 * new: a first enrollment; merged: a live member redeemed another ticket; repeated: this key
 * redeemed this very ticket before (a retry after a lost welcome: no use is spent, nothing changes).
 */
export type EnrollmentKind = 'new' | 'merged' | 'repeated';

/** A change to the revoked set, in the order relays and agents apply them. */
export interface RevocationEvent {
  /** Monotonic sequence number: relays poll, and agents re-sync, from the last one they saw. */
  readonly seq: number;
  readonly identifier: Identifier;
  readonly kind: 'revoke' | 'reinstate';
  /** ms since epoch. */
  readonly at: number;
  /** An admin's identifier, or 'relay' / 'cli' on the relay host. */
  readonly by: string;
}

export interface RevokeOutcome {
  readonly event: RevocationEvent;
  /** True when the member was already revoked before this call (nothing changed). */
  readonly alreadyRevoked: boolean;
  /**
   * Tickets this identity redeemed that still had uses, now spent: whoever was revoked still holds
   * them, and must not come back in under a new key with a ticket it was once given.
   */
  readonly ticketsSpent: number;
}

export type ReinstateOutcome = { readonly ok: true; readonly event: RevocationEvent } | { readonly ok: false; readonly code: Extract<ErrorCode, 'WICKET_ERR_MEMBER_UNKNOWN' | 'WICKET_ERR_MEMBER_NOT_REVOKED'> };

export type AuditEventName = 'enroll' | 'revoke' | 'reinstate' | 'connect' | 'disconnect' | 'ticket-create' | 'ticket-revoke';

export interface AuditEvent {
  readonly at: number;
  readonly event: AuditEventName;
  readonly identifier?: string;
  readonly detail?: Record<string, unknown>;
}

/**
 * How a store shared by several relays (PgStore) tells each relay that another process committed
 * revocation events. A store without it (SQLite) is polled.
 */
export interface StoreChangeFeed {
  /** `listener` runs after another process commits an event, and after every (re)connect, when some may have been missed. */
  onRevocationEvents(listener: () => void): void;
  /** The same for a relay's served names changing (mesh routing, relay/mesh/name-directory.ts). */
  onServedNames(listener: () => void): void;
  /** undefined while the feed listens, else why not (one line, for /readyz). */
  problem(): string | undefined;
}

/** A relay serving the project, as it records itself (presence; tickets list the live ones). */
export interface RelayRecord {
  /** Random per relay process, for logs: which relay wrote the row. */
  readonly relayId: string;
  /** What agents dial (the relay's public URL); one row per URL. */
  readonly url: string;
  /** SHA-256 of the relay's self-signed certificate, pinned in tickets. */
  readonly fingerprint?: Buffer;
  /** ms since epoch of its last heartbeat (RELAY_HEARTBEAT_INTERVAL_MS). */
  readonly lastSeen: number;
}

/** A relay name a relay has at least one live local server for (mesh routing). */
export interface ServedName {
  readonly relayId: string;
  readonly name: string;
}

export interface AuthorityStore {
  /** Present when the store pushes revocation events (PostgreSQL); absent means poll. */
  readonly changes?: StoreChangeFeed;
  /**
   * Present on a store several relays share (PostgreSQL): how a relay without the signing key gets
   * credentials from a signer (credential-queue.ts). SQLite has one relay, which always signs.
   */
  readonly credentials?: CredentialQueue;
  /** Present on a shared store: the signer's endorsements of tickets and members (endorsement.ts). */
  readonly endorsements?: EndorsementStore;
  /**
   * Stores a new ticket; false (nothing written) when a ticket of that id is stored already, so a
   * replayed grant is told apart from a store failure without a check-then-write.
   */
  insertTicket(ticket: TicketRecord): Promise<boolean>;
  /**
   * Atomic: check the ticket (its public key, uses left, expiry) and the member (a revoked key is
   * refused without spending a use), use the ticket once, create or update the member, and record
   * which key redeemed it (so the same key redeeming it again is answered without a second use).
   */
  redeemTicket(request: RedeemRequest): Promise<RedeemOutcome>;
  /**
   * Outstanding tickets (uses left, not expired at `now`, not revoked), oldest first; with `all`,
   * every stored ticket.
   */
  listTickets(query: { readonly now: number; readonly all: boolean }): Promise<TicketListing[]>;
  /**
   * Marks the ticket revoked: no redemption succeeds from then on (idempotent: the first
   * revocation is kept). Undefined: no such ticket.
   */
  revokeTicket(ticketId: Buffer, now: number, by: string): Promise<TicketRevokeOutcome | undefined>;
  getMember(identifier: Identifier): Promise<MemberRecord | undefined>;
  listMembers(): Promise<MemberRecord[]>;
  /**
   * Marks the member revoked and spends the uses left on every ticket it redeemed (idempotent: the
   * first revocation's event is kept). Undefined: no such member.
   */
  revokeMember(identifier: Identifier, now: number, by: string): Promise<RevokeOutcome | undefined>;
  /** Clears a revocation (the only way back for a revoked key) and records a reinstate event. */
  reinstateMember(identifier: Identifier, now: number, by: string): Promise<ReinstateOutcome>;
  /** Revocation events with seq > afterSeq and at >= sinceAt, oldest first. */
  revocationEventsAfter(afterSeq: number, sinceAt: number): Promise<RevocationEvent[]>;
  lastRevocationSeq(): Promise<number>;
  appendAudit(event: AuditEvent): Promise<void>;
  /** The most recent `limit` events, oldest first. */
  listAudit(limit: number): Promise<AuditEvent[]>;
  /** Records (or refreshes) a relay's presence. */
  upsertRelay(record: RelayRecord): Promise<void>;
  /**
   * Relays seen within `withinMs` of `now` (default RELAY_LIVE_TIMEOUT_MS: the live ones), most
   * recently seen first.
   */
  liveRelays(now: number, withinMs?: number): Promise<RelayRecord[]>;
  /** Records that relay `relayId` serves `name` (or no longer does), and tells the other relays. */
  setServedName(relayId: string, name: string, served: boolean): Promise<void>;
  /** The names served by relays seen within RELAY_LIVE_TIMEOUT_MS of `now`. */
  servedNames(now: number): Promise<ServedName[]>;
  close(): Promise<void>;
}

/**
 * The enrollment rule every store applies inside its redemption transaction (kept here so that
 * all implementations agree), for a key that is not revoked (a revoked key is refused before this):
 * - a new identity becomes a member with the ticket's attributes, plus `wicket:relays` = the
 *   ticket's relay names;
 * - an existing member re-enrolling merges: the ticket's attributes override same-named ones, and
 *   the relay names are the union of old and new.
 * A revoked key stays revoked whatever ticket it redeems: re-joining takes a new key, and an
 * admin's explicit reinstate is the only way back (a multi-use ticket minted before a revocation
 * must not undo it).
 */
export function applyEnrollment(
  existing: MemberRecord | undefined,
  ticket: Pick<TicketRecord, 'attributes' | 'relayNames'>,
  request: Pick<RedeemRequest, 'identifier' | 'publicKey' | 'now'>,
): { member: MemberRecord; kind: 'new' | 'merged' } {
  if (existing?.revokedAt !== undefined) throw wicketError('WICKET_ERR_INTERNAL', `applyEnrollment called for revoked member ${existing.identifier}`);
  const granted: Attributes = { ...ticket.attributes };
  if (existing === undefined) {
    if (ticket.relayNames.length > 0) granted[RELAYS_ATTRIBUTE] = ticket.relayNames.join(',');
    return { kind: 'new', member: { identifier: request.identifier, publicKey: request.publicKey, attributes: granted, enrolledAt: request.now } };
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
