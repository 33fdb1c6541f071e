import type { Attributes, TicketListing } from './store.js';

// How a stored ticket is shown to people, the same through `relay ticket list` (offline) and the
// admin operation `ticket.list` (`agent ticket list`): the id (not secret: it names the ticket),
// its grants, its uses and times, and one state word. Never the secret or its hash.

export type TicketState = 'outstanding' | 'used' | 'expired' | 'revoked';

export interface TicketView {
  readonly ticketId: string;
  readonly state: TicketState;
  readonly attributes: Attributes;
  readonly relayNames: readonly string[];
  readonly usageCount: number;
  readonly usesLeft: number;
  readonly createdAt: string;
  readonly expiresAt: string;
  readonly createdBy: string;
  readonly revokedAt?: string;
  readonly revokedBy?: string;
}

/** Revoked wins over used and expired (it is what an admin did); used wins over expired. */
export function ticketState(ticket: TicketListing, now: number): TicketState {
  if (ticket.revokedAt !== undefined) return 'revoked';
  if (ticket.usesLeft <= 0) return 'used';
  return now >= ticket.expiresAt ? 'expired' : 'outstanding';
}

export function ticketView(ticket: TicketListing, now: number): TicketView {
  const iso = (ms: number): string => new Date(ms).toISOString();
  return {
    ticketId: ticket.ticketId.toString('hex'),
    state: ticketState(ticket, now),
    attributes: ticket.attributes,
    relayNames: ticket.relayNames,
    usageCount: ticket.usageCount,
    usesLeft: ticket.usesLeft,
    createdAt: iso(ticket.createdAt),
    expiresAt: iso(ticket.expiresAt),
    createdBy: ticket.createdBy,
    ...(ticket.revokedAt === undefined ? {} : { revokedAt: iso(ticket.revokedAt), revokedBy: ticket.revokedBy ?? '' }),
  };
}
