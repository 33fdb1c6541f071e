import { describe, expect, it } from 'vitest';
import { issueCredential, verifyCredential } from '../../protocol/credential.js';
import { Identity } from '../../protocol/identity.js';
import { base64url } from '../../protocol/relay-frames.js';
import type { AgentToRelay } from '../../protocol/relay-messages.js';
import { decodeTicket } from '../../protocol/ticket.js';
import { RawRelayClient } from '../helpers/raw-relay-client.js';
import { ticketEvidence } from '../helpers/ticket-proof.js';
import { relaysStoppedAfterEach } from './relay-fixture.js';

// Enrollment and authentication against a real relay on 127.0.0.1 (DESIGN.md property 4).

const relay = relaysStoppedAfterEach();

async function enrollError(url: string, ticket: string, identity = Identity.generate()): Promise<{ code: string; closeCode: number }> {
  const client = await RawRelayClient.connect(url);
  const err = (await client.enroll(identity, ticket).catch((e: unknown) => e)) as { code?: string };
  const close = await client.closed;
  return { code: err.code ?? 'no error', closeCode: close.code };
}

describe('enrollment', () => {
  it('redeems a ticket into a member whose credential carries the ticket attributes and relay names', async () => {
    const r = await relay();
    const ticket = await r.ticket({ 'openai-outlet': 'true', env: 'prod' }, ['openai', 'backup']);
    expect(decodeTicket(ticket).relayUrl).toBe(r.relay.url);
    const identity = Identity.generate();
    const client = await RawRelayClient.connect(r.relay.url);
    expect(client.authority).toBe(r.relay.authorityIdentifier);
    const welcome = await client.enroll(identity, ticket);
    expect(welcome.identifier).toBe(identity.identifier);
    const credential = verifyCredential(client.credential!, {
      authorityPublicKey: r.relay.authority.publicKey,
      subject: identity.identifier,
      now: r.clock.now(),
    });
    expect(credential.attributes).toEqual({ 'openai-outlet': 'true', env: 'prod', 'wicket:relays': 'openai,backup' });
    expect(credential.expiresAt - credential.issuedAt).toBe(10 * 60_000);
    await client.close();
  });

  it('ticket reuse refused: a one-use ticket redeemed a second time gives WICKET_ERR_TICKET_USED', async () => {
    const r = await relay();
    const ticket = await r.ticket({ inlet: 'true' });
    const first = await RawRelayClient.connect(r.relay.url);
    await first.enroll(Identity.generate(), ticket);
    expect(await enrollError(r.relay.url, ticket)).toEqual({ code: 'WICKET_ERR_TICKET_USED', closeCode: 1008 });
    await first.close();
  });

  it('a ticket with usage count 3 enrolls three identities and refuses the fourth', async () => {
    const r = await relay();
    const ticket = await r.ticket({ fleet: 'true' }, [], { usageCount: 3 });
    const clients = [];
    for (let i = 0; i < 3; i++) {
      const client = await RawRelayClient.connect(r.relay.url);
      await client.enroll(Identity.generate(), ticket);
      clients.push(client);
    }
    expect((await enrollError(r.relay.url, ticket)).code).toBe('WICKET_ERR_TICKET_USED');
    await Promise.all(clients.map((c) => c.close()));
  });

  it('expired ticket: refused with WICKET_ERR_TICKET_EXPIRED once the authority clock passes its expiry', async () => {
    const r = await relay();
    const ticket = await r.ticket({ inlet: 'true' }, [], { expiresInMs: 60_000 });
    r.clock.advance(60_001);
    expect(await enrollError(r.relay.url, ticket)).toEqual({ code: 'WICKET_ERR_TICKET_EXPIRED', closeCode: 1008 });
  });

  it('ticket of another authority: a ticket minted by another relay is WICKET_ERR_TICKET_UNKNOWN here', async () => {
    const here = await relay();
    const elsewhere = await relay();
    expect(here.relay.authorityIdentifier).not.toBe(elsewhere.relay.authorityIdentifier);
    const foreign = await elsewhere.ticket({ admin: 'true' });
    // As the ticket says (its own authority): the proof names another project.
    expect((await enrollError(here.relay.url, foreign)).code).toBe('WICKET_ERR_SIGNATURE_INVALID');
    // Proved for this relay's authority instead: the proof holds, and the store knows no such ticket.
    const client = await RawRelayClient.connect(here.relay.url);
    const identity = Identity.generate();
    const message = client.enrollMessage(identity, foreign);
    const evidence = ticketEvidence(decodeTicket(foreign), identity.publicKey, here.relay.authority.publicKey);
    client.sendControl({ ...message, ticketKey: base64url(evidence.ticketKey), ticketProof: base64url(evidence.ticketProof) } as AgentToRelay);
    expect((await client.refusal()).code).toBe('WICKET_ERR_TICKET_UNKNOWN');
  });

  it('a ticket with the right id but a guessed secret is WICKET_ERR_TICKET_UNKNOWN and stays usable', async () => {
    const r = await relay();
    const ticket = await r.ticket({ inlet: 'true' });
    const client = await RawRelayClient.connect(r.relay.url);
    const identity = Identity.generate();
    // The guessed secret's own key and a proof that verifies: only the store can tell.
    const guessed = decodeTicket(ticket);
    guessed.secret.reveal().fill(7);
    const evidence = ticketEvidence(guessed, identity.publicKey);
    client.sendControl({ ...client.enrollMessage(identity, ticket), ticketKey: base64url(evidence.ticketKey), ticketProof: base64url(evidence.ticketProof) } as AgentToRelay);
    expect((await client.refusal()).code).toBe('WICKET_ERR_TICKET_UNKNOWN');
    const again = await RawRelayClient.connect(r.relay.url);
    await again.enroll(identity, ticket);
    await again.close();
  });

  it('two racing redemptions of a one-use ticket over two connections: exactly one member', async () => {
    const r = await relay();
    const ticket = await r.ticket({ inlet: 'true' });
    const [a, b] = await Promise.all([RawRelayClient.connect(r.relay.url), RawRelayClient.connect(r.relay.url)]);
    const [ia, ib] = [Identity.generate(), Identity.generate()];
    // Both enroll frames are on the wire before either answer comes back.
    a.sendControl(a.enrollMessage(ia, ticket));
    b.sendControl(b.enrollMessage(ib, ticket));
    const answers = await Promise.all([a, b].map((c) => c.nextMatching((m) => m.t === 'welcome' || m.t === 'error')));
    const kinds = answers.map((m) => (m.t === 'error' ? m.code : m.t)).sort();
    expect(kinds).toEqual(['WICKET_ERR_TICKET_USED', 'welcome']);
    expect((await r.relay.authority.listMembers()).length).toBe(1);
    a.ws.terminate();
    b.ws.terminate();
  });

  it('a welcome lost to a relay crash: the same key redeeming the same one-use ticket again is welcomed, and nobody else can use it', async () => {
    const r = await relay();
    const ticket = await r.ticket({ inlet: 'true' });
    const identity = Identity.generate();
    // The first redemption is spent, but the agent never reads the welcome (its connection dies).
    const first = await RawRelayClient.connect(r.relay.url);
    first.sendControl(first.enrollMessage(identity, ticket));
    await first.next('welcome');
    first.ws.terminate();
    // The agent retries with the same key and ticket, as `agent enroll` does when run again.
    const retry = await RawRelayClient.connect(r.relay.url);
    const welcome = await retry.enroll(identity, ticket);
    expect(welcome.identifier).toBe(identity.identifier);
    expect((await r.relay.authority.listMembers()).length).toBe(1);
    const stranger = await RawRelayClient.connect(r.relay.url);
    stranger.sendControl(stranger.enrollMessage(Identity.generate(), ticket));
    expect((await stranger.refusal()).code).toBe('WICKET_ERR_TICKET_USED');
    retry.ws.terminate();
  });

  it('re-enrolling an existing member with a new ticket merges attributes and relay names', async () => {
    const r = await relay();
    const identity = Identity.generate();
    const first = await RawRelayClient.connect(r.relay.url);
    await first.enroll(identity, await r.ticket({ team: 'a', env: 'dev' }, ['one']));
    await first.close();
    const second = await RawRelayClient.connect(r.relay.url);
    await second.enroll(identity, await r.ticket({ env: 'prod' }, ['two']));
    const member = await r.relay.authority.getMember(identity.identifier);
    expect(member?.attributes).toEqual({ team: 'a', env: 'prod', 'wicket:relays': 'one,two' });
    await second.close();
  });
});

