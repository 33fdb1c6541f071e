import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { codeOf } from '../helpers/error-code.js';
import { Identity } from '../../protocol/identity.js';
import { CLOCK_SKEW_MS } from '../../protocol/limits.js';
import { Secret } from '../../protocol/secret.js';
import { ticketKeyFromSecret, ticketProofMessage } from '../../protocol/ticket.js';
import { Endorser, memberStatementText, ticketStatementText, type Endorsement } from '../../relay/authority/endorsement.js';
import { judgeMember, type MembershipFacts } from '../../relay/authority/membership-rule.js';
import type { QueuedMember } from '../../relay/authority/credential-queue.js';

// What a signer on a shared store signs for a member (membership-rule.ts), attack by attack: each
// forgery a store writer can make (rows, tags, moved tags, another project's tags, proofs for
// another key) is refused with a stable code, and the honest redemption is endorsed with exactly
// what its ticket grants.

const now = 1_800_000_000_000;
const project = Identity.generate();
const endorser = new Endorser(project);

interface IssuedTicket {
  readonly ticketId: Buffer;
  readonly key: Identity;
  readonly endorsement: Endorsement;
}

function ticket(attributes: Record<string, string>, o: { relayNames?: string[]; expiresAt?: number; by?: Endorser } = {}): IssuedTicket {
  const ticketId = randomBytes(16);
  const key = ticketKeyFromSecret(new Secret(randomBytes(32)));
  const statement = ticketStatementText({ ticketId: ticketId.toString('hex'), ticketKey: key.publicKey.toString('hex'), attributes, relayNames: o.relayNames ?? [], usageCount: 1, expiresAt: o.expiresAt ?? now + 60_000 });
  return { ticketId, key, endorsement: (o.by ?? endorser).endorse('ticket', ticketId.toString('hex'), statement) };
}

function memberRow(agent: Identity, attributes: Record<string, string>, revokedAt?: number): QueuedMember {
  return { identifier: agent.identifier, publicKey: agent.publicKey, attributes, enrolledAt: now, ...(revokedAt === undefined ? {} : { revokedAt }) };
}

function evidenceFor(t: IssuedTicket, agent: Identity, authority = project.publicKey) {
  return { ticketId: t.ticketId, ticketProof: t.key.sign(ticketProofMessage(authority, t.ticketId, agent.publicKey)) };
}

function endorsedMember(agent: Identity, attributes: Record<string, string>, by = endorser): Endorsement {
  return by.endorse('member', agent.identifier, memberStatementText({ identifier: agent.identifier, publicKey: agent.publicKey.toString('hex'), attributes }));
}

const judge = (facts: Partial<MembershipFacts> & Pick<MembershipFacts, 'member'>) =>
  judgeMember(endorser, project.publicKey, { memberEndorsement: undefined, evidence: undefined, ticketEndorsement: undefined, ...facts }, now);

