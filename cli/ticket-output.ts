import { wicketError } from '../protocol/errors.js';
import type { TicketView } from '../relay/authority/ticket-view.js';

// What `relay ticket list|revoke` and `agent ticket list|revoke` print: the same table and lines
// from the same ticket views (relay/authority/ticket-view.ts), whether they were read from the
// data folder or came back from the relay as an admin answer. Ids only, never a ticket's text.
//
// list:    ID  STATE  USES  EXPIRES  CREATED  BY  RELAYS  ATTRIBUTES   (one line per ticket)
//          --json: {"tickets":[{ticketId, state, attributes, relayNames, usageCount, usesLeft,
//                   createdAt, expiresAt, createdBy, revokedAt?, revokedBy?}], "omitted": N}
// revoke:  `revoked ticket <id>; N uses left can no longer be redeemed`
//          --json: {"ticket": {...as above}, "alreadyRevoked": bool}

function asRecord(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw wicketError('WICKET_ERR_RELAY_PROTOCOL', `the relay's ${what} answer is not an object`);
  return value as Record<string, unknown>;
}

/** A ticket view as the relay sent it, checked field by field (an agent trusts no answer's shape). */
export function ticketViewFrom(value: unknown, what: string): TicketView {
  const r = asRecord(value, what);
  const text = (field: string): string => {
    if (typeof r[field] !== 'string') throw wicketError('WICKET_ERR_RELAY_PROTOCOL', `the relay's ${what} answer has no ${field}`);
    return r[field];
  };
  const count = (field: string): number => (typeof r[field] === 'number' ? r[field] : 0);
  const attributes = asRecord(r.attributes ?? {}, what) as Record<string, string>;
  const relayNames = Array.isArray(r.relayNames) ? r.relayNames.map(String) : [];
  const state = text('state');
  if (state !== 'outstanding' && state !== 'used' && state !== 'expired' && state !== 'revoked') {
    throw wicketError('WICKET_ERR_RELAY_PROTOCOL', `the relay's ${what} answer has an unknown ticket state`);
  }
  return {
    ticketId: text('ticketId'),
    state,
    attributes,
    relayNames,
    usageCount: count('usageCount'),
    usesLeft: count('usesLeft'),
    createdAt: text('createdAt'),
    expiresAt: text('expiresAt'),
    createdBy: text('createdBy'),
    ...(typeof r.revokedAt === 'string' ? { revokedAt: r.revokedAt, revokedBy: typeof r.revokedBy === 'string' ? r.revokedBy : '' } : {}),
  };
}

export function ticketListFrom(value: unknown): { tickets: TicketView[]; omitted: number } {
  const r = asRecord(value, 'ticket.list');
  if (!Array.isArray(r.tickets)) throw wicketError('WICKET_ERR_RELAY_PROTOCOL', "the relay's ticket.list answer has no tickets array");
  return { tickets: r.tickets.map((t) => ticketViewFrom(t, 'ticket.list')), omitted: typeof r.omitted === 'number' ? r.omitted : 0 };
}

export function printTicketTable(tickets: readonly TicketView[], all: boolean): void {
  if (tickets.length === 0) {
    process.stdout.write(all ? 'no tickets\n' : 'no outstanding tickets (--all shows used, expired and revoked ones)\n');
    return;
  }
  const header = ['ID', 'STATE', 'USES', 'EXPIRES', 'CREATED', 'BY', 'RELAYS', 'ATTRIBUTES'];
  const lines = tickets.map((t) => [
    t.ticketId,
    t.state === 'revoked' && t.revokedAt !== undefined ? `revoked ${t.revokedAt}` : t.state,
    `${t.usesLeft}/${t.usageCount}`,
    t.expiresAt,
    t.createdAt,
    t.createdBy,
    t.relayNames.length === 0 ? '-' : t.relayNames.join(','),
    Object.entries(t.attributes)
      .map(([k, v]) => (v === 'true' ? k : `${k}=${v}`))
      .join(' '),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const format = (cells: string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  process.stdout.write([format(header), ...lines.map(format)].join('\n') + '\n');
}

export function ticketRevokedLine(ticket: TicketView, alreadyRevoked: boolean): string {
  if (alreadyRevoked) return `ticket ${ticket.ticketId} was already revoked at ${ticket.revokedAt ?? '?'} by ${ticket.revokedBy ?? '?'}`;
  const uses = ticket.usesLeft === 0 ? 'it had no uses left' : `${ticket.usesLeft} use${ticket.usesLeft === 1 ? '' : 's'} left can no longer be redeemed`;
  return `revoked ticket ${ticket.ticketId}; ${uses}`;
}
