import type { Identity } from '../../protocol/identity.js';
import { ticketKeyFromSecret, ticketProofMessage, type Ticket } from '../../protocol/ticket.js';
import type { EnrollRequest } from '../../relay/authority/authority.js';

// What an agent presents for a ticket instead of its secret (protocol/ticket.ts): the ticket
// key's public key and its proof for one member key, as the honest agent computes them. Tests
// that redeem through the Authority directly, or forge a field on purpose, start from here.

/** The ticket's public key and its proof binding (authority, ticket id, member). */
export function ticketEvidence(ticket: Ticket, memberPublicKey: Buffer, authorityPublicKey = ticket.authorityPublicKey): { ticketKey: Buffer; ticketProof: Buffer } {
  const key = ticketKeyFromSecret(ticket.secret);
  return { ticketKey: key.publicKey, ticketProof: key.sign(ticketProofMessage(authorityPublicKey, ticket.ticketId, memberPublicKey)) };
}

/** Authority.redeem / enroll's request for `member` redeeming `ticket`. */
export function enrollRequest(ticket: Ticket, member: Identity | Buffer): EnrollRequest {
  const publicKey = Buffer.isBuffer(member) ? member : member.publicKey;
  return { ticketId: ticket.ticketId, publicKey, ...ticketEvidence(ticket, publicKey) };
}
