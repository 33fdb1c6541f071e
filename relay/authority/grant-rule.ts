import { wicketError } from '../../protocol/errors.js';
import { identifierOf } from '../../protocol/identity.js';
import { isAdmin } from '../../protocol/relay-names.js';
import { checkGrantFresh, parseTicketGrant, verifyTicketGrant } from '../../protocol/ticket-grant.js';
import type { QueuedGrant, QueuedMember } from './credential-queue.js';
import { parseMemberStatement, ticketStatementText, type Endorsement, type Endorser } from './endorsement.js';
import { checkTicketRequest } from './ticket-rules.js';

// What a signer endorses for an admin's ticket grant that came through the store (issue 14: a
// forwarding relay, or whoever writes the store, has no power to mint; protocol/ticket-grant.ts is
// the grant). The queue row is hostile input: the signer believes only its own endorsements and
// the admin's signature. The rule, in order:
//   1. the admin (the request's subject) is a member row that is not revoked;
//   2. the signer endorsed that member (endorsement.ts), and what it endorsed carries admin=true:
//      a row raised to admin by hand is not an admin; and the row carries admin=true too: the row
//      may narrow what was endorsed (a demoted admin), never widen it;
//   3. the grant is the canonical statement of the ticket the row names, signed with the key the
//      signer endorsed for the admin, for this project;
//   4. signedAt is within TICKET_GRANT_FRESHNESS_MS of the request's time by the store's clock and
//      of the signer's own clock (the store's clock is whatever the row says: a store writer
//      replaying an old grant sets it too);
//   5. no ticket of that id is endorsed yet (a grant is good for one ticket, once; the store's
//      insert-only write of the endorsement settles a race between two signers: credential-queue.ts);
//   6. what it grants passes the rules every ticket does (ticket-rules.ts).
// Then the signer fixes the expiry by its own clock and endorses the ticket with the same statement
// a ticket made where the key is gets (authority.ts); the requesting relay writes the row with
// exactly those values. Pure: the caller reads the rows and stores the endorsement.

export interface GrantFacts {
  /** The admin's identifier, as the request names it. */
  readonly subject: string;
  readonly member: QueuedMember | undefined;
  readonly memberEndorsement: Endorsement | undefined;
  readonly grant: QueuedGrant | undefined;
  /** The endorsement stored for the grant's ticket id, if any. */
  readonly ticketEndorsement: Endorsement | undefined;
  /** When the request was written, by the store's clock (ms). */
  readonly requestedAt: number;
}

export interface GrantVerdict {
  readonly expiresAt: number;
  readonly endorse: Endorsement;
}

export function judgeTicketGrant(endorser: Endorser, authorityPublicKey: Buffer, facts: GrantFacts, now: number): GrantVerdict {
  const { subject, member, grant } = facts;
  if (grant === undefined) throw wicketError('WICKET_ERR_GRANT_INVALID', 'the ticket request carries no grant (statement, signature and ticket id)');
  if (member === undefined || member.identifier !== subject) throw wicketError('WICKET_ERR_MEMBER_UNKNOWN', `no member ${subject}`);
  if (member.revokedAt !== undefined) throw wicketError('WICKET_ERR_REVOKED', `${subject} is revoked`);
  if (!endorser.verifies(facts.memberEndorsement, 'member', subject)) {
    throw wicketError('WICKET_ERR_NOT_ENDORSED', `member ${subject} was not admitted through the project's signer`);
  }
  const endorsed = parseMemberStatement(facts.memberEndorsement.statement);
  const adminPublicKey = Buffer.from(endorsed.publicKey, 'hex');
  if (endorsed.identifier !== subject || identifierOf(adminPublicKey) !== subject) {
    throw wicketError('WICKET_ERR_NOT_ENDORSED', `the endorsement stored for ${subject} names another member`);
  }
  if (!isAdmin(endorsed.attributes)) throw wicketError('WICKET_ERR_NOT_ADMIN', `${subject} was not admitted with admin=true`);
  // The row may only narrow what the endorsement allows: an admin demoted in the store (by hand,
  // or by an admin tool that rewrote the row) makes no more tickets.
  if (!isAdmin(member.attributes)) throw wicketError('WICKET_ERR_NOT_ADMIN', `${subject} no longer carries admin=true in the store`);
  const granted = parseTicketGrant(grant.statement);
  const ticketId = grant.ticketId.toString('hex');
  if (granted.ticketId !== ticketId) throw wicketError('WICKET_ERR_GRANT_INVALID', `the grant names ticket ${granted.ticketId}, the request ${ticketId.slice(0, 64)}`);
  if (!verifyTicketGrant({ adminPublicKey, authorityPublicKey, statement: grant.statement, signature: grant.signature })) {
    throw wicketError('WICKET_ERR_GRANT_INVALID', `the grant for ticket ${ticketId} does not verify under ${subject}'s key for this project`);
  }
  checkGrantFresh(granted, facts.requestedAt, "the store's clock");
  checkGrantFresh(granted, now, "the signer's clock");
  if (endorser.verifies(facts.ticketEndorsement, 'ticket', ticketId)) throw wicketError('WICKET_ERR_GRANT_INVALID', `ticket ${ticketId} is already endorsed: a grant makes one ticket once`);
  const { attributes, relayNames, usageCount, expiresInMs } = checkTicketRequest(granted);
  const expiresAt = now + expiresInMs;
  const statement = ticketStatementText({ ticketId, ticketKey: granted.ticketKey, attributes, relayNames, usageCount, expiresAt });
  return { expiresAt, endorse: endorser.endorse('ticket', ticketId, statement) };
}
