import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isWicketError } from '../../protocol/errors.js';
import { Identity } from '../../protocol/identity.js';
import { TICKET_GRANT_FRESHNESS_MS } from '../../protocol/limits.js';
import { Secret } from '../../protocol/secret.js';
import { signTicketGrant, type TicketGrant } from '../../protocol/ticket-grant.js';
import { decodeTicket, ticketKeyFromSecret } from '../../protocol/ticket.js';
import { prepareGrantedTicket } from '../../agent/granted-ticket.js';
import { RawRelayClient } from '../helpers/raw-relay-client.js';
import { relaysStoppedAfterEach, type TestRelay } from './relay-fixture.js';

// 'ticket.create' with a grant (protocol/ticket-grant.ts) on a relay that signs itself (SQLite: one
// relay, which always signs). The admin agent makes the ticket; the relay checks the grant against
// the connected admin's key and records the ticket; the agent writes the text with its secret. Bad
// grants and malformed arguments get clear codes and leave the connection up.

const relay = relaysStoppedAfterEach();

async function adminOf(r: TestRelay): Promise<{ client: RawRelayClient; identity: Identity }> {
  const identity = Identity.generate();
  const client = await RawRelayClient.connect(r.relay.url);
  await client.enroll(identity, r.relay.adminTicket!.text.reveal());
  return { client, identity };
}

const wish = { attributes: { 'svc-outlet': 'true' }, relayNames: ['svc'], usageCount: 2, expiresInMs: 3_600_000 };