describe('authentication', () => {
  it('a member comes back with its credential, even an expired one (the member record is the truth)', async () => {
    const r = await relay();
    const identity = Identity.generate();
    const enrolled = await RawRelayClient.connect(r.relay.url);
    await enrolled.enroll(identity, await r.ticket({ inlet: 'true' }));
    const credential = enrolled.credential!;
    await enrolled.close();
    r.clock.advance(24 * 60 * 60_000);
    const back = await RawRelayClient.connect(r.relay.url);
    const welcome = await back.auth(identity, credential);
    expect(welcome.identifier).toBe(identity.identifier);
    const fresh = verifyCredential(back.credential!, { authorityPublicKey: r.relay.authority.publicKey, subject: identity.identifier, now: r.clock.now() });
    expect(fresh.attributes).toEqual({ inlet: 'true' });
    await back.close();
  });

  it('an identity that never enrolled is refused with WICKET_ERR_RELAY_AUTH', async () => {
    const r = await relay();
    const stranger = Identity.generate();
    // A credential the stranger signed for itself: right shape, wrong authority, and no membership.
    const selfIssued = issueCredential(stranger, { subject: stranger.identifier, attributes: { admin: 'true' }, issuedAt: Date.now(), ttlMs: 60_000 });
    const client = await RawRelayClient.connect(r.relay.url);
    client.sendControl(client.authMessage(stranger, selfIssued.encoded));
    expect(await client.refusal()).toMatchObject({ code: 'WICKET_ERR_RELAY_AUTH', close: { code: 1008 } });
  });

  it('a member presenting a credential from another authority is refused with WICKET_ERR_CREDENTIAL_ISSUER', async () => {
    const r = await relay();
    const identity = Identity.generate();
    const enrolled = await RawRelayClient.connect(r.relay.url);
    await enrolled.enroll(identity, await r.ticket());
    await enrolled.close();
    const forger = Identity.generate();
    const forged = issueCredential(forger, { subject: identity.identifier, attributes: {}, issuedAt: Date.now(), ttlMs: 60_000 });
    const client = await RawRelayClient.connect(r.relay.url);
    client.sendControl(client.authMessage(identity, forged.encoded));
    expect((await client.refusal()).code).toBe('WICKET_ERR_CREDENTIAL_ISSUER');
  });

  it("an auth replaying another connection's challenge signature is refused with WICKET_ERR_SIGNATURE_INVALID", async () => {
    const r = await relay();
    const identity = Identity.generate();
    const enrolled = await RawRelayClient.connect(r.relay.url);
    await enrolled.enroll(identity, await r.ticket());
    const replayed = enrolled.authMessage(identity, enrolled.credential!);
    const client = await RawRelayClient.connect(r.relay.url);
    client.sendControl(replayed);
    expect((await client.refusal()).code).toBe('WICKET_ERR_SIGNATURE_INVALID');
    await enrolled.close();
  });

  it('revoked identity cannot reconnect: auth is refused with WICKET_ERR_REVOKED', async () => {
    const r = await relay();
    const identity = Identity.generate();
    const enrolled = await RawRelayClient.connect(r.relay.url);
    await enrolled.enroll(identity, await r.ticket({ inlet: 'true' }));
    const credential = enrolled.credential!;
    await r.relay.revoke(identity.identifier);
    await enrolled.closed;
    const again = await RawRelayClient.connect(r.relay.url);
    again.sendControl(again.authMessage(identity, credential));
    expect(await again.refusal()).toMatchObject({ code: 'WICKET_ERR_REVOKED', close: { code: 1008, reason: 'WICKET_ERR_REVOKED' } });
  });

  it('a connection that never authenticates is dropped after the auth timeout', async () => {
    const r = await relay({ settings: { authTimeoutMs: 200 } });
    const client = await RawRelayClient.connect(r.relay.url);
    expect(await client.refusal()).toMatchObject({ code: 'WICKET_ERR_RELAY_AUTH', close: { code: 1008 } });
    expect(r.relay.connections.size).toBe(0);
  });
});
