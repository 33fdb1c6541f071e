import { describe, expect, it } from 'vitest';
import { isWicketError } from '../../protocol/errors.js';
import { Identity } from '../../protocol/identity.js';
import { TICKET_GRANT_FRESHNESS_MS } from '../../protocol/limits.js';
import { issueCredential } from '../../protocol/credential.js';
import {
  TICKET_GRANT_DOMAIN,
  checkGrantFresh,
  parseTicketGrant,
  signTicketGrant,
  ticketGrantMessage,
  ticketGrantText,
  verifyTicketGrant,
  type TicketGrant,
} from '../../protocol/ticket-grant.js';
import { TICKET_PROOF_DOMAIN, ticketProofMessage } from '../../protocol/ticket.js';

// The ticket grant (protocol/ticket-grant.ts): an admin's signature over what a ticket it made
// allows, bound to one project. Each test bends one thing and expects the grant to fail.

const admin = Identity.generate();
const authority = Identity.generate().publicKey;
const grant: TicketGrant = {
  ticketId: 'ab'.repeat(16),
  ticketKey: 'cd'.repeat(32),
  attributes: { zeta: '1', alpha: 'true' },
  relayNames: ['openai', 'db'],
  usageCount: 3,
  expiresInMs: 3_600_000,
  signedAt: 1_700_000_000_000,
};

function code(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    return isWicketError(err) ? err.code : 'not a wicket error';
  }
}

describe('ticket grant statement', () => {
  it('is canonical: fixed key order, attributes sorted, names as given; the same facts give the same text', () => {
    const text = ticketGrantText(grant);
    expect(text).toBe(
      '{"ticketId":"' + 'ab'.repeat(16) + '","ticketKey":"' + 'cd'.repeat(32) + '","attributes":{"alpha":"true","zeta":"1"},"relayNames":["openai","db"],"usageCount":3,"expiresInMs":3600000,"signedAt":1700000000000}',
    );
    expect(ticketGrantText({ ...grant, attributes: { alpha: 'true', zeta: '1' } })).toBe(text);
    expect(parseTicketGrant(text)).toEqual({ ...grant, attributes: { alpha: 'true', zeta: '1' } });
  });

  it('a stored text that is not the canonical one is refused (extra key, other order, spacing, not JSON)', () => {
    const text = ticketGrantText(grant);
    const bent = [
      text.replace('{"ticketId"', '{ "ticketId"'),
      JSON.stringify({ ...JSON.parse(text), extra: 1 }),
      JSON.stringify({ ticketKey: grant.ticketKey, ...JSON.parse(text) }),
      text.replace('"attributes":{"alpha":"true","zeta":"1"}', '"attributes":{"zeta":"1","alpha":"true"}'),
      text.slice(0, -1),
      'x'.repeat(70_000),
      42,
    ];
    for (const b of bent) expect(code(() => parseTicketGrant(b)), String(b).slice(0, 80)).toBe('WICKET_ERR_GRANT_INVALID');
  });

  it('refuses fields out of shape: ids and keys not lowercase hex of their length, counts not integers', () => {
    const cases: Partial<Record<keyof TicketGrant, unknown>>[] = [
      { ticketId: 'ab'.repeat(15) },
      { ticketId: 'AB'.repeat(16) },
      { ticketKey: 'cd'.repeat(31) },
      { ticketKey: 'zz'.repeat(32) },
      { attributes: { a: 1 } },
      { relayNames: 'openai' },
      { usageCount: 1.5 },
      { expiresInMs: -1 },
      { signedAt: '1700000000000' },
    ];
    for (const bent of cases) expect(code(() => ticketGrantText({ ...grant, ...bent } as TicketGrant)), JSON.stringify(bent)).toBe('WICKET_ERR_GRANT_INVALID');
  });

  it('refuses attribute names a sorted object cannot hold (only digits, __proto__) with WICKET_ERR_ARGUMENT, whether signed or read back', () => {
    // An object lists "9" before "10" before "-" whatever the sort says; "__proto__" assigned is dropped.
    const digitsFirst = { '10': 'a', '9': 'b', '-': 'c' };
    expect(code(() => signTicketGrant(admin, authority, { ...grant, attributes: digitsFirst }))).toBe('WICKET_ERR_ARGUMENT');
    expect(code(() => signTicketGrant(admin, authority, { ...grant, attributes: { '0': 'x' } }))).toBe('WICKET_ERR_ARGUMENT');
    const proto = JSON.parse('{"__proto__":"x","a":"true"}') as Record<string, string>;
    expect(Object.keys(proto)).toContain('__proto__'); // JSON.parse keeps it as an own key
    expect(code(() => signTicketGrant(admin, authority, { ...grant, attributes: proto }))).toBe('WICKET_ERR_ARGUMENT');
    // A stored text in the order an object would write it is refused too, not taken as canonical.
    const text = ticketGrantText(grant).replace('{"alpha":"true","zeta":"1"}', '{"9":"b","10":"a","-":"c"}');
    expect(code(() => parseTicketGrant(text))).toBe('WICKET_ERR_ARGUMENT');
    expect(code(() => parseTicketGrant(ticketGrantText(grant).replace('{"alpha":"true","zeta":"1"}', '{"__proto__":"x"}')))).toBe('WICKET_ERR_ARGUMENT');
    // Digits among other characters are ordinary names, sorted as text.
    expect(ticketGrantText({ ...grant, attributes: { v2: 'x', '-9': 'y', '9a': 'z' } })).toContain('"attributes":{"-9":"y","9a":"z","v2":"x"}');
  });
});

