import { timingSafeEqual } from 'node:crypto';
import type { Attributes } from '../../protocol/credential.js';
import type { Identifier } from '../../protocol/identity.js';
import { ED25519_PUBLIC_KEY_LEN } from '../../protocol/limits.js';
import type { MemberRecord, RevocationEvent, TicketListing } from './store.js';

// The rows both authority stores read (SQLite and PostgreSQL keep the same columns, with
// attributes and relay names as JSON text), and the records they become: one mapping, so the two
// stores cannot drift apart in what they return.

export interface MemberRow {
  identifier: string;
  public_key: Buffer;
  attributes: string;
  enrolled_at: number;
  revoked_at: number | null;
}

export interface TicketListingRow {
  ticket_id: Buffer;
  attributes: string;
  relay_names: string;
  usage_count: number;
  uses_left: number;
  created_at: number;
  expires_at: number;
  created_by: string;
  revoked_at: number | null;
  revoked_by: string | null;
}

export interface RevocationRow {
  seq: number;
  identifier: string;
  revoked_at: number;
  revoked_by: string;
  kind: 'revoke' | 'reinstate';
}

/**
 * Whether the presented ticket public key is the stored one (in constant time). A ticket from
 * before the ticket key holds an emptied key (the schema migration): it matches nothing, not even
 * an empty key presented past the relay's length check.
 */
export function ticketKeyMatches(stored: Buffer, presented: Buffer): boolean {
  return stored.length === ED25519_PUBLIC_KEY_LEN && presented.length === stored.length && timingSafeEqual(stored, presented);
}

export function memberFromRow(row: MemberRow): MemberRecord {
  const member: MemberRecord = {
    identifier: row.identifier as Identifier,
    publicKey: row.public_key,
    attributes: JSON.parse(row.attributes) as Attributes,
    enrolledAt: row.enrolled_at,
  };
  return row.revoked_at === null ? member : { ...member, revokedAt: row.revoked_at };
}

export function ticketFromRow(row: TicketListingRow): TicketListing {
  const ticket: TicketListing = {
    ticketId: row.ticket_id,
    attributes: JSON.parse(row.attributes) as Attributes,
    relayNames: JSON.parse(row.relay_names) as string[],
    usageCount: row.usage_count,
    usesLeft: row.uses_left,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    createdBy: row.created_by,
  };
  return row.revoked_at === null ? ticket : { ...ticket, revokedAt: row.revoked_at, revokedBy: row.revoked_by ?? '' };
}

export function revocationFromRow(row: RevocationRow): RevocationEvent {
  return { seq: row.seq, identifier: row.identifier as Identifier, kind: row.kind, at: row.revoked_at, by: row.revoked_by };
}
