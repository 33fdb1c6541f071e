import { wicketError } from './errors.js';
import { verifySignature, type Identity } from './identity.js';
import { ED25519_PUBLIC_KEY_LEN, MAX_TICKET_GRANT_LEN, TICKET_GRANT_FRESHNESS_MS, TICKET_ID_LEN } from './limits.js';
import { isSortableAttributeName, SORTABLE_ATTRIBUTE_NAME_RULE } from './relay-names.js';

// A ticket grant (protocol/README.md, "Ticket grants"): an admin agent makes a ticket itself (its
// secret, id and ticket key never leave it but the key's public half) and signs, with its own
// identity key, what the ticket grants. A relay without the project key can then carry the grant
// to a signer through the store; the signer endorses the ticket only when the grant verifies
// under the key of a member it endorsed as admin. So no relay ever holds a ticket's secret, and a
// forwarding relay, or whoever writes the store, cannot make or raise a grant:
//
//   signed  = "wicket/ticket-grant/v1\0" ‖ project authority public key (32) ‖ statement (UTF-8)
//   statement = {"ticketId":hex32,"ticketKey":hex64,"attributes":{sorted},"relayNames":[…],
//                "usageCount":n,"expiresInMs":n,"signedAt":ms}         JSON, keys in this order
//
// The statement is canonical: one set of facts has one text, so a verifier may rebuild it from
// fields (the admin op's arguments) or parse a stored text and insist it is the canonical one.
// The authority key is in the signed bytes, so a grant for one project is worth nothing in another;
// the domain keeps any other signature an identity makes (credentials, handshakes) from passing
// for a grant. What a ticket may grant (attribute and name rules, caps) is the relay's rule
// (relay/authority/ticket-rules.ts), checked after the signature.

export const TICKET_GRANT_DOMAIN = Buffer.from('wicket/ticket-grant/v1\0');

export interface TicketGrant {
  /** TICKET_ID_LEN bytes, hex. */
  readonly ticketId: string;
  /** The ticket key's Ed25519 public key (ticketKeyFromSecret), hex. */
  readonly ticketKey: string;
  readonly attributes: Readonly<Record<string, string>>;
  readonly relayNames: readonly string[];
  readonly usageCount: number;
  /** The signer fixes expiresAt = its clock + this, so the admin's clock never sets an expiry. */
  readonly expiresInMs: number;
  /** ms since epoch by the admin agent's clock: how old the grant is. */
  readonly signedAt: number;
}

const HEX_ID = new RegExp(`^[0-9a-f]{${TICKET_ID_LEN * 2}}$`);
const HEX_KEY = new RegExp(`^[0-9a-f]{${ED25519_PUBLIC_KEY_LEN * 2}}$`);

function invalid(detail: string): never {
  throw wicketError('WICKET_ERR_GRANT_INVALID', detail);
}

function isStringRecord(value: unknown): value is Record<string, string> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.values(value).every((v) => typeof v === 'string');
}

/**
 * Checks the grant's shape (not what it grants: ticket-rules.ts). Throws WICKET_ERR_GRANT_INVALID
 * naming the field, or WICKET_ERR_ARGUMENT for an attribute name no canonical text can hold
 * (relay-names.ts, isSortableAttributeName).
 */
export function checkGrantShape(g: unknown): TicketGrant {
  if (typeof g !== 'object' || g === null || Array.isArray(g)) invalid('a ticket grant is an object');
  const s = g as Record<string, unknown>;
  if (typeof s.ticketId !== 'string' || !HEX_ID.test(s.ticketId)) invalid(`ticketId must be ${TICKET_ID_LEN * 2} lowercase hex digits`);
  if (typeof s.ticketKey !== 'string' || !HEX_KEY.test(s.ticketKey)) invalid(`ticketKey must be ${ED25519_PUBLIC_KEY_LEN * 2} lowercase hex digits`);
  if (!isStringRecord(s.attributes)) invalid('attributes must be an object of strings');
  // Such a name cannot be written in sorted order (or at all): no canonical text for the grant.
  for (const key of Object.keys(s.attributes)) {
    if (!isSortableAttributeName(key)) throw wicketError('WICKET_ERR_ARGUMENT', `attribute key ${JSON.stringify(key.slice(0, 40))} must be ${SORTABLE_ATTRIBUTE_NAME_RULE}`);
  }
  if (!Array.isArray(s.relayNames) || !s.relayNames.every((n) => typeof n === 'string')) invalid('relayNames must be an array of strings');
  for (const field of ['usageCount', 'expiresInMs', 'signedAt'] as const) {
    if (!Number.isSafeInteger(s[field]) || (s[field] as number) < 0) invalid(`${field} must be a non-negative integer`);
  }
  return s as unknown as TicketGrant;
}

