import { wicketError } from '../../protocol/errors.js';
import type { Identifier } from '../../protocol/identity.js';
import {
  MAX_ATTRIBUTE_KEY_LEN,
  MAX_ATTRIBUTE_VALUE_LEN,
  MAX_ATTRIBUTES,
  MAX_RELAY_NAME_LEN,
  MAX_RELAY_NAMES,
  TICKET_DEFAULT_TTL_MS,
  TICKET_DEFAULT_USAGE_COUNT,
  TICKET_MAX_TTL_MS,
  TICKET_MAX_USAGE_COUNT,
} from '../../protocol/limits.js';
import { isRelayName, isSortableAttributeName, RELAY_NAME_RULE, RESERVED_ATTRIBUTE_PREFIX, SORTABLE_ATTRIBUTE_NAME_RULE } from '../../protocol/relay-names.js';
import type { Attributes } from './store.js';

// The authority's rules for what a ticket may grant, and the words a refused redemption is
// answered with (authority.ts applies them).

export interface TicketGrant {
  readonly attributes?: Attributes;
  readonly relayNames?: readonly string[];
  readonly usageCount?: number;
  readonly expiresInMs?: number;
}

export function checkTicketRequest(request: TicketGrant): { attributes: Attributes; relayNames: string[]; usageCount: number; expiresInMs: number } {
  const attributes: Attributes = {};
  const given = request.attributes ?? {};
  if (typeof given !== 'object' || given === null || Array.isArray(given)) {
    throw wicketError('WICKET_ERR_ARGUMENT', 'attributes must be an object of strings');
  }
  const entries = Object.entries(given);
  // One slot stays free for wicket:relays.
  if (entries.length > MAX_ATTRIBUTES - 1) throw wicketError('WICKET_ERR_ARGUMENT', `at most ${MAX_ATTRIBUTES - 1} attributes`);
  for (const [key, value] of entries) {
    if (key.length === 0 || Buffer.byteLength(key) > MAX_ATTRIBUTE_KEY_LEN || key.includes('=')) {
      throw wicketError('WICKET_ERR_ARGUMENT', `attribute key must be 1..${MAX_ATTRIBUTE_KEY_LEN} bytes without '='`);
    }
    if (!isSortableAttributeName(key)) throw wicketError('WICKET_ERR_ARGUMENT', `attribute key ${JSON.stringify(key.slice(0, 40))} must be ${SORTABLE_ATTRIBUTE_NAME_RULE}`);
    if (key.startsWith(RESERVED_ATTRIBUTE_PREFIX)) {
      throw wicketError('WICKET_ERR_ARGUMENT', `attribute ${JSON.stringify(key)} is reserved (relay names go in relayNames / --relay)`);
    }
    if (typeof value !== 'string' || Buffer.byteLength(value) > MAX_ATTRIBUTE_VALUE_LEN) {
      throw wicketError('WICKET_ERR_ARGUMENT', `attribute ${JSON.stringify(key)} value must be a string of at most ${MAX_ATTRIBUTE_VALUE_LEN} bytes`);
    }
    attributes[key] = value;
  }
  const relayNames = [...new Set(request.relayNames ?? [])];
  if (relayNames.length > MAX_RELAY_NAMES) throw wicketError('WICKET_ERR_ARGUMENT', `at most ${MAX_RELAY_NAMES} relay names`);
  for (const name of relayNames) checkRelayName(name);
  if (Buffer.byteLength(relayNames.join(',')) > MAX_ATTRIBUTE_VALUE_LEN) {
    throw wicketError('WICKET_ERR_ARGUMENT', `relay names together exceed ${MAX_ATTRIBUTE_VALUE_LEN} bytes`);
  }
  const usageCount = request.usageCount ?? TICKET_DEFAULT_USAGE_COUNT;
  if (!Number.isSafeInteger(usageCount) || usageCount < 1 || usageCount > TICKET_MAX_USAGE_COUNT) {
    throw wicketError('WICKET_ERR_ARGUMENT', `usage count must be an integer from 1 to ${TICKET_MAX_USAGE_COUNT}`);
  }
  const expiresInMs = request.expiresInMs ?? TICKET_DEFAULT_TTL_MS;
  if (!Number.isSafeInteger(expiresInMs) || expiresInMs < 1 || expiresInMs > TICKET_MAX_TTL_MS) {
    throw wicketError('WICKET_ERR_ARGUMENT', `ticket lifetime must be 1 ms to ${TICKET_MAX_TTL_MS / 86_400_000} days`);
  }
  return { attributes, relayNames, usageCount, expiresInMs };
}

export function checkRelayName(name: unknown): string {
  if (!isRelayName(name)) {
    const shown = typeof name === 'string' ? JSON.stringify(name.slice(0, MAX_RELAY_NAME_LEN)) : typeof name;
    throw wicketError('WICKET_ERR_ARGUMENT', `relay name ${shown} must be ${RELAY_NAME_RULE}`);
  }
  return name;
}

/**
 * Why a ticket was not redeemed, in words the agent prints as they are (the relay sends this text
 * to the enrolling agent). It says no more than the code does.
 */
export function refusalDetail(
  code: 'WICKET_ERR_TICKET_UNKNOWN' | 'WICKET_ERR_TICKET_EXPIRED' | 'WICKET_ERR_TICKET_USED' | 'WICKET_ERR_TICKET_REVOKED' | 'WICKET_ERR_REVOKED',
  ticketId: string, identifier: Identifier): string {
  switch (code) {
    case 'WICKET_ERR_REVOKED':
      return `${identifier} was revoked; enroll a new key, or ask an admin to reinstate this one`;
    case 'WICKET_ERR_TICKET_USED':
      return `ticket ${ticketId} was already used (it has no uses left); ask an admin for a new ticket`;
    case 'WICKET_ERR_TICKET_REVOKED':
      return `ticket ${ticketId} was revoked by an admin; ask an admin for a new ticket`;
    case 'WICKET_ERR_TICKET_EXPIRED':
      return `ticket ${ticketId} has expired; ask an admin for a new ticket`;
    case 'WICKET_ERR_TICKET_UNKNOWN':
      return `ticket ${ticketId} is not known to this relay (another relay's or project's ticket, or a mistyped secret)`;
  }
}
