import { describe, expect, it } from 'vitest';
import { Identity } from '../../protocol/identity.js';
import { decodeTicket } from '../../protocol/ticket.js';
import { RawRelayClient } from '../helpers/raw-relay-client.js';
import { relaysStoppedAfterEach, type TestRelay } from './relay-fixture.js';

// Admin requests over the relay connection, and the audit trail they and the agents leave.

const relay = relaysStoppedAfterEach();

async function adminOf(r: TestRelay): Promise<RawRelayClient> {
  const admin = await RawRelayClient.connect(r.relay.url);
  await admin.enroll(Identity.generate(), r.relay.adminTicket!.text.reveal());
  return admin;
}

describe('admin requests', () => {
  it('admin ops are refused for non-admins with WICKET_ERR_NOT_ADMIN, and the connection stays open', async () => {
    const r = await relay();
    const plain = await r.member({ admin: 'yes', inlet: 'true' });
    const ops: [string, Record<string, unknown>][] = [
      ['ticket.create', { attributes: { admin: 'true' }, relayNames: [], usageCount: 1, expiresInMs: 60_000 }],
      ['member.list', {}],
      ['member.revoke', { identifier: plain.identity!.identifier }],
      ['audit.list', {}],
    ];
    for (const [op, args] of ops) {
      const response = await plain.request(op, args);
      expect(response.error?.code).toBe('WICKET_ERR_NOT_ADMIN');
      expect(response.result).toBeUndefined();
    }
    expect(r.relay.connections.isConnected(plain.identity!.identifier)).toBe(true);
    const members = await r.relay.authority.listMembers();
    expect(members.every((m) => m.revokedAt === undefined)).toBe(true);
  });

  it('the first-start admin ticket makes an admin who can create tickets and list members', async () => {
    const r = await relay();
    expect(r.relay.firstStart).toBe(true);
    const admin = await adminOf(r);
    const created = await admin.request('ticket.create', {
      attributes: { 'openai-outlet': 'true' },
      relayNames: ['openai'],
      usageCount: 1,
      expiresInMs: 3_600_000,
    });
    const result = created.result as { ticket: string; ticketId: string; expiresAt: string };
    const ticket = decodeTicket(result.ticket);
    expect(ticket.ticketId.toString('hex')).toBe(result.ticketId);
    expect(ticket.authorityPublicKey.equals(r.relay.authority.publicKey)).toBe(true);
    expect(Date.parse(result.expiresAt)).toBe(ticket.expiresAt);

    const outlet = await RawRelayClient.connect(r.relay.url);
    await outlet.enroll(Identity.generate(), result.ticket);
    expect((await outlet.register('openai')).t).toBe('registered');

    const listed = (await admin.request('member.list')).result as { members: { identifier: string; attributes: Record<string, string>; connected: boolean; enrolledAt: string }[] };
    const byId = new Map(listed.members.map((m) => [m.identifier, m]));
    expect(byId.get(admin.identity!.identifier)).toMatchObject({ attributes: { admin: 'true' }, connected: true });
    expect(byId.get(outlet.identity!.identifier)).toMatchObject({ attributes: { 'openai-outlet': 'true', 'wicket:relays': 'openai' }, connected: true });
    await outlet.close();
    await new Promise((resolve) => setTimeout(resolve, 50));
    const after = (await admin.request('member.list')).result as { members: { identifier: string; connected: boolean }[] };
    expect(after.members.find((m) => m.identifier === outlet.identity!.identifier)?.connected).toBe(false);
  });

  it('bad admin arguments are WICKET_ERR_ARGUMENT answers, not disconnections', async () => {
    const r = await relay();
    const admin = await adminOf(r);
    const cases: [string, Record<string, unknown>][] = [
      ['ticket.create', { expiresInMs: 31 * 24 * 3_600_000 }],
      ['ticket.create', { attributes: { 'wicket:relays': 'openai' } }],
      ['ticket.create', { relayNames: ['no,commas'] }],
      ['ticket.create', { usageCount: 0 }],
      ['ticket.create', { attributes: ['not', 'an', 'object'] }],
      ['audit.list', { limit: 0 }],
    ];
    for (const [op, args] of cases) expect((await admin.request(op, args)).error?.code, `${op} ${JSON.stringify(args)}`).toBe('WICKET_ERR_ARGUMENT');
    expect(r.relay.connections.isConnected(admin.identity!.identifier)).toBe(true);
  });
});

describe('audit trail', () => {
  it('records ticket-create, enroll, connect, disconnect and revoke with identifiers and times', async () => {
    const r = await relay();
    const admin = await adminOf(r);
    const member = await r.member({ inlet: 'true' });
    const identifier = member.identity!.identifier;
    await member.close();
    await new Promise((resolve) => setTimeout(resolve, 50));
    await admin.request('member.revoke', { identifier });
    const { events } = (await admin.request('audit.list', { limit: 100 })).result as {
      events: { at: string; event: string; identifier?: string; detail?: Record<string, unknown> }[];
    };
    const about = (event: string, who: string): unknown => events.find((e) => e.event === event && e.identifier === who);
    expect(events.find((e) => e.event === 'ticket-create' && e.detail?.createdBy === 'relay')).toBeDefined();
    expect(about('enroll', admin.identity!.identifier)).toBeDefined();
    expect(about('connect', admin.identity!.identifier)).toBeDefined();
    expect(about('enroll', identifier)).toMatchObject({ detail: { kind: 'new', attributes: { inlet: 'true' } } });
    expect(about('connect', identifier)).toBeDefined();
    expect(about('disconnect', identifier)).toMatchObject({ detail: { bytesIn: expect.any(Number), bytesOut: expect.any(Number) } });
    expect(about('revoke', identifier)).toMatchObject({ detail: { revokedBy: admin.identity!.identifier } });
    for (const event of events) expect(Number.isNaN(Date.parse(event.at))).toBe(false);
    // Events come oldest first, and the trail never holds a ticket or its secret.
    const times = events.map((e) => Date.parse(e.at));
    expect([...times].sort((a, b) => a - b)).toEqual(times);
    expect(JSON.stringify(events)).not.toMatch(/wkt1_/);
  });
});