/**
 * The canonical statement text: fixed key order, attributes sorted by key (UTF-16 code units,
 * JavaScript's default sort; checkGrantShape keeps out the names an object would reorder), names as given.
 */
export function ticketGrantText(g: TicketGrant): string {
  const grant = checkGrantShape(g);
  const attributes: Record<string, string> = {};
  for (const key of Object.keys(grant.attributes).sort()) attributes[key] = grant.attributes[key]!;
  return JSON.stringify({
    ticketId: grant.ticketId,
    ticketKey: grant.ticketKey,
    attributes,
    relayNames: [...grant.relayNames],
    usageCount: grant.usageCount,
    expiresInMs: grant.expiresInMs,
    signedAt: grant.signedAt,
  });
}

/**
 * A stored statement text as a grant: it must parse, have the grant's shape and be the canonical
 * text of what it says (no extra keys, no other order or spacing). Throws WICKET_ERR_GRANT_INVALID.
 */
export function parseTicketGrant(text: unknown): TicketGrant {
  if (typeof text !== 'string' || text.length > MAX_TICKET_GRANT_LEN) invalid(`a grant statement is a string of at most ${MAX_TICKET_GRANT_LEN} characters`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    invalid('the grant statement is not JSON');
  }
  const grant = checkGrantShape(value);
  if (ticketGrantText(grant) !== text) invalid('the grant statement is not in canonical form');
  return grant;
}

export function ticketGrantMessage(authorityPublicKey: Buffer, statement: string): Buffer {
  if (!(authorityPublicKey instanceof Uint8Array) || authorityPublicKey.length !== ED25519_PUBLIC_KEY_LEN) {
    throw wicketError('WICKET_ERR_ARGUMENT', `the authority public key must be ${ED25519_PUBLIC_KEY_LEN} bytes`);
  }
  return Buffer.concat([TICKET_GRANT_DOMAIN, authorityPublicKey, Buffer.from(statement, 'utf8')]);
}

/** The admin's signature over a grant for the project `authorityPublicKey`; returns the statement text with it. */
export function signTicketGrant(admin: Identity, authorityPublicKey: Buffer, grant: TicketGrant): { statement: string; signature: Buffer } {
  const statement = ticketGrantText(grant);
  return { statement, signature: admin.sign(ticketGrantMessage(authorityPublicKey, statement)) };
}

/** True when `signature` is `adminPublicKey`'s over `statement` for this project; false (never a throw) otherwise. */
export function verifyTicketGrant(o: { adminPublicKey: Buffer; authorityPublicKey: Buffer; statement: string; signature: Buffer }): boolean {
  try {
    return verifySignature(o.adminPublicKey, ticketGrantMessage(o.authorityPublicKey, o.statement), o.signature);
  } catch {
    return false;
  }
}

/** A time for a message; a hostile value past Date's range shows as the number it is. */
function shownTime(ms: number): string {
  const date = new Date(ms);
  return Number.isNaN(date.getTime()) ? String(ms) : date.toISOString();
}

/** Throws WICKET_ERR_GRANT_INVALID when signedAt is more than TICKET_GRANT_FRESHNESS_MS from `now` either way. */
export function checkGrantFresh(grant: TicketGrant, now: number, clock: string): void {
  if (Math.abs(now - grant.signedAt) > TICKET_GRANT_FRESHNESS_MS) {
    invalid(`the grant was signed at ${shownTime(grant.signedAt)}, more than ${TICKET_GRANT_FRESHNESS_MS / 60_000} minutes from ${clock} (${shownTime(now)}): check the admin host's clock, and make the ticket again`);
  }
}