describe('the membership rule of a signer on a shared store', () => {
  it('an honest redemption is admitted with what the ticket grants, and endorsed for later', () => {
    const agent = Identity.generate();
    const t = ticket({ team: 'a' }, { relayNames: ['svc'] });
    const member = memberRow(agent, { team: 'a', 'wicket:relays': 'svc' });
    const verdict = judge({ member, evidence: evidenceFor(t, agent), ticketEndorsement: t.endorsement });
    expect(verdict.attributes).toEqual({ team: 'a', 'wicket:relays': 'svc' });
    expect(verdict.endorse).toBeDefined();
    // Next time, with no evidence, the endorsement alone is enough and nothing new is endorsed.
    const later = judge({ member, memberEndorsement: verdict.endorse });
    expect(later).toEqual({ attributes: { team: 'a', 'wicket:relays': 'svc' } });
  });

  it('a second ticket merges over what was endorsed (new attributes win, relay names unioned)', () => {
    const agent = Identity.generate();
    const t = ticket({ role: 'inlet', team: 'b' }, { relayNames: ['two'] });
    const member = memberRow(agent, { team: 'b', role: 'inlet', 'wicket:relays': 'one,two' });
    const verdict = judge({ member, memberEndorsement: endorsedMember(agent, { team: 'a', 'wicket:relays': 'one' }), evidence: evidenceFor(t, agent), ticketEndorsement: t.endorsement });
    expect(verdict.attributes).toEqual({ team: 'b', role: 'inlet', 'wicket:relays': 'one,two' });
  });

  it('MemberRowWrittenByHand: no endorsement and no evidence is refused', () => {
    expect(codeOf(() => judge({ member: memberRow(Identity.generate(), { admin: 'true' }) }))).toBe('WICKET_ERR_NOT_ENDORSED');
  });

  it('AttributesRaisedInTheStore: an endorsed member gets what was endorsed, never what the row now claims', () => {
    const agent = Identity.generate();
    const verdict = judge({ member: memberRow(agent, { team: 'a', admin: 'true' }), memberEndorsement: endorsedMember(agent, { team: 'a' }) });
    expect(verdict).toEqual({ attributes: { team: 'a' } });
  });

  it('AttributesRaisedBesideEvidence: a redemption whose row says more than the ticket grants is refused', () => {
    const agent = Identity.generate();
    const t = ticket({ team: 'a' });
    expect(codeOf(() => judge({ member: memberRow(agent, { team: 'a', admin: 'true' }), evidence: evidenceFor(t, agent), ticketEndorsement: t.endorsement }))).toBe('WICKET_ERR_NOT_ENDORSED');
  });

  it('TicketRowWrittenByHand: a ticket with no endorsement, or one tagged with another key, admits nobody', () => {
    const agent = Identity.generate();
    const t = ticket({ admin: 'true' });
    const member = memberRow(agent, { admin: 'true' });
    expect(codeOf(() => judge({ member, evidence: evidenceFor(t, agent) }))).toBe('WICKET_ERR_NOT_ENDORSED');
    const forged = ticket({ admin: 'true' }, { by: new Endorser(Identity.generate()) });
    expect(codeOf(() => judge({ member, evidence: evidenceFor(forged, agent), ticketEndorsement: forged.endorsement }))).toBe('WICKET_ERR_NOT_ENDORSED');
    const randomTag = { ...t.endorsement, tag: randomBytes(32) };
    expect(codeOf(() => judge({ member, evidence: evidenceFor(t, agent), ticketEndorsement: randomTag }))).toBe('WICKET_ERR_NOT_ENDORSED');
  });

  it("EndorsementMovedToAnotherRecord: a tag copied onto another ticket's or member's row does not verify", () => {
    const agent = Identity.generate();
    const honest = ticket({ team: 'a' });
    const other = ticket({ team: 'a' });
    // The honest ticket's endorsement stored under another ticket id.
    const moved = { ...honest.endorsement, subject: other.ticketId.toString('hex') };
    expect(codeOf(() => judge({ member: memberRow(agent, { team: 'a' }), evidence: evidenceFor(other, agent), ticketEndorsement: moved }))).toBe('WICKET_ERR_NOT_ENDORSED');
    // A member's endorsement as a ticket's, and another member's endorsement on this row.
    const asTicket = { ...endorsedMember(agent, { team: 'a' }), kind: 'ticket' as const, subject: honest.ticketId.toString('hex') };
    expect(codeOf(() => judge({ member: memberRow(agent, { team: 'a' }), evidence: evidenceFor(honest, agent), ticketEndorsement: asTicket }))).toBe('WICKET_ERR_NOT_ENDORSED');
    const someoneElse = Identity.generate();
    expect(codeOf(() => judge({ member: memberRow(agent, { admin: 'true' }), memberEndorsement: { ...endorsedMember(someoneElse, { admin: 'true' }), subject: agent.identifier } }))).toBe('WICKET_ERR_NOT_ENDORSED');
  });

  it("KeySwappedUnderAnEndorsement: a member row whose key is not the endorsed one gets nothing", () => {
    const agent = Identity.generate();
    const endorsement = endorsedMember(agent, { team: 'a' });
    const swapped = { ...memberRow(agent, { team: 'a' }), publicKey: Identity.generate().publicKey };
    expect(codeOf(() => judge({ member: swapped, memberEndorsement: endorsement }))).toBe('WICKET_ERR_NOT_ENDORSED');
  });

  it('ProofForAnotherKey / AnotherProject / NotTheTicketKey: the proof must bind this project, this ticket and this member', () => {
    const agent = Identity.generate();
    const t = ticket({ team: 'a' });
    const member = memberRow(agent, { team: 'a' });
    const cases = [
      evidenceFor(t, Identity.generate()),
      evidenceFor(t, agent, Identity.generate().publicKey),
      { ticketId: t.ticketId, ticketProof: Identity.generate().sign(ticketProofMessage(project.publicKey, t.ticketId, agent.publicKey)) },
      { ticketId: t.ticketId, ticketProof: Buffer.alloc(0) },
      { ticketId: t.ticketId, ticketProof: randomBytes(64) },
    ];
    for (const evidence of cases) expect(codeOf(() => judge({ member, evidence, ticketEndorsement: t.endorsement }))).toBe('WICKET_ERR_SIGNATURE_INVALID');
    expect(codeOf(() => judge({ member, evidence: { ticketId: Buffer.alloc(3), ticketProof: randomBytes(64) }, ticketEndorsement: t.endorsement }))).toBe('WICKET_ERR_ARGUMENT');
  });

  it('an expired ticket admits nobody once past the clock skew allowance; just inside it still does', () => {
    const agent = Identity.generate();
    const member = memberRow(agent, { team: 'a' });
    const stale = ticket({ team: 'a' }, { expiresAt: now - CLOCK_SKEW_MS - 1 });
    expect(codeOf(() => judge({ member, evidence: evidenceFor(stale, agent), ticketEndorsement: stale.endorsement }))).toBe('WICKET_ERR_TICKET_EXPIRED');
    const late = ticket({ team: 'a' }, { expiresAt: now - CLOCK_SKEW_MS + 1 });
    expect(judge({ member, evidence: evidenceFor(late, agent), ticketEndorsement: late.endorsement }).attributes).toEqual({ team: 'a' });
  });

  it('revoked members and rows carrying a relay attribute are refused even when endorsed', () => {
    const agent = Identity.generate();
    expect(codeOf(() => judge({ member: memberRow(agent, { team: 'a' }, now - 1), memberEndorsement: endorsedMember(agent, { team: 'a' }) }))).toBe('WICKET_ERR_REVOKED');
    const relayish = { team: 'a', 'wicket:relay': 'r1' };
    expect(codeOf(() => judge({ member: memberRow(agent, relayish), memberEndorsement: endorsedMember(agent, relayish) }))).toBe('WICKET_ERR_ARGUMENT');
  });

  it('GarbledStatement: an endorsed statement that does not parse as its kind is refused, not thrown past the rule', () => {
    const agent = Identity.generate();
    const t = ticket({ team: 'a' });
    for (const statement of ['not json', '[]', '{"ticketId":1}', JSON.stringify({ ticketId: t.ticketId.toString('hex'), ticketKey: 'x', attributes: { a: 1 }, relayNames: [], usageCount: 1, expiresAt: now })]) {
      const garbled = endorser.endorse('ticket', t.ticketId.toString('hex'), statement);
      expect(codeOf(() => judge({ member: memberRow(agent, { team: 'a' }), evidence: evidenceFor(t, agent), ticketEndorsement: garbled }))).toBe('WICKET_ERR_NOT_ENDORSED');
    }
    const garbledMember = endorser.endorse('member', agent.identifier, '{"identifier":5}');
    expect(codeOf(() => judge({ member: memberRow(agent, {}), memberEndorsement: garbledMember }))).toBe('WICKET_ERR_NOT_ENDORSED');
  });

  it('the endorser never prints its key', () => {
    expect(JSON.stringify({ endorser })).toBe('{"endorser":"[Endorser]"}');
  });
});