describe("ticket.create with an admin's grant", () => {
  it('the relay records the ticket the agent made; the agent writes the text, and it enrolls with the granted attributes', async () => {
    const r = await relay();
    const { client, identity } = await adminOf(r);
    const prepared = prepareGrantedTicket(identity, r.relay.authority.publicKey, wish, Date.now());
    expect(Object.keys(prepared.args)).not.toContain('secret');
    const response = await client.request('ticket.create', prepared.args);
    expect(response.error).toBeUndefined();
    const result = response.result as Record<string, unknown>;
    expect(result.ticket).toBeUndefined(); // the relay never had a secret to write a ticket with
    const made = prepared.finish(result);
    const ticket = decodeTicket(made.text.reveal());
    expect(ticket.relayUrl).toBe(r.relay.url);
    expect(ticket.ticketId.toString('hex')).toBe(prepared.args.ticketId);
    expect(ticket.expiresAt).toBe(Date.parse(made.expiresAt));
    expect(ticketKeyFromSecret(ticket.secret).publicKey.toString('hex')).toBe(prepared.args.ticketKey);

    const outlet = await RawRelayClient.connect(r.relay.url);
    const welcome = await outlet.enroll(Identity.generate(), made.text.reveal());
    expect(welcome.t).toBe('welcome');
    expect((await outlet.register('svc')).t).toBe('registered');
    const member = await r.relay.authority.getMember(outlet.identity!.identifier);
    expect(member?.attributes).toEqual({ 'svc-outlet': 'true', 'wicket:relays': 'svc' });
    const listed = await r.relay.authority.listTickets(true);
    expect(listed.find((t) => t.ticketId.toString('hex') === prepared.args.ticketId)?.createdBy).toBe(identity.identifier);
  });

  it('a grant signed by another key, for another project, altered, stale, or replayed is refused with WICKET_ERR_GRANT_INVALID; nothing is recorded', async () => {
    const r = await relay();
    const { client, identity } = await adminOf(r);
    const authority = r.relay.authority.publicKey;
    const fresh = (): TicketGrant => ({
      ticketId: randomBytes(16).toString('hex'),
      ticketKey: ticketKeyFromSecret(new Secret(randomBytes(32))).publicKey.toString('hex'),
      attributes: { plain: 'true' },
      relayNames: [],
      usageCount: 1,
      expiresInMs: 60_000,
      signedAt: Date.now(),
    });
    const argsOf = (grant: TicketGrant, signature: Buffer) => ({ ...grant, grantSignature: signature.toString('base64url') });
    const before = (await r.relay.authority.listTickets(true)).length;
    const g1 = fresh();
    const g2 = fresh();
    const g3 = fresh();
    const g4 = { ...fresh(), signedAt: Date.now() - TICKET_GRANT_FRESHNESS_MS - 60_000 };
    const g5 = { ...fresh(), signedAt: Date.now() + TICKET_GRANT_FRESHNESS_MS + 60_000 };
    const cases: [string, Record<string, unknown>][] = [
      ['another key', argsOf(g1, signTicketGrant(Identity.generate(), authority, g1).signature)],
      ['another project', argsOf(g2, signTicketGrant(identity, Identity.generate().publicKey, g2).signature)],
      ['raised after signing', { ...argsOf(g3, signTicketGrant(identity, authority, g3).signature), attributes: { plain: 'true', admin: 'true' } }],
      ['usage raised after signing', { ...argsOf(g3, signTicketGrant(identity, authority, g3).signature), usageCount: 1000 }],
      ['stale', argsOf(g4, signTicketGrant(identity, authority, g4).signature)],
      ['from the future', argsOf(g5, signTicketGrant(identity, authority, g5).signature)],
    ];
    for (const [what, args] of cases) {
      const response = await client.request('ticket.create', args);
      expect(response.error?.code, what).toBe('WICKET_ERR_GRANT_INVALID');
    }
    expect((await r.relay.authority.listTickets(true)).length).toBe(before);
    // Control: the same admin's honest grant goes through, once.
    const good = fresh();
    const honest = argsOf(good, signTicketGrant(identity, authority, good).signature);
    expect((await client.request('ticket.create', honest)).error).toBeUndefined();
    expect((await r.relay.authority.listTickets(true)).length).toBe(before + 1);
    // A replay names a ticket id already stored: on SQLite too that is the grant's fault, not the store's.
    const replay = await client.request('ticket.create', honest);
    expect(replay.error?.code).toBe('WICKET_ERR_GRANT_INVALID');
    expect(replay.error?.message).toMatch(/already/);
    expect((await r.relay.authority.listTickets(true)).length).toBe(before + 1);
  });

  it('malformed grant arguments (missing fields, wrong lengths, non-hex, bad base64url) get WICKET_ERR_ARGUMENT and the connection stays up', async () => {
    const r = await relay();
    const { client, identity } = await adminOf(r);
    const prepared = prepareGrantedTicket(identity, r.relay.authority.publicKey, wish, Date.now());
    const good = prepared.args;
    const without = (field: string) => Object.fromEntries(Object.entries(good).filter(([key]) => key !== field));
    const cases: [string, Record<string, unknown>][] = [
      ['no ticketKey', without('ticketKey')],
      ['no ticketId', without('ticketId')],
      ['no signedAt', without('signedAt')],
      ['no grantSignature', without('grantSignature')],
      ['no usageCount', without('usageCount')],
      ['no expiresInMs', without('expiresInMs')],
      ['short ticketId', { ...good, ticketId: 'ab'.repeat(15) }],
      ['uppercase ticketId', { ...good, ticketId: String(good.ticketId).toUpperCase() }],
      ['non-hex ticketKey', { ...good, ticketKey: 'zz'.repeat(32) }],
      ['long ticketKey', { ...good, ticketKey: 'ab'.repeat(33) }],
      ['ticketKey as a number', { ...good, ticketKey: 42 }],
      ['signedAt as text', { ...good, signedAt: String(good.signedAt) }],
      ['negative signedAt', { ...good, signedAt: -1 }],
      ['short signature', { ...good, grantSignature: 'AAAA' }],
      ['padded signature', { ...good, grantSignature: `${String(good.grantSignature)}==` }],
      ['signature with a bad character', { ...good, grantSignature: `${String(good.grantSignature).slice(0, -1)}+` }],
      ['signature as an array', { ...good, grantSignature: [1, 2, 3] }],
      ['attributes not strings', { ...good, attributes: { a: 1 } }],
      ['a digits-only attribute name', { ...good, attributes: { '9': 'x' } }],
      ['a __proto__ attribute name', { ...good, attributes: JSON.parse('{"__proto__":"x"}') as unknown }],
    ];
    for (const [what, args] of cases) {
      const response = await client.request('ticket.create', args);
      expect(response.error?.code, what).toBe('WICKET_ERR_ARGUMENT');
      expect(response.error?.message ?? '', what).not.toContain(String(good.grantSignature));
    }
    // Still connected, and the untouched grant still works.
    expect(r.relay.connections.isConnected(identity.identifier)).toBe(true);
    const done = await client.request('ticket.create', good);
    expect(done.error).toBeUndefined();
    prepared.finish(done.result as Record<string, unknown>);
  });

  it('an old-style request (no grant) still gets a ticket made by the relay; in answer to a grant, the agent refuses such a ticket', async () => {
    const r = await relay();
    const { client, identity } = await adminOf(r);
    const response = await client.request('ticket.create', { attributes: { plain: 'true' } });
    const relayMade = (response.result as { ticket: string }).ticket;
    expect(decodeTicket(relayMade).relayUrl).toBe(r.relay.url);
    // Old-style too, a name no sorted statement can hold is refused (no endorsement on SQLite, same rule).
    for (const attributes of [{ '10': 'x' }, JSON.parse('{"__proto__":"x"}') as unknown]) {
      expect((await client.request('ticket.create', { attributes })).error?.code).toBe('WICKET_ERR_ARGUMENT');
    }
    // A relay that ignores the grant (older than grants, or hostile: its own URL, project or a
    // secret it knows) and answers with a ticket of its own, alongside every field an honest
    // answer carries: the agent refuses it rather than print it (cli/agent-admin.ts prints only
    // what finish returns).
    const prepared = prepareGrantedTicket(identity, r.relay.authority.publicKey, wish, Date.now());
    const honest = await client.request('ticket.create', prepared.args);
    expect(honest.error).toBeUndefined();
    const hostile = { ...(honest.result as Record<string, unknown>), ticket: relayMade };
    let refusal: unknown;
    try {
      prepared.finish(hostile);
    } catch (err) {
      refusal = err;
    }
    expect(isWicketError(refusal) && refusal.code).toBe('WICKET_ERR_RELAY_PROTOCOL');
    expect(String((refusal as Error).message)).toMatch(/older than ticket grants, or hostile.*relay ticket create/);
    expect(String((refusal as Error).message)).not.toContain(relayMade);
  });
});
