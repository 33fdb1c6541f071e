import { chmodSync, existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Identity } from '../../protocol/identity.js';
import { TICKET_MAX_TTL_MS } from '../../protocol/limits.js';
import { decodeTicket, hashTicketSecret } from '../../protocol/ticket.js';
import { Authority, type Enrollment } from '../../relay/authority/authority.js';
import { loadAuthorityKey, loadOrCreateAuthorityKey } from '../../relay/authority/authority-key.js';
import { SqliteStore } from '../../relay/authority/sqlite-store.js';
import { startTestRelay, tempDir, testLogger, TestClock } from './relay-fixture.js';

// The authority and its store, without sockets: secrets at rest, the key file, ticket rules.

const dirs: string[] = [];
function dir(): string {
  const d = tempDir('wicket-authority-');
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function authorityIn(folder: string, clock = new TestClock()): { authority: Authority; store: SqliteStore } {
  const store = new SqliteStore(join(folder, 'authority.db'));
  const { identity } = loadOrCreateAuthorityKey(join(folder, 'authority.key'));
  const authority = new Authority({ identity, store, logger: testLogger(), now: clock.now, endpoint: { url: 'ws://127.0.0.1:7400' } });
  return { authority, store };
}

describe('ticket secrets at rest', () => {
  it('the store holds only the hash of a ticket secret, never the secret or the ticket text', async () => {
    const folder = dir();
    const { authority, store } = authorityIn(folder);
    const created = await authority.createTicket({ attributes: { inlet: 'true' }, createdBy: 'test' });
    const secret = decodeTicket(created.text.reveal()).secret;
    const files = ['authority.db', 'authority.db-wal'].map((f) => join(folder, f)).filter(existsSync);
    const bytes = Buffer.concat(files.map((f) => readFileSync(f)));
    expect(bytes.includes(hashTicketSecret(secret))).toBe(true); // the scan does see the ticket row
    expect(bytes.includes(secret.reveal())).toBe(false);
    expect(bytes.includes(Buffer.from(secret.reveal().toString('base64url')))).toBe(false);
    expect(bytes.includes(Buffer.from(secret.reveal().toString('hex')))).toBe(false);
    expect(bytes.includes(Buffer.from(created.text.reveal()))).toBe(false);
    expect(String(created.text)).toBe('[REDACTED]');
    await store.close();
  });
});

describe('authority key', () => {
  it('is created once with mode 0600, and a key readable by others is refused', () => {
    const path = join(dir(), 'authority.key');
    const first = loadOrCreateAuthorityKey(path);
    expect(first.created).toBe(true);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const second = loadOrCreateAuthorityKey(path);
    expect(second.created).toBe(false);
    expect(second.identity.identifier).toBe(first.identity.identifier);
    chmodSync(path, 0o644);
    expect(() => loadAuthorityKey(path)).toThrow(/WICKET_ERR_KEY_FILE_PERMISSIONS/);
  });

  it('a restarted relay keeps its authority and prints no new admin ticket; the first one is saved 0600', async () => {
    const folder = dir();
    const first = await startTestRelay({ dataDir: folder });
    const adminTicket = first.relay.adminTicket!.text.reveal();
    await first.stop();
    expect(readFileSync(join(folder, 'admin-ticket'), 'utf8').trim()).toBe(adminTicket);
    expect(statSync(join(folder, 'admin-ticket')).mode & 0o777).toBe(0o600);
    const again = await startTestRelay({ dataDir: folder });
    expect(again.relay.firstStart).toBe(false);
    expect(again.relay.adminTicket).toBeUndefined();
    expect(again.relay.authorityIdentifier).toBe(first.relay.authorityIdentifier);
    await again.stop();
  });
});

describe('ticket rules', () => {
  it('refuses lifetimes over the cap, reserved attributes and bad relay names', async () => {
    const { authority, store } = authorityIn(dir());
    await expect(authority.createTicket({ expiresInMs: TICKET_MAX_TTL_MS + 1, createdBy: 'test' })).rejects.toThrow(/WICKET_ERR_ARGUMENT/);
    await expect(authority.createTicket({ attributes: { 'wicket:relays': 'x' }, createdBy: 'test' })).rejects.toThrow(/reserved/);
    await expect(authority.createTicket({ relayNames: ['a,b'], createdBy: 'test' })).rejects.toThrow(/WICKET_ERR_ARGUMENT/);
    await expect(authority.createTicket({ usageCount: 0, createdBy: 'test' })).rejects.toThrow(/WICKET_ERR_ARGUMENT/);
    const ok = await authority.createTicket({ expiresInMs: TICKET_MAX_TTL_MS, createdBy: 'test' });
    expect(ok.expiresAt - authority.now()).toBeLessThanOrEqual(TICKET_MAX_TTL_MS);
    await store.close();
  });

  const redeemer = (authority: Authority, identity: Identity) => async (text: string): Promise<Enrollment> => {
    const ticket = decodeTicket(text);
    return authority.redeem({ ticketId: ticket.ticketId, secret: ticket.secret, publicKey: identity.publicKey });
  };

  it('re-enrolment cannot undo a revocation: the revoked key is refused whatever ticket it holds, and no use is spent on it', async () => {
    const { authority, store } = authorityIn(dir());
    const identity = Identity.generate();
    const redeem = redeemer(authority, identity);
    await redeem((await authority.createTicket({ attributes: { inlet: 'true' }, createdBy: 'test' })).text.reveal());
    // A multi-use ticket minted before the revocation, which the member had not used yet.
    const minted = (await authority.createTicket({ attributes: { inlet: 'true' }, usageCount: 2, createdBy: 'test' })).text.reveal();
    await authority.revoke(identity.identifier, 'test');
    await expect(redeem(minted)).rejects.toThrow(/WICKET_ERR_REVOKED/);
    // A fresh ticket does not do it either: re-joining takes a new key.
    await expect(redeem((await authority.createTicket({ attributes: { fresh: 'true' }, createdBy: 'test' })).text.reveal())).rejects.toThrow(/WICKET_ERR_REVOKED/);
    expect((await authority.getMember(identity.identifier))?.revokedAt).toBeDefined();
    await expect(authority.authenticate(identity.publicKey, Buffer.alloc(0))).rejects.toThrow(/WICKET_ERR_REVOKED/);
    // The refusals spent nothing: both uses of the minted ticket are still there for others.
    for (let i = 0; i < 2; i++) await redeemer(authority, Identity.generate())(minted);
    await expect(redeemer(authority, Identity.generate())(minted)).rejects.toThrow(/^WICKET_ERR_TICKET_USED: ticket [0-9a-f]+ was already used \(it has no uses left\); ask an admin for a new ticket$/);
    await store.close();
  });

  it('a revoked member cannot come back under a new key with a ticket it redeemed: the revoke spends what those tickets had left', async () => {
    const { authority, store } = authorityIn(dir());
    const identity = Identity.generate();
    const team = (await authority.createTicket({ attributes: { inlet: 'true' }, usageCount: 5, createdBy: 'test' })).text.reveal();
    const other = (await authority.createTicket({ attributes: { inlet: 'true' }, usageCount: 3, createdBy: 'test' })).text.reveal();
    await redeemer(authority, identity)(team);
    await redeemer(authority, Identity.generate())(other);
    const outcome = await authority.revoke(identity.identifier, 'test');
    expect(outcome).toMatchObject({ alreadyRevoked: false, ticketsSpent: 1 });
    await expect(redeemer(authority, Identity.generate())(team)).rejects.toThrow(/WICKET_ERR_TICKET_USED/);
    // A ticket it never redeemed is untouched.
    await redeemer(authority, Identity.generate())(other);
    expect((await authority.listAudit(10)).find((e) => e.event === 'revoke')?.detail).toMatchObject({ ticketsSpent: 1 });
    await store.close();
  });

  it('an admin reinstate is the only way back; it keeps the old grants, and only a revoked member can be reinstated', async () => {
    const { authority, store } = authorityIn(dir());
    const identity = Identity.generate();
    await redeemer(authority, identity)((await authority.createTicket({ attributes: { old: 'grant' }, relayNames: ['a'], createdBy: 'test' })).text.reveal());
    await expect(authority.reinstate(identity.identifier, 'test')).rejects.toThrow(/WICKET_ERR_MEMBER_NOT_REVOKED/);
    await expect(authority.reinstate(Identity.generate().identifier, 'test')).rejects.toThrow(/WICKET_ERR_MEMBER_UNKNOWN/);
    const revoked = await authority.revoke(identity.identifier, 'test');
    const reinstated = await authority.reinstate(identity.identifier, 'admin');
    expect(reinstated).toMatchObject({ kind: 'reinstate', identifier: identity.identifier, by: 'admin' });
    expect(reinstated.seq).toBeGreaterThan(revoked.event.seq);
    const member = await authority.getMember(identity.identifier);
    expect(member?.revokedAt).toBeUndefined();
    expect(member?.attributes).toEqual({ old: 'grant', 'wicket:relays': 'a' });
    expect((await store.revocationEventsAfter(0, 0)).map((e) => e.kind)).toEqual(['revoke', 'reinstate']);
    expect((await authority.listAudit(10)).map((e) => e.event)).toContain('reinstate');
    await store.close();
  });

  it('redemption is idempotent for the same key and ticket: a retry after a lost welcome spends nothing and changes nothing', async () => {
    const { authority, store } = authorityIn(dir());
    const identity = Identity.generate();
    const oneUse = (await authority.createTicket({ attributes: { inlet: 'true' }, createdBy: 'test' })).text.reveal();
    const first = await redeemer(authority, identity)(oneUse);
    const again = await redeemer(authority, identity)(oneUse);
    expect(first.kind).toBe('new');
    expect(again).toMatchObject({ kind: 'repeated', member: { identifier: identity.identifier, attributes: { inlet: 'true' } } });
    // Still one use only: another key cannot have it.
    await expect(redeemer(authority, Identity.generate())(oneUse)).rejects.toThrow(/WICKET_ERR_TICKET_USED/);
    // ... and a revoked key cannot replay its old redemption to get back in.
    await authority.revoke(identity.identifier, 'test');
    await expect(redeemer(authority, identity)(oneUse)).rejects.toThrow(/WICKET_ERR_REVOKED/);
    expect((await authority.listMembers()).length).toBe(1);
    await store.close();
  });
});
