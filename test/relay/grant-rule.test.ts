import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { codeOf } from '../helpers/error-code.js';
import { Identity } from '../../protocol/identity.js';
import { TICKET_GRANT_FRESHNESS_MS } from '../../protocol/limits.js';
import { ticketGrantMessage, ticketGrantText, type TicketGrant } from '../../protocol/ticket-grant.js';
import type { QueuedMember } from '../../relay/authority/credential-queue.js';
import { Endorser, memberStatementText, parseTicketStatement } from '../../relay/authority/endorsement.js';
import { judgeTicketGrant, type GrantFacts } from '../../relay/authority/grant-rule.js';
import { checkEndorsedExpiry } from '../../relay/authority/ticket-maker.js';

// What a signer endorses for an admin's ticket grant read off the store (grant-rule.ts), in
// process: the row may only narrow what the signer endorsed of the admin, and a grant whose
// attributes no canonical text can hold is refused. And what a forwarding relay accepts back as
// the expiry the signer fixed (ticket-maker.ts, checkEndorsedExpiry).

const now = 1_800_000_000_000;
const project = Identity.generate();
const endorser = new Endorser(project);
const admin = Identity.generate();

function grantOf(over: Partial<TicketGrant> = {}): TicketGrant {
  return { ticketId: randomBytes(16).toString('hex'), ticketKey: 'cd'.repeat(32), attributes: { team: 'a' }, relayNames: [], usageCount: 1, expiresInMs: 60_000, signedAt: now, ...over };
}

function memberRow(attributes: Record<string, string>): QueuedMember {
  return { identifier: admin.identifier, publicKey: admin.publicKey, attributes, enrolledAt: now };
}

const endorsedAs = (attributes: Record<string, string>) =>
  endorser.endorse('member', admin.identifier, memberStatementText({ identifier: admin.identifier, publicKey: admin.publicKey.toString('hex'), attributes }));

/** The facts a signer reads for a grant the admin signed, over `statement` when given (a hand-written text), else the canonical one. */
function facts(grant: TicketGrant, row: Record<string, string>, o: { statement?: string } = {}): GrantFacts {
  const statement = o.statement ?? ticketGrantText(grant);
  return {
    subject: admin.identifier,
    member: memberRow(row),
    memberEndorsement: endorsedAs({ admin: 'true' }),
    grant: { ticketId: Buffer.from(grant.ticketId, 'hex'), statement, signature: admin.sign(ticketGrantMessage(project.publicKey, statement)) },
    ticketEndorsement: undefined,
    requestedAt: now,
  };
}

const judge = (f: GrantFacts) => judgeTicketGrant(endorser, project.publicKey, f, now);

describe('the ticket grant rule of a signer on a shared store', () => {
  it('an endorsed admin whose row says admin=true gets the ticket endorsed with the expiry the signer fixes', () => {
    const grant = grantOf();
    const verdict = judge(facts(grant, { admin: 'true' }));
    expect(verdict.expiresAt).toBe(now + grant.expiresInMs);
    expect(parseTicketStatement(verdict.endorse.statement)).toMatchObject({ ticketId: grant.ticketId, attributes: { team: 'a' }, expiresAt: now + grant.expiresInMs });
  });

  it('an admin demoted in the store (endorsed with admin=true, the row no longer) is refused WICKET_ERR_NOT_ADMIN', () => {
    expect(codeOf(() => judge(facts(grantOf(), {})))).toBe('WICKET_ERR_NOT_ADMIN');
    expect(codeOf(() => judge(facts(grantOf(), { admin: 'false' })))).toBe('WICKET_ERR_NOT_ADMIN');
  });

  it('a signed grant naming attributes no sorted text can hold (only digits, __proto__) is refused WICKET_ERR_ARGUMENT, never endorsed', () => {
    const base = grantOf();
    const canonical = ticketGrantText(base);
    for (const attributes of ['{"9":"b","10":"a"}', '{"__proto__":"x"}']) {
      const statement = canonical.replace('{"team":"a"}', attributes);
      expect(codeOf(() => judge(facts(base, { admin: 'true' }, { statement }))), attributes).toBe('WICKET_ERR_ARGUMENT');
    }
  });
});

describe('the expiry a forwarding relay records from the store', () => {
  const window = { askedAt: now, answeredAt: now + 2_000, expiresInMs: 3_600_000 };

  // Relay and signer each judged signedAt within the freshness bound: their clocks may differ by twice it.
  const skew = 2 * TICKET_GRANT_FRESHNESS_MS;

  it("is accepted when a signer whose clock passed the grant's freshness could have fixed it", () => {
    for (const expiresAt of [now + 3_600_000, now + 2_000 + 3_600_000, now + 3_600_000 - skew, now + 2_000 + 3_600_000 + skew]) {
      expect(codeOf(() => checkEndorsedExpiry(expiresAt, window)), String(expiresAt)).toBe('accepted');
    }
  });

  it('is refused WICKET_ERR_NOT_ENDORSED when the answer row was changed: years later, earlier, not an integer', () => {
    for (const expiresAt of [now + 10 * 365 * 86_400_000, now + 3_600_000 - skew - 1, now + 2_000 + 3_600_000 + skew + 1, now, 0, Number.NaN, now + 3_600_000 + 0.5]) {
      expect(codeOf(() => checkEndorsedExpiry(expiresAt, window)), String(expiresAt)).toBe('WICKET_ERR_NOT_ENDORSED');
    }
  });
});
