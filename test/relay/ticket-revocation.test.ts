import Database from 'better-sqlite3';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Identity } from '../../protocol/identity.js';
import { Secret } from '../../protocol/secret.js';
import { decodeTicket, ticketKeyFromSecret } from '../../protocol/ticket.js';
import { migrationTo, SCHEMA_VERSION } from '../../relay/authority/sqlite-schema.js';
import { SqliteStore } from '../../relay/authority/sqlite-store.js';
import { RawRelayClient } from '../helpers/raw-relay-client.js';
import { relaysStoppedAfterEach, type TestRelay, testTempDir } from './relay-fixture.js';

// Outstanding tickets can be listed and revoked (admin ops ticket.list / ticket.revoke, the
// store's listTickets / revokeTicket); a revoked ticket enrolls nobody; a store made before the
// schema knew about ticket revocation opens and keeps its tickets.

const relay = relaysStoppedAfterEach();

const VIEW_FIELDS = ['attributes', 'createdAt', 'createdBy', 'expiresAt', 'relayNames', 'state', 'ticketId', 'usageCount', 'usesLeft'];

async function adminOf(r: TestRelay): Promise<RawRelayClient> {
  const admin = await RawRelayClient.connect(r.relay.url);
  await admin.enroll(Identity.generate(), r.relay.adminTicket!.text.reveal());
  return admin;
}

async function enrollError(url: string, ticket: string): Promise<{ code?: string; message?: string }> {
  const client = await RawRelayClient.connect(url);
  return (await client.enroll(Identity.generate(), ticket).catch((e: unknown) => e)) as { code?: string; message?: string };
}

interface ListedTicket {
  ticketId: string;
  state: string;
  usesLeft: number;
  usageCount: number;
  attributes: Record<string, string>;
  relayNames: string[];
  revokedAt?: string;
  revokedBy?: string;
}

