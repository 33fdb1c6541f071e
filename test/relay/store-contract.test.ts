import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Identity, type Identifier } from '../../protocol/identity.js';
import { RELAY_LIVE_TIMEOUT_MS, TICKET_MAX_TTL_MS } from '../../protocol/limits.js';
import { Secret } from '../../protocol/secret.js';
import { decodeTicket, ticketKeyFromSecret } from '../../protocol/ticket.js';
import { signTicketGrant, type TicketGrant } from '../../protocol/ticket-grant.js';
import { Authority, type Enrollment } from '../../relay/authority/authority.js';
import { loadOrCreateAuthorityKey } from '../../relay/authority/authority-key.js';
import { PgStore } from '../../relay/authority/pg-store.js';
import { SqliteStore } from '../../relay/authority/sqlite-store.js';
import { parseStoreLocation, type PostgresLocation } from '../../relay/authority/store-location.js';
import type { AuthorityStore } from '../../relay/authority/store.js';
import { postgresBinaries, startPostgresCluster, type PostgresCluster } from '../../scripts/lib/postgres-cluster.js';
import { enrollRequest } from '../helpers/ticket-proof.js';
import { tempDir, testLogger, TestClock } from './relay-fixture.js';

// The AuthorityStore contract, run on both implementations: SQLite (one relay) and PostgreSQL
// (several relays, on a real PostgreSQL 15 started for this file). The same calls must give the
// same outcomes, whichever store is behind the authority.

const binaries = postgresBinaries();
if ('skip' in binaries) console.log(`store contract on PostgreSQL skipped: ${binaries.skip}`);
let cluster: PostgresCluster | undefined;
beforeAll(async () => {
  if ('bin' in binaries) cluster = await startPostgresCluster();
}, 90_000);
afterAll(async () => {
  await cluster?.stop();
});

const dirs: string[] = [];
const stores: AuthorityStore[] = [];
afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function dir(): string {
  const d = tempDir('wicket-contract-');
  dirs.push(d);
  return d;
}

export async function pgLocation(): Promise<PostgresLocation> {
  return parseStoreLocation(cluster!.url(await cluster!.createDatabase('contract'))) as PostgresLocation;
}

async function openPg(location: PostgresLocation, authority: Identifier): Promise<PgStore> {
  const { store } = await PgStore.open(location, { authority, now: Date.now(), logger: testLogger() });
  stores.push(store);
  return store;
}

interface StoreKind {
  readonly name: string;
  readonly skip: boolean;
  /** A fresh, empty store for the project `authority`, and a way to open it again (another connection, another relay). */
  fresh(authority: Identifier): Promise<{ store: AuthorityStore; another(): Promise<AuthorityStore> }>;
}

const KINDS: StoreKind[] = [
  {
    name: 'SQLite',
    skip: false,
    async fresh() {
      const path = join(dir(), 'authority.db');
      const open = (): AuthorityStore => {
        const store = new SqliteStore(path);
        stores.push(store);
        return store;
      };
      return { store: open(), another: async () => open() };
    },
  },
  {
    name: 'PostgreSQL',
    skip: 'skip' in binaries,
    async fresh(authority) {
      const location = await pgLocation();
      return { store: await openPg(location, authority), another: () => openPg(location, authority) };
    },
  },
];

