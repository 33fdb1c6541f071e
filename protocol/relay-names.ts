import { MAX_RELAY_NAME_LEN } from './limits.js';

// Relay names and the credential attributes Wicket reserves (protocol/README.md, "Relay frames").
// The CLI checks these before any network I/O, the agent checks its node.json with them, and the
// relay's authority checks them again: one rule, so the three can never disagree.

/** Attribute keys under this prefix are Wicket's own: a ticket cannot grant them by --attribute. */
export const RESERVED_ATTRIBUTE_PREFIX = 'wicket:';
/** Comma-separated relay names the identity may register (granted with `--relay NAME`). */
export const RELAYS_ATTRIBUTE = 'wicket:relays';
/**
 * On a relay's own credential (Authority.relayCredential, for relay-to-relay links): the relay
 * process's id. No ticket can grant it (reserved prefix), and members never carry it.
 */
export const RELAY_ID_ATTRIBUTE = 'wicket:relay';
/** `true` grants the admin operations (tickets, members, revocation). */
export const ADMIN_ATTRIBUTE = 'admin';

// No comma: the relays attribute joins names with commas.
const RELAY_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** 1..MAX_RELAY_NAME_LEN letters, digits, '.', '_' or '-', starting with a letter or digit. */
export function isRelayName(name: unknown): name is string {
  return typeof name === 'string' && name.length > 0 && name.length <= MAX_RELAY_NAME_LEN && RELAY_NAME_PATTERN.test(name);
}

/** A relay process id (presence.ts makes 16 hex digits): the same characters as a relay name. */
export function isRelayId(id: unknown): id is string {
  return isRelayName(id);
}

export const RELAY_NAME_RULE = `1..${MAX_RELAY_NAME_LEN} letters, digits, '.', '_' or '-', starting with a letter or digit`;

/** The relay names an attribute set allows (the `wicket:relays` attribute, comma-separated). */
export function relayNamesOf(attributes: Readonly<Record<string, string>>): string[] {
  const value = attributes[RELAYS_ATTRIBUTE];
  if (value === undefined || value === '') return [];
  return value.split(',').filter((name) => name.length > 0);
}

export function isAdmin(attributes: Readonly<Record<string, string>>): boolean {
  return attributes[ADMIN_ATTRIBUTE] === 'true';
}

/**
 * Attribute names a statement's `{…sorted by key}` object can hold as sorted. JavaScript lists an
 * object's integer-like keys (array indices) first, in numeric order, whatever order they were put
 * in, and an assignment to `__proto__` stores nothing: a name made only of digits would leave the
 * text unsorted ({"9":…,"10":…,"-":…}), and `__proto__` would be dropped unseen. New tickets refuse
 * both (CLI, relay, signer: protocol/README.md, "Ticket grants"); stored ones keep verifying, since
 * an endorsement is checked over the text as stored.
 */
export function isSortableAttributeName(name: string): boolean {
  return !/^[0-9]+$/.test(name) && name !== '__proto__';
}

export const SORTABLE_ATTRIBUTE_NAME_RULE = "not made only of the digits 0-9, and not '__proto__'";