describe('ticket list and revoke', () => {
  it('an admin lists outstanding tickets without their secrets, revokes one, and it then enrolls nobody', async () => {
    const r = await relay();
    const admin = await adminOf(r);
    const kept = await r.ticket({ inlet: 'true' }, [], { usageCount: 2 });
    const doomed = await r.ticket({ 'openai-outlet': 'true', env: 'prod' }, ['openai'], { usageCount: 3 });
    const doomedId = decodeTicket(doomed).ticketId.toString('hex');

    const listed = (await admin.request('ticket.list', {})).result as { tickets: ListedTicket[]; omitted: number };
    // The admin ticket is spent: only the two outstanding ones.
    expect(listed.omitted).toBe(0);
    expect(listed.tickets.map((t) => t.ticketId)).toEqual([decodeTicket(kept).ticketId.toString('hex'), doomedId]);
    expect(listed.tickets[1]).toMatchObject({ state: 'outstanding', usesLeft: 3, usageCount: 3, attributes: { 'openai-outlet': 'true', env: 'prod' }, relayNames: ['openai'] });
    for (const t of listed.tickets) expect(Object.keys(t).sort()).toEqual(VIEW_FIELDS);
    const wire = JSON.stringify(listed);
    for (const text of [kept, doomed]) {
      expect(wire).not.toContain(text);
      expect(wire).not.toContain(decodeTicket(text).secret.reveal().toString('base64url'));
      expect(wire).not.toContain(decodeTicket(text).secret.reveal().toString('hex'));
    }

    const revoked = (await admin.request('ticket.revoke', { ticketId: doomedId })).result as { ticket: ListedTicket; alreadyRevoked: boolean };
    expect(revoked.alreadyRevoked).toBe(false);
    expect(revoked.ticket).toMatchObject({ ticketId: doomedId, state: 'revoked', usesLeft: 3, revokedBy: admin.identity!.identifier });
    // Idempotent: the first revocation is kept.
    const again = (await admin.request('ticket.revoke', { ticketId: doomedId.toUpperCase() })).result as { ticket: ListedTicket; alreadyRevoked: boolean };
    expect(again).toMatchObject({ alreadyRevoked: true, ticket: { revokedAt: revoked.ticket.revokedAt } });

    const refused = await enrollError(r.relay.url, doomed);
    expect(refused.code).toBe('WICKET_ERR_TICKET_REVOKED');
    expect((await r.relay.authority.listMembers()).length).toBe(1);
    // The other ticket still works, and the revocation is in the audit trail.
    await (await RawRelayClient.connect(r.relay.url)).enroll(Identity.generate(), kept);
    const audit = (await admin.request('audit.list', {})).result as { events: { event: string; detail?: Record<string, unknown> }[] };
    expect(audit.events.filter((e) => e.event === 'ticket-revoke').map((e) => e.detail?.ticketId)).toEqual([doomedId]);

    // Outstanding now: only `kept` with one use left; --all shows the used admin ticket and the revoked one.
    const outstanding = (await admin.request('ticket.list', {})).result as { tickets: ListedTicket[] };
    expect(outstanding.tickets.map((t) => [t.ticketId, t.usesLeft])).toEqual([[decodeTicket(kept).ticketId.toString('hex'), 1]]);
    const all = (await admin.request('ticket.list', { all: true })).result as { tickets: ListedTicket[] };
    expect(all.tickets.map((t) => t.state)).toEqual(['used', 'outstanding', 'revoked']);
  });

  it('expired tickets leave the outstanding list and show as expired with all', async () => {
    const r = await relay();
    const admin = await adminOf(r);
    await r.ticket({ short: 'true' }, [], { expiresInMs: 60_000 });
    r.clock.advance(61_000);
    expect(((await admin.request('ticket.list', {})).result as { tickets: unknown[] }).tickets).toEqual([]);
    const all = (await admin.request('ticket.list', { all: true })).result as { tickets: ListedTicket[] };
    expect(all.tickets.map((t) => t.state)).toEqual(['used', 'expired']);
  });

  it('hostile and mistaken requests: bad ids and flags are WICKET_ERR_ARGUMENT, an unknown id WICKET_ERR_TICKET_UNKNOWN, a non-admin WICKET_ERR_NOT_ADMIN', async () => {
    const r = await relay();
    const admin = await adminOf(r);
    const ticket = await r.ticket({ x: 'true' });
    const ticketId = decodeTicket(ticket).ticketId.toString('hex');
    for (const bad of [undefined, '', 'zz', ticketId.slice(1), `${ticketId}00`, ticketId.replace(/./, 'g'), 42, { hex: ticketId }, [ticketId], `${ticketId}\n'; DROP TABLE tickets; --`]) {
      const answer = await admin.request('ticket.revoke', bad === undefined ? {} : { ticketId: bad });
      expect(answer.error?.code, JSON.stringify(bad)).toBe('WICKET_ERR_ARGUMENT');
    }
    expect((await admin.request('ticket.list', { all: 'yes' })).error?.code).toBe('WICKET_ERR_ARGUMENT');
    const unknown = await admin.request('ticket.revoke', { ticketId: randomBytes(16).toString('hex') });
    expect(unknown.error?.code).toBe('WICKET_ERR_TICKET_UNKNOWN');

    const plain = await r.member({ inlet: 'true' });
    for (const [op, args] of [['ticket.list', {}], ['ticket.revoke', { ticketId }]] as const) {
      expect((await plain.request(op, args)).error?.code, op).toBe('WICKET_ERR_NOT_ADMIN');
    }
    // Nothing was revoked by any of it, and both connections stay open.
    expect((await r.relay.authority.listTickets()).map((t) => t.ticketId.toString('hex'))).toEqual([ticketId]);
    expect(r.relay.connections.isConnected(plain.identity!.identifier)).toBe(true);
    expect(r.relay.connections.isConnected(admin.identity!.identifier)).toBe(true);
  });

  it('a list too large for one control frame keeps the newest tickets and says how many it left out', async () => {
    const r = await relay();
    const admin = await adminOf(r);
    const ids: string[] = [];
    for (let i = 0; i < 80; i++) ids.push(decodeTicket(await r.ticket({ big: `${i}`.padEnd(1_000, 'x') })).ticketId.toString('hex'));
    const answer = await admin.request('ticket.list', {});
    const listed = answer.result as { tickets: ListedTicket[]; omitted: number };
    expect(listed.omitted).toBeGreaterThan(0);
    expect(listed.tickets.length + listed.omitted).toBe(80);
    expect(listed.tickets.at(-1)!.ticketId).toBe(ids.at(-1));
    expect(listed.tickets[0]!.ticketId).toBe(ids[listed.omitted]);
  });
});

