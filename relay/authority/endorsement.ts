import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import type { Attributes } from '../../protocol/credential.js';
import { wicketError } from '../../protocol/errors.js';
import type { Identity } from '../../protocol/identity.js';

// The signer's endorsement of what the shared store says (issue 14: "taking over a forwarding
// relay gives no power to mint a credential"). Every relay of a PostgreSQL store writes it, so a
// signer that signed whatever a member row said would sign for anyone who wrote one. Instead a
// signer vouches, with an HMAC only holders of the project key can make, for each ticket it created
// and for each member it admitted on a ticket's evidence; it signs a member's credential only for
// the identity and attributes it vouched for (membership-rule.ts). A forwarding relay, or anyone
// with the store's password, can still write rows: the signer no longer believes them.
//
// A statement is the JSON text the tag covers, kept as text so that verifying it needs no
// canonical form: the signer checks the tag over the very bytes it reads back, then compares the
// parsed fields with the row. Keys are written in a fixed order and attributes sorted, so the same
// facts give the same text.

/** HKDF info for the endorsement key, derived from the project key's seed: one key, two uses kept apart. */
const ENDORSEMENT_KEY_INFO = 'wicket endorsement key v1';
const ENDORSEMENT_TAG_LEN = 32;

export type EndorsementKind = 'ticket' | 'member';

/** A stored endorsement: which record, the statement the signer vouched for, and its tag. */
export interface Endorsement {
  readonly kind: EndorsementKind;
  /** The ticket id (hex) or the member's identifier. */
  readonly subject: string;
  readonly statement: string;
  readonly tag: Buffer;
}

/**
 * Where a shared store keeps endorsements (PostgreSQL: table `endorsements`). A store without it
 * (SQLite) lives in the signing relay's own data folder beside the key, and is believed as it is.
 */
export interface EndorsementStore {
  read(kind: EndorsementKind, subject: string): Promise<Endorsement | undefined>;
  /** Stores (or replaces) the endorsement of one record: a member's is made again when it changes. */
  write(endorsement: Endorsement): Promise<void>;
  /**
   * Stores the endorsement of a record that has none yet; false (nothing written) when one is
   * stored already, whatever it says. A ticket is endorsed once: two signers judging the same
   * grant at once cannot both endorse it (the store's unique key decides, not a read before).
   */
  writeNew(endorsement: Endorsement): Promise<boolean>;
}

/** A redemption's evidence, passed from the relay that redeemed to the signer (membership-rule.ts). */
export interface MemberEvidence {
  readonly ticketId: Buffer;
  /** The agent's ticket proof (protocol/ticket.ts): the ticket key's signature binding project, ticket and member key. */
  readonly ticketProof: Buffer;
}

/** What a signer vouches for about a ticket: everything a redemption grants, and the key that proves holding it. */
export interface TicketStatement {
  readonly ticketId: string;
  /** The ticket's Ed25519 public key (hex): an enrolling agent proves it holds the secret with it. */
  readonly ticketKey: string;
  readonly attributes: Attributes;
  readonly relayNames: readonly string[];
  readonly usageCount: number;
  readonly expiresAt: number;
}

/** What a signer vouches for about a member: who it is and the attributes its credentials carry. */
export interface MemberStatement {
  readonly identifier: string;
  /** The member's Ed25519 public key (hex). */
  readonly publicKey: string;
  readonly attributes: Attributes;
}

/**
 * Sorted only for names a plain object keeps in insertion order: new tickets refuse digits-only
 * names and `__proto__` (ticket-rules.ts, protocol/relay-names.ts isSortableAttributeName). A text
 * written before that rule may list digit names first; it still verifies, since a tag is checked
 * over the stored text and fields are compared as sets (sameAttributes), never by rebuilding it.
 */
function sortedAttributes(attributes: Attributes): Record<string, string> {
  const sorted: Record<string, string> = {};
  for (const key of Object.keys(attributes).sort()) sorted[key] = attributes[key]!;
  return sorted;
}

export function ticketStatementText(s: TicketStatement): string {
  return JSON.stringify({ ticketId: s.ticketId, ticketKey: s.ticketKey, attributes: sortedAttributes(s.attributes), relayNames: [...s.relayNames], usageCount: s.usageCount, expiresAt: s.expiresAt });
}

export function memberStatementText(s: MemberStatement): string {
  return JSON.stringify({ identifier: s.identifier, publicKey: s.publicKey, attributes: sortedAttributes(s.attributes) });
}

/** Two attribute sets hold the same pairs (order aside). */
export function sameAttributes(a: Attributes, b: Attributes): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((key) => Object.hasOwn(b, key) && b[key] === a[key]);
}

function isStringRecord(value: unknown): value is Attributes {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.values(value).every((v) => typeof v === 'string');
}

/** A statement text read back from the store as a ticket statement; throws WICKET_ERR_NOT_ENDORSED when it is not one. */
export function parseTicketStatement(text: string): TicketStatement {
  const s = parseObject(text);
  if (
    typeof s.ticketId !== 'string' || typeof s.ticketKey !== 'string' || !isStringRecord(s.attributes) ||
    !Array.isArray(s.relayNames) || !s.relayNames.every((n) => typeof n === 'string') ||
    !Number.isSafeInteger(s.usageCount) || !Number.isSafeInteger(s.expiresAt)
  ) {
    throw wicketError('WICKET_ERR_NOT_ENDORSED', 'an endorsed ticket statement does not parse');
  }
  return s as unknown as TicketStatement;
}

export function parseMemberStatement(text: string): MemberStatement {
  const s = parseObject(text);
  if (typeof s.identifier !== 'string' || typeof s.publicKey !== 'string' || !isStringRecord(s.attributes)) {
    throw wicketError('WICKET_ERR_NOT_ENDORSED', 'an endorsed member statement does not parse');
  }
  return s as unknown as MemberStatement;
}

function parseObject(text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw wicketError('WICKET_ERR_NOT_ENDORSED', 'an endorsed statement is not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw wicketError('WICKET_ERR_NOT_ENDORSED', 'an endorsed statement is not an object');
  return value as Record<string, unknown>;
}

/** Makes and checks endorsement tags: held only by processes with the project key. */
export class Endorser {
  readonly #key: Buffer;

  constructor(identity: Identity) {
    const seed = identity.exportSeed();
    try {
      this.#key = Buffer.from(hkdfSync('sha256', seed.reveal(), Buffer.alloc(0), ENDORSEMENT_KEY_INFO, ENDORSEMENT_TAG_LEN));
    } finally {
      seed.reveal().fill(0);
    }
  }

  #tag(kind: EndorsementKind, subject: string, statement: string): Buffer {
    // Kind and subject are bound too, so a tag cannot be moved to another record or kind.
    return createHmac('sha256', this.#key).update(`${kind}\0${subject}\0${statement}`).digest();
  }

  endorse(kind: EndorsementKind, subject: string, statement: string): Endorsement {
    return { kind, subject, statement, tag: this.#tag(kind, subject, statement) };
  }

  /** The endorsement's tag was made with this project's key, for this kind and subject. */
  verifies(e: Endorsement | undefined, kind: EndorsementKind, subject: string): e is Endorsement {
    if (e === undefined || e.kind !== kind || e.subject !== subject || !(e.tag instanceof Uint8Array) || e.tag.length !== ENDORSEMENT_TAG_LEN) return false;
    return timingSafeEqual(e.tag, this.#tag(kind, subject, e.statement));
  }

  /** Never print the key. */
  toJSON(): string {
    return '[Endorser]';
  }
}