describe('ticket grant signature', () => {
  const { statement, signature } = signTicketGrant(admin, authority, grant);

  it('verifies under the admin key for the project it names', () => {
    expect(verifyTicketGrant({ adminPublicKey: admin.publicKey, authorityPublicKey: authority, statement, signature })).toBe(true);
    expect(ticketGrantMessage(authority, statement).subarray(0, TICKET_GRANT_DOMAIN.length)).toEqual(TICKET_GRANT_DOMAIN);
  });

  it('fails under another project, another admin, or with any field changed after signing', () => {
    expect(verifyTicketGrant({ adminPublicKey: admin.publicKey, authorityPublicKey: Identity.generate().publicKey, statement, signature })).toBe(false);
    expect(verifyTicketGrant({ adminPublicKey: Identity.generate().publicKey, authorityPublicKey: authority, statement, signature })).toBe(false);
    const changes: Partial<TicketGrant>[] = [
      { attributes: { ...grant.attributes, admin: 'true' } },
      { relayNames: ['openai'] },
      { usageCount: 4 },
      { expiresInMs: grant.expiresInMs + 1 },
      { signedAt: grant.signedAt + 1 },
      { ticketId: 'ac'.repeat(16) },
      { ticketKey: 'ce'.repeat(32) },
    ];
    for (const change of changes) {
      expect(verifyTicketGrant({ adminPublicKey: admin.publicKey, authorityPublicKey: authority, statement: ticketGrantText({ ...grant, ...change }), signature }), JSON.stringify(change)).toBe(false);
    }
    const flipped = Buffer.from(signature);
    flipped[10]! ^= 1;
    expect(verifyTicketGrant({ adminPublicKey: admin.publicKey, authorityPublicKey: authority, statement, signature: flipped })).toBe(false);
  });

  it('is domain separated: the same key signing the same bytes for another purpose makes no grant, nor the other way round', () => {
    // A signature over the statement without the domain (or under the ticket proof's domain) is not a grant.
    const bare = admin.sign(Buffer.concat([authority, Buffer.from(statement)]));
    expect(verifyTicketGrant({ adminPublicKey: admin.publicKey, authorityPublicKey: authority, statement, signature: bare })).toBe(false);
    const proofDomain = admin.sign(Buffer.concat([TICKET_PROOF_DOMAIN, authority, Buffer.from(statement)]));
    expect(verifyTicketGrant({ adminPublicKey: admin.publicKey, authorityPublicKey: authority, statement, signature: proofDomain })).toBe(false);
    // A grant's signature is not a ticket proof, and a credential's bytes are not a grant.
    expect(admin.verify(ticketProofMessage(authority, Buffer.alloc(16), admin.publicKey), signature)).toBe(false);
    const credential = issueCredential(Identity.fromSeed(admin.exportSeed()), { subject: admin.identifier, attributes: {}, issuedAt: 0, ttlMs: 1 });
    expect(verifyTicketGrant({ adminPublicKey: admin.publicKey, authorityPublicKey: authority, statement: credential.encoded.toString('latin1'), signature })).toBe(false);
  });

  it('never throws on hostile inputs, it says false', () => {
    for (const bad of [undefined, null, 'x', Buffer.alloc(31), Buffer.alloc(64)]) {
      expect(verifyTicketGrant({ adminPublicKey: bad as Buffer, authorityPublicKey: authority, statement, signature })).toBe(false);
      expect(verifyTicketGrant({ adminPublicKey: admin.publicKey, authorityPublicKey: bad as Buffer, statement, signature })).toBe(false);
      expect(verifyTicketGrant({ adminPublicKey: admin.publicKey, authorityPublicKey: authority, statement, signature: bad as Buffer })).toBe(false);
    }
  });

  it(`is fresh within ${TICKET_GRANT_FRESHNESS_MS / 60_000} minutes either way of the judging clock`, () => {
    expect(code(() => checkGrantFresh(grant, grant.signedAt + TICKET_GRANT_FRESHNESS_MS, 'test'))).toBeUndefined();
    expect(code(() => checkGrantFresh(grant, grant.signedAt - TICKET_GRANT_FRESHNESS_MS, 'test'))).toBeUndefined();
    expect(code(() => checkGrantFresh(grant, grant.signedAt + TICKET_GRANT_FRESHNESS_MS + 1, 'test'))).toBe('WICKET_ERR_GRANT_INVALID');
    expect(code(() => checkGrantFresh(grant, grant.signedAt - TICKET_GRANT_FRESHNESS_MS - 1, 'test'))).toBe('WICKET_ERR_GRANT_INVALID');
    expect(code(() => checkGrantFresh({ ...grant, signedAt: Number.MAX_SAFE_INTEGER }, grant.signedAt, 'test'))).toBe('WICKET_ERR_GRANT_INVALID');
  });

  it('the statement names only public things: the ticket id and public ticket key, what it grants, and when', () => {
    expect(Object.keys(JSON.parse(statement) as object)).toEqual(['ticketId', 'ticketKey', 'attributes', 'relayNames', 'usageCount', 'expiresInMs', 'signedAt']);
  });
});