describe('an authority store from before ticket revocation (schema version 2)', () => {
  it('opens, migrates to the current version, and keeps, lists and revokes its tickets', async () => {
    const path = join(testTempDir('wicket-schema-'), 'authority.db');
    const old = new Database(path);
    for (const version of [1, 2]) old.exec(migrationTo(version));
    old.pragma('user_version = 2');
    const ticketId = randomBytes(16);
    const now = Date.now();
    old
      .prepare(
        `INSERT INTO tickets (ticket_id, secret_hash, attributes, relay_names, usage_count, uses_left, created_at, expires_at, created_by)
         VALUES (?, ?, ?, ?, 2, 2, ?, ?, 'cli')`,
      )
      .run(ticketId, randomBytes(32), JSON.stringify({ team: 'ml' }), JSON.stringify(['openai']), now - 1_000, now + 3_600_000);
    old.close();

    const store = new SqliteStore(path);
    try {
      const listed = await store.listTickets({ now, all: false });
      expect(listed).toHaveLength(1);
      expect(listed[0]).toMatchObject({ attributes: { team: 'ml' }, relayNames: ['openai'], usageCount: 2, usesLeft: 2, createdBy: 'cli' });
      expect(listed[0]!.revokedAt).toBeUndefined();
      const outcome = await store.revokeTicket(ticketId, now, 'cli');
      expect(outcome).toMatchObject({ alreadyRevoked: false, ticket: { revokedAt: now, revokedBy: 'cli' } });
      expect(await store.listTickets({ now, all: false })).toEqual([]);
      expect(await store.revokeTicket(randomBytes(16), now, 'cli')).toBeUndefined();
    } finally {
      await store.close();
    }
    const reopened = new Database(path, { readonly: true });
    expect(reopened.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    reopened.close();
  });
});

describe('an authority store from before the ticket key (schema version 3)', () => {
  it('migrates: an old ticket (a hash of its secret) stays listed but can no longer be redeemed, even with its secret; new tickets redeem', async () => {
    const path = join(testTempDir('wicket-schema-'), 'authority.db');
    const old = new Database(path);
    for (const version of [1, 2, 3]) old.exec(migrationTo(version));
    old.pragma('user_version = 3');
    const secret = new Secret(randomBytes(32));
    const ticketId = randomBytes(16);
    const now = Date.now();
    // What the relay stored before: SHA-256 of the domain and the secret.
    const secretHash = createHash('sha256').update('wicket/ticket-secret/v1\0').update(secret.reveal()).digest();
    old
      .prepare(
        `INSERT INTO tickets (ticket_id, secret_hash, attributes, relay_names, usage_count, uses_left, created_at, expires_at, created_by)
         VALUES (?, ?, '{}', '[]', 1, 1, ?, ?, 'cli')`,
      )
      .run(ticketId, secretHash, now - 1_000, now + 3_600_000);
    old.close();

    const store = new SqliteStore(path);
    try {
      expect((await store.listTickets({ now, all: false })).map((t) => t.ticketId.toString('hex'))).toEqual([ticketId.toString('hex')]);
      const member = Identity.generate();
      const redeem = (id: Buffer, ticketKey: Buffer) => store.redeemTicket({ ticketId: id, ticketKey, identifier: member.identifier, publicKey: member.publicKey, now });
      expect(await redeem(ticketId, ticketKeyFromSecret(secret).publicKey)).toEqual({ ok: false, code: 'WICKET_ERR_TICKET_UNKNOWN' });
      expect(await redeem(ticketId, secretHash)).toEqual({ ok: false, code: 'WICKET_ERR_TICKET_UNKNOWN' });
      expect(await redeem(ticketId, Buffer.alloc(0))).toEqual({ ok: false, code: 'WICKET_ERR_TICKET_UNKNOWN' });
      const fresh = { ticketId: randomBytes(16), ticketKey: ticketKeyFromSecret(new Secret(randomBytes(32))).publicKey };
      await store.insertTicket({ ...fresh, attributes: {}, relayNames: [], usageCount: 1, createdAt: now, expiresAt: now + 60_000, createdBy: 'test' });
      expect(await redeem(fresh.ticketId, fresh.ticketKey)).toMatchObject({ ok: true, kind: 'new' });
    } finally {
      await store.close();
    }
    const reopened = new Database(path, { readonly: true });
    expect(reopened.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    expect((reopened.prepare('SELECT name FROM pragma_table_info(?)').all('tickets') as { name: string }[]).map((c) => c.name)).toContain('ticket_key');
    reopened.close();
  });
});
