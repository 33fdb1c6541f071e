import type { Attributes } from '../../protocol/credential.js';
import { wicketError } from '../../protocol/errors.js';
import { CLOCK_SKEW_MS, TICKET_ID_LEN } from '../../protocol/limits.js';
import { RELAY_ID_ATTRIBUTE } from '../../protocol/relay-names.js';
import { verifyTicketProof } from '../../protocol/ticket.js';
import { memberStatementText, parseMemberStatement, parseTicketStatement, sameAttributes, type Endorsement, type Endorser, type MemberEvidence } from './endorsement.js';
import type { QueuedMember } from './credential-queue.js';
import { applyEnrollment, type MemberRecord } from './store.js';

// What a signer on a shared store signs for a member (issue 14; endorsement.ts says why the store
// alone is not believed). The rule, in order:
//   1. a revoked member, or a member row carrying a relay's attribute, is refused;
//   2. a member the signer endorsed with exactly the row's key and attributes gets them;
//   3. otherwise the request must carry a redemption's evidence: the id of a ticket the signer
//      endorsed, and the enrolling agent's proof, signed with that ticket's key, binding this
//      project, that ticket and this member's key (protocol/ticket.ts). The signer recomputes what
//      the ticket grants (applyEnrollment, over what it endorsed of the member before, if
//      anything) and signs only when the row says exactly that; it endorses the result;
//   4. an endorsed member whose row has changed since, with no evidence, gets what was endorsed
//      (never what the row now claims);
//   5. anything else is refused with WICKET_ERR_NOT_ENDORSED.
// Pure: the caller reads the rows and endorsements and writes the new endorsement back.

export interface MembershipFacts {
  /** The member row as the store holds it now. */
  readonly member: QueuedMember;
  readonly memberEndorsement: Endorsement | undefined;
  readonly evidence: MemberEvidence | undefined;
  /** The endorsement stored for evidence.ticketId, if any. */
  readonly ticketEndorsement: Endorsement | undefined;
}

export interface MembershipVerdict {
  /** What the credential carries. */
  readonly attributes: Attributes;
  /** A new endorsement to store (rule 3). */
  readonly endorse?: Endorsement;
}

export function judgeMember(endorser: Endorser, authorityPublicKey: Buffer, facts: MembershipFacts, now: number): MembershipVerdict {
  const { member } = facts;
  if (member.revokedAt !== undefined) throw wicketError('WICKET_ERR_REVOKED', `${member.identifier} is revoked`);
  // Tickets cannot grant a relay's attribute: signing it would make a member pass for a relay on the mesh.
  if (member.attributes[RELAY_ID_ATTRIBUTE] !== undefined) throw wicketError('WICKET_ERR_ARGUMENT', `member ${member.identifier} carries the reserved ${RELAY_ID_ATTRIBUTE} attribute`);
  const publicKey = member.publicKey.toString('hex');
  let endorsed: Attributes | undefined;
  if (endorser.verifies(facts.memberEndorsement, 'member', member.identifier)) {
    const statement = parseMemberStatement(facts.memberEndorsement.statement);
    if (statement.identifier === member.identifier && statement.publicKey === publicKey) endorsed = statement.attributes;
  }
  if (endorsed !== undefined && sameAttributes(endorsed, member.attributes)) return { attributes: endorsed };
  if (facts.evidence !== undefined) return judgeRedemption(endorser, authorityPublicKey, facts.evidence, facts.ticketEndorsement, member, endorsed, now);
  if (endorsed !== undefined) return { attributes: endorsed };
  throw wicketError('WICKET_ERR_NOT_ENDORSED', `member ${member.identifier} was not admitted through the project's signer (no endorsement, and no ticket evidence came with the request)`);
}

function judgeRedemption(
  endorser: Endorser,
  authorityPublicKey: Buffer,
  evidence: MemberEvidence,
  ticketEndorsement: Endorsement | undefined,
  member: QueuedMember,
  endorsed: Attributes | undefined,
  now: number,
): MembershipVerdict {
  if (evidence.ticketId.length !== TICKET_ID_LEN) throw wicketError('WICKET_ERR_ARGUMENT', 'the evidence names no ticket id');
  const ticketId = evidence.ticketId.toString('hex');
  if (!endorser.verifies(ticketEndorsement, 'ticket', ticketId)) {
    throw wicketError('WICKET_ERR_NOT_ENDORSED', `ticket ${ticketId} was not created by the project's signer`);
  }
  const ticket = parseTicketStatement(ticketEndorsement.statement);
  if (ticket.ticketId !== ticketId) throw wicketError('WICKET_ERR_NOT_ENDORSED', `the endorsement stored for ticket ${ticketId} names another ticket`);
  // The relay checked expiry at redemption by its clock; the signer allows for skew between the two.
  if (now > ticket.expiresAt + CLOCK_SKEW_MS) throw wicketError('WICKET_ERR_TICKET_EXPIRED', `ticket ${ticketId} has expired`);
  const proven = verifyTicketProof({
    ticketKey: Buffer.from(ticket.ticketKey, 'hex'),
    authorityPublicKey,
    ticketId: evidence.ticketId,
    memberPublicKey: member.publicKey,
    proof: evidence.ticketProof,
  });
  if (!proven) throw wicketError('WICKET_ERR_SIGNATURE_INVALID', `the ticket proof for ${member.identifier} does not verify under ticket ${ticketId}'s key`);
  const before = endorsed === undefined ? undefined : ({ ...member, attributes: endorsed } as MemberRecord);
  const expected = applyEnrollment(before, ticket, { identifier: member.identifier as MemberRecord['identifier'], publicKey: member.publicKey, now }).member.attributes;
  if (!sameAttributes(expected, member.attributes)) {
    throw wicketError('WICKET_ERR_NOT_ENDORSED', `member ${member.identifier}'s attributes in the store are not what ticket ${ticketId} grants it`);
  }
  const statement = memberStatementText({ identifier: member.identifier, publicKey: member.publicKey.toString('hex'), attributes: expected });
  return { attributes: expected, endorse: endorser.endorse('member', member.identifier, statement) };
}