describe.each(KINDS)('the $name store', (kind) => {
  async function authorityOn(clock = new TestClock()) {
    const { identity } = loadOrCreateAuthorityKey(join(dir(), 'authority.key'));
    const { store, another } = await kind.fresh(identity.identifier);
    const authority = new Authority({ identity, store, logger: testLogger(), now: clock.now, endpoint: { url: 'ws://127.0.0.1:7400' } });
    return { authority, store, identity, another, clock };
  }
  const redeemer = (authority: Authority, identity: Identity) => async (text: string): Promise<Enrollment> => {
    const ticket = decodeTicket(text);
    return authority.redeem(enrollRequest(ticket, identity));
  };
  const ticketText = async (authority: Authority, more: Parameters<Authority['createTicket']>[0] = { createdBy: 'test' }) => (await authority.createTicket(more)).text.reveal();

  it.skipIf(kind.skip)('presence: a live relay is listed (newest heartbeat first, one row per URL), one unseen for RELAY_LIVE_TIMEOUT_MS is not; tickets list this relay first, then the others', async () => {
    const { authority, store, clock } = await authorityOn();
    const t0 = clock.now();
    await store.upsertRelay({ relayId: 'old', url: 'ws://127.0.0.1:7401', lastSeen: t0 - RELAY_LIVE_TIMEOUT_MS - 1 });
    await store.upsertRelay({ relayId: 'b', url: 'wss://127.0.0.1:7402', fingerprint: Buffer.alloc(32, 2), lastSeen: t0 - 10 });
    await store.upsertRelay({ relayId: 'self', url: 'ws://127.0.0.1:7400', lastSeen: t0 - 20 });
    await store.upsertRelay({ relayId: 'self', url: 'ws://127.0.0.1:7400', lastSeen: t0 });
    expect((await store.liveRelays(t0)).map((r) => [r.relayId, r.url, r.fingerprint?.[0]])).toEqual([
      ['self', 'ws://127.0.0.1:7400', undefined],
      ['b', 'wss://127.0.0.1:7402', 2],
    ]);
    const ticket = decodeTicket(await ticketText(authority));
    expect([ticket.relayUrl, ...(ticket.otherRelays ?? []).map((r) => r.url)]).toEqual(['ws://127.0.0.1:7400', 'wss://127.0.0.1:7402']);
    expect(ticket.otherRelays?.[0]?.fingerprint).toEqual(Buffer.alloc(32, 2));
  });

  it.skipIf(kind.skip)('served names (mesh routing): served, then unserved; only the names of live relays are listed', async () => {
    const { store, clock } = await authorityOn();
    const t0 = clock.now();
    const [a, b, dead] = ['aaaaaaaaaaaaaaaa', 'bbbbbbbbbbbbbbbb', 'dddddddddddddddd'];
    await store.upsertRelay({ relayId: a, url: 'ws://127.0.0.1:7401', lastSeen: t0 });
    await store.upsertRelay({ relayId: b, url: 'ws://127.0.0.1:7402', lastSeen: t0 - 1_000 });
    await store.upsertRelay({ relayId: dead, url: 'ws://127.0.0.1:7403', lastSeen: t0 - RELAY_LIVE_TIMEOUT_MS - 1 });
    // The interface promises no order: compare sorted.
    const listed = async (now: number) => (await store.servedNames(now)).map((s) => `${s.relayId}:${s.name}`).sort();
    expect(await listed(t0)).toEqual([]);
    await store.setServedName(a, 'openai', true);
    await store.setServedName(a, 'openai', true); // twice is once
    await store.setServedName(a, 'echo', true);
    await store.setServedName(b, 'openai', true);
    await store.setServedName(dead, 'echo', true);
    expect(await listed(t0)).toEqual([`${a}:echo`, `${a}:openai`, `${b}:openai`]);
    await store.setServedName(a, 'openai', false);
    await store.setServedName(a, 'never-served', false); // unserving what was never served is no error
    expect(await listed(t0)).toEqual([`${a}:echo`, `${b}:openai`]);
    // b stops beating: its names drop out with it, and come back with its next heartbeat.
    const later = t0 + RELAY_LIVE_TIMEOUT_MS;
    await store.upsertRelay({ relayId: a, url: 'ws://127.0.0.1:7401', lastSeen: later });
    expect(await listed(later)).toEqual([`${a}:echo`]);
    await store.upsertRelay({ relayId: b, url: 'ws://127.0.0.1:7402', lastSeen: later });
    expect(await listed(later)).toEqual([`${a}:echo`, `${b}:openai`]);
    // A relay that restarts on its URL does so under a new relay id: the old id's names are not listed.
    const restarted = 'cccccccccccccccc';
    await store.upsertRelay({ relayId: restarted, url: 'ws://127.0.0.1:7401', lastSeen: later });
    expect(await listed(later)).toEqual([`${b}:openai`]);
    await store.setServedName(restarted, 'echo', true);
    expect(await listed(later)).toEqual([`${b}:openai`, `${restarted}:echo`]);
    if (kind.name === 'PostgreSQL') {
      // Several relays share this table: a write drops the rows of ids no relay row holds any more,
      // so they do not pile up (and would not come back should that id ever be recorded again).
      await store.upsertRelay({ relayId: a, url: 'ws://127.0.0.1:7404', lastSeen: later });
      expect(await listed(later)).toEqual([`${b}:openai`, `${restarted}:echo`]);
    }
  });

  it.skipIf(kind.skip)('refuses lifetimes over the cap, reserved attributes and bad relay names', async () => {
    const { authority } = await authorityOn();
    await expect(authority.createTicket({ expiresInMs: TICKET_MAX_TTL_MS + 1, createdBy: 'test' })).rejects.toThrow(/WICKET_ERR_ARGUMENT/);
    await expect(authority.createTicket({ attributes: { 'wicket:relays': 'x' }, createdBy: 'test' })).rejects.toThrow(/reserved/);
    await expect(authority.createTicket({ relayNames: ['a,b'], createdBy: 'test' })).rejects.toThrow(/WICKET_ERR_ARGUMENT/);
    await expect(authority.createTicket({ usageCount: 0, createdBy: 'test' })).rejects.toThrow(/WICKET_ERR_ARGUMENT/);
    const ok = await authority.createTicket({ expiresInMs: TICKET_MAX_TTL_MS, createdBy: 'test' });
    expect(ok.expiresAt - authority.now()).toBeLessThanOrEqual(TICKET_MAX_TTL_MS);
  });

  it.skipIf(kind.skip)('re-enrolment cannot undo a revocation: the revoked key is refused whatever ticket it holds, and no use is spent on it', async () => {
    const { authority } = await authorityOn();
    const identity = Identity.generate();
    const redeem = redeemer(authority, identity);
    await redeem(await ticketText(authority, { attributes: { inlet: 'true' }, createdBy: 'test' }));
    const minted = await ticketText(authority, { attributes: { inlet: 'true' }, usageCount: 2, createdBy: 'test' });
    await authority.revoke(identity.identifier, 'test');
    await expect(redeem(minted)).rejects.toThrow(/WICKET_ERR_REVOKED/);
    await expect(redeem(await ticketText(authority, { attributes: { fresh: 'true' }, createdBy: 'test' }))).rejects.toThrow(/WICKET_ERR_REVOKED/);
    expect((await authority.getMember(identity.identifier))?.revokedAt).toBeDefined();
    await expect(authority.authenticate(identity.publicKey, Buffer.alloc(0))).rejects.toThrow(/WICKET_ERR_REVOKED/);
    for (let i = 0; i < 2; i++) await redeemer(authority, Identity.generate())(minted);
    await expect(redeemer(authority, Identity.generate())(minted)).rejects.toThrow(/^WICKET_ERR_TICKET_USED: ticket [0-9a-f]+ was already used \(it has no uses left\); ask an admin for a new ticket$/);
  });

  it.skipIf(kind.skip)('a revoked member cannot come back under a new key with a ticket it redeemed: the revoke spends what those tickets had left', async () => {
    const { authority } = await authorityOn();
    const identity = Identity.generate();
    const team = await ticketText(authority, { attributes: { inlet: 'true' }, usageCount: 5, createdBy: 'test' });
    const other = await ticketText(authority, { attributes: { inlet: 'true' }, usageCount: 3, createdBy: 'test' });
    await redeemer(authority, identity)(team);
    await redeemer(authority, Identity.generate())(other);
    expect(await authority.revoke(identity.identifier, 'test')).toMatchObject({ alreadyRevoked: false, ticketsSpent: 1 });
    expect(await authority.revoke(identity.identifier, 'again')).toMatchObject({ alreadyRevoked: true, ticketsSpent: 0, event: { by: 'test' } });
    await expect(redeemer(authority, Identity.generate())(team)).rejects.toThrow(/WICKET_ERR_TICKET_USED/);
    await redeemer(authority, Identity.generate())(other);
    expect((await authority.listAudit(10)).find((e) => e.event === 'revoke')?.detail).toMatchObject({ ticketsSpent: 1 });
  });

  it.skipIf(kind.skip)('an admin reinstate is the only way back; it keeps the old grants, and only a revoked member can be reinstated', async () => {
    const { authority, store } = await authorityOn();
    const identity = Identity.generate();
    await redeemer(authority, identity)(await ticketText(authority, { attributes: { old: 'grant' }, relayNames: ['a'], createdBy: 'test' }));
    await expect(authority.reinstate(identity.identifier, 'test')).rejects.toThrow(/WICKET_ERR_MEMBER_NOT_REVOKED/);
    await expect(authority.reinstate(Identity.generate().identifier, 'test')).rejects.toThrow(/WICKET_ERR_MEMBER_UNKNOWN/);
    const revoked = await authority.revoke(identity.identifier, 'test');
    const reinstated = await authority.reinstate(identity.identifier, 'admin');
    expect(reinstated).toMatchObject({ kind: 'reinstate', identifier: identity.identifier, by: 'admin' });
    expect(reinstated.seq).toBeGreaterThan(revoked.event.seq);
    const member = await authority.getMember(identity.identifier);
    expect(member?.revokedAt).toBeUndefined();
    expect(member?.attributes).toEqual({ old: 'grant', 'wicket:relays': 'a' });
    expect(Object.keys(member!.attributes)).toEqual(['old', 'wicket:relays']);
    expect((await store.revocationEventsAfter(0, 0)).map((e) => e.kind)).toEqual(['revoke', 'reinstate']);
    expect(await store.revocationEventsAfter(revoked.event.seq, 0)).toEqual([reinstated]);
    expect(await store.revocationEventsAfter(0, reinstated.at + 1)).toEqual([]);
    expect(await store.lastRevocationSeq()).toBe(reinstated.seq);
    expect((await authority.listAudit(10)).map((e) => e.event)).toContain('reinstate');
  });

  it.skipIf(kind.skip)('redemption is idempotent for the same key and ticket: a retry after a lost welcome spends nothing and changes nothing', async () => {
    const { authority } = await authorityOn();
    const identity = Identity.generate();
    const oneUse = await ticketText(authority, { attributes: { inlet: 'true' }, createdBy: 'test' });
    const first = await redeemer(authority, identity)(oneUse);
    const again = await redeemer(authority, identity)(oneUse);
    expect(first.kind).toBe('new');
    expect(again).toMatchObject({ kind: 'repeated', member: { identifier: identity.identifier, attributes: { inlet: 'true' } } });
    await expect(redeemer(authority, Identity.generate())(oneUse)).rejects.toThrow(/WICKET_ERR_TICKET_USED/);
    await authority.revoke(identity.identifier, 'test');
    await expect(redeemer(authority, identity)(oneUse)).rejects.toThrow(/WICKET_ERR_REVOKED/);
    expect((await authority.listMembers()).length).toBe(1);
  });

  it.skipIf(kind.skip)('a second ticket merges into the member; wrong secrets, expired and revoked tickets are refused with their codes', async () => {
    const { authority, clock } = await authorityOn();
    const identity = Identity.generate();
    await redeemer(authority, identity)(await ticketText(authority, { attributes: { a: '1', b: '1' }, relayNames: ['x'], createdBy: 'test' }));
    const merged = await redeemer(authority, identity)(await ticketText(authority, { attributes: { b: '2' }, relayNames: ['y'], createdBy: 'test' }));
    expect(merged).toMatchObject({ kind: 'merged', member: { attributes: { a: '1', b: '2', 'wicket:relays': 'x,y' } } });
    const text = await ticketText(authority);
    const wrong = decodeTicket(text);
    wrong.secret.reveal().fill(7);
    await expect(authority.redeem(enrollRequest(wrong, Identity.generate()))).rejects.toThrow(/WICKET_ERR_TICKET_UNKNOWN/);
    const revokedTicket = await authority.createTicket({ createdBy: 'test' });
    expect((await authority.revokeTicket(Buffer.from(revokedTicket.ticketId, 'hex'), 'admin')).alreadyRevoked).toBe(false);
    expect((await authority.revokeTicket(Buffer.from(revokedTicket.ticketId, 'hex'), 'other')).ticket).toMatchObject({ revokedBy: 'admin' });
    await expect(redeemer(authority, Identity.generate())(revokedTicket.text.reveal())).rejects.toThrow(/WICKET_ERR_TICKET_REVOKED/);
    clock.advance(TICKET_MAX_TTL_MS + 1);
    await expect(redeemer(authority, Identity.generate())(text)).rejects.toThrow(/WICKET_ERR_TICKET_EXPIRED/);
  });

  it.skipIf(kind.skip)('lists outstanding tickets oldest first (all of them with all), and the newest audit events oldest first', async () => {
    const { authority, store, clock } = await authorityOn();
    const made = [];
    for (let i = 0; i < 3; i++) made.push(await authority.createTicket({ attributes: { n: String(i) }, createdBy: 'test' }));
    await authority.revokeTicket(Buffer.from(made[1]!.ticketId, 'hex'), 'test');
    expect((await authority.listTickets(false)).map((t) => t.attributes.n)).toEqual(['0', '2']);
    expect((await authority.listTickets(true)).map((t) => [t.attributes.n, t.usesLeft, t.revokedBy])).toEqual([['0', 1, undefined], ['1', 1, 'test'], ['2', 1, undefined]]);
    clock.advance(TICKET_MAX_TTL_MS);
    expect(await authority.listTickets(false)).toEqual([]);
    for (let i = 0; i < 5; i++) await store.appendAudit({ at: i, event: 'connect', identifier: `I${i}`, detail: { i } });
    expect((await store.listAudit(2)).map((e) => e.detail)).toEqual([{ i: 3 }, { i: 4 }]);
  });

  it.skipIf(kind.skip)("one admin's grant sent at once through two connections makes one ticket; the other is WICKET_ERR_GRANT_INVALID, never a store error", async () => {
    const { authority, identity, another, clock } = await authorityOn();
    const twin = new Authority({ identity, store: await another(), logger: testLogger(), now: clock.now, endpoint: { url: 'ws://127.0.0.1:7400' } });
    const admin = Identity.generate();
    const grant: TicketGrant = {
      ticketId: randomBytes(16).toString('hex'),
      ticketKey: ticketKeyFromSecret(new Secret(randomBytes(32))).publicKey.toString('hex'),
      attributes: { team: 'a' },
      relayNames: [],
      usageCount: 1,
      expiresInMs: 60_000,
      signedAt: clock.now(),
    };
    const request = { admin: { identifier: admin.identifier, publicKey: admin.publicKey }, grant, signature: signTicketGrant(admin, identity.publicKey, grant).signature };
    const outcomes = await Promise.allSettled([authority.createGrantedTicket(request), twin.createGrantedTicket(request)]);
    expect(outcomes.map((o) => (o.status === 'fulfilled' ? 'made' : (o.reason as { code?: string }).code)).sort()).toEqual(['WICKET_ERR_GRANT_INVALID', 'made']);
    expect((await authority.createGrantedTicket(request).catch((err: { code?: string }) => err.code))).toBe('WICKET_ERR_GRANT_INVALID');
    expect((await authority.listTickets(true)).map((t) => t.ticketId.toString('hex'))).toEqual([grant.ticketId]);
  });

  it.skipIf(kind.skip)('racing redemptions of a one-use ticket over separate connections: exactly one member', async () => {
    const { authority, another } = await authorityOn();
    const ticket = decodeTicket(await ticketText(authority));
    const racers = await Promise.all(Array.from({ length: 6 }, () => another()));
    const { ticketKey } = enrollRequest(ticket, Identity.generate());
    const outcomes = await Promise.all(
      racers.map((store) => {
        const identity = Identity.generate();
        return store.redeemTicket({ ticketId: ticket.ticketId, ticketKey, identifier: identity.identifier, publicKey: identity.publicKey, now: Date.now() });
      }),
    );
    expect(outcomes.map((o) => (o.ok ? 'member' : o.code)).sort()).toEqual(['WICKET_ERR_TICKET_USED', 'WICKET_ERR_TICKET_USED', 'WICKET_ERR_TICKET_USED', 'WICKET_ERR_TICKET_USED', 'WICKET_ERR_TICKET_USED', 'member']);
    expect(await authority.listMembers()).toHaveLength(1);
  });
});
