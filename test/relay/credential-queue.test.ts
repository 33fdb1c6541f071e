import { randomBytes } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { verifyCredential } from '../../protocol/credential.js';
import { isWicketError } from '../../protocol/errors.js';
import { Identity } from '../../protocol/identity.js';
import { CREDENTIAL_ANSWER_TIMEOUT_MS, CREDENTIAL_REQUEST_KEEP_MS, CREDENTIAL_SIGNER_SWEEP_MS } from '../../protocol/limits.js';
import { ticketKeyFromSecret, ticketProofMessage } from '../../protocol/ticket.js';
import { Secret } from '../../protocol/secret.js';
import type { Authority } from '../../relay/authority/authority.js';
import { forwardingAuthority, openRelayAuthority } from '../../relay/authority/authority-role.js';
import { CredentialSigner } from '../../relay/authority/credential-signer.js';
import { PgStore } from '../../relay/authority/pg-store.js';
import { parseStoreLocation, type PostgresLocation } from '../../relay/authority/store-location.js';
import type { MemberRecord } from '../../relay/authority/store.js';
import { Endorser, ticketStatementText, type MemberEvidence } from '../../relay/authority/endorsement.js';
import { postgresBinaries, startPostgresCluster, type PostgresCluster } from '../../scripts/lib/postgres-cluster.js';
import { tempDir, testLogger } from './relay-fixture.js';

// The credential queue (issue 14, "signing key only where credentials are issued"), in process on
// a real PostgreSQL 15: a forwarding authority (public key only) gets credentials from a
// CredentialSigner through the store; the signer signs only for live members with their current
// attributes, or for a relay's own key, and refuses every other row, whoever wrote it.

const binaries = postgresBinaries();
if ('skip' in binaries) console.log(`credential queue tests skipped: ${binaries.skip}`);

/** Slack over a bound for scheduling on a shared 2-core machine. */
const SLACK_MS = 1_500;

describe.skipIf('skip' in binaries)('the credential queue on PostgreSQL', () => {
  let cluster: PostgresCluster;
  const closers: (() => Promise<void>)[] = [];
  beforeAll(async () => {
    cluster = await startPostgresCluster();
  }, 90_000);
  afterAll(async () => {
    await cluster?.stop();
  });
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });

  /** A project on a fresh database: the key holder's store, a forwarding authority on a second connection, and a running signer. */
  async function project(o: { signer?: boolean } = {}) {
    const database = await cluster.createDatabase('queue');
    const location = parseStoreLocation(cluster.url(database)) as PostgresLocation;
    const key = Identity.generate();
    const { store: signing } = await PgStore.open(location, { authority: key.identifier, publicKey: key.publicKey, now: Date.now(), logger: testLogger() });
    closers.push(() => signing.close());
    const { store: forwardingStore } = await PgStore.open(location, { now: Date.now(), logger: testLogger() });
    closers.push(() => forwardingStore.close());
    const forwarding = forwardingAuthority(forwardingStore, (await forwardingStore.project())!, location.shown, { now: Date.now, logger: testLogger() });
    const startSigner = () => {
      const signer = new CredentialSigner({ identity: key, queue: signing.credentials, logger: testLogger(), now: Date.now });
      signer.start();
      closers.push(() => signer.stop());
      return signer;
    };
    const signer = o.signer === false ? undefined : startSigner();
    /**
     * Enrolls a member straight through the store with `attributes` from a fresh ticket the signer
     * endorsed, as a relay does, and returns it with the redemption's evidence for the signer.
     */
    const enrollWithEvidence = async (identity: Identity, attributes: Record<string, string>): Promise<{ member: MemberRecord; evidence: MemberEvidence }> => {
      const ticketId = randomBytes(16);
      const ticketSecretKey = ticketKeyFromSecret(new Secret(randomBytes(32)));
      const ticketKey = ticketSecretKey.publicKey;
      const expiresAt = Date.now() + 60_000;
      const statement = ticketStatementText({ ticketId: ticketId.toString('hex'), ticketKey: ticketKey.toString('hex'), attributes, relayNames: [], usageCount: 1, expiresAt });
      await signing.endorsements.write(new Endorser(key).endorse('ticket', ticketId.toString('hex'), statement));
      await signing.insertTicket({ ticketId, ticketKey, attributes, relayNames: [], usageCount: 1, createdAt: Date.now(), expiresAt, createdBy: 'test' });
      const outcome = await signing.redeemTicket({ ticketId, ticketKey, identifier: identity.identifier, publicKey: identity.publicKey, now: Date.now() });
      if (!outcome.ok) throw new Error(outcome.code);
      return { member: outcome.member, evidence: { ticketId, ticketProof: ticketSecretKey.sign(ticketProofMessage(key.publicKey, ticketId, identity.publicKey)) } };
    };
    const enroll = async (identity: Identity, attributes: Record<string, string>): Promise<MemberRecord> => (await enrollWithEvidence(identity, attributes)).member;
    return { database, key, signing, forwarding, signer, startSigner, enroll, enrollWithEvidence };
  }

  const verified = (authority: Authority, encoded: Buffer, subject: string) => verifyCredential(encoded, { authorityPublicKey: authority.publicKey, subject: subject as never, now: Date.now() });

  it("a forwarding authority's credential is signed by the signer with what the member's endorsed tickets granted", async () => {
    const p = await project();
    expect(p.forwarding.role).toBe('forwarding');
    expect(p.forwarding.identifier).toBe(p.key.identifier);
    const agent = Identity.generate();
    const { member, evidence } = await p.enrollWithEvidence(agent, { team: 'a' });
    // Without the redemption's evidence the signer has nothing to admit the member on.
    expect(((await p.forwarding.credentialFor(member).catch((err: unknown) => err)) as { code?: string }).code).toBe('WICKET_ERR_NOT_ENDORSED');
    const first = await p.forwarding.credentialFor(member, evidence);
    expect(verified(p.forwarding, first.encoded, agent.identifier).attributes).toEqual({ team: 'a' });
    // Endorsed now: a refresh needs no evidence.
    expect(verified(p.forwarding, (await p.forwarding.credentialFor(member)).encoded, agent.identifier).attributes).toEqual({ team: 'a' });
    // Another ticket merged into the member: the forwarding relay's stale record does not matter.
    const merged = await p.enrollWithEvidence(agent, { role: 'inlet' });
    const second = await p.forwarding.credentialFor(member, merged.evidence);
    expect(verified(p.forwarding, second.encoded, agent.identifier).attributes).toEqual({ team: 'a', role: 'inlet' });
    expect((await cluster.sql(p.database, 'SELECT count(*) FROM credential_requests')).trim()).toBe('0');
  });

  it("relayCredential: a relay's own key gets {wicket:relay: id}, subject its identifier; bad keys and ids are refused before any row is written", async () => {
    const p = await project();
    const relayKey = Identity.generate();
    const credential = await p.forwarding.relayCredential(relayKey.publicKey, 'a1b2c3d4e5f60718');
    expect(verified(p.forwarding, credential.encoded, relayKey.identifier).attributes).toEqual({ 'wicket:relay': 'a1b2c3d4e5f60718' });
    const refused = await Promise.all([
      p.forwarding.relayCredential(Buffer.alloc(31), 'r1').catch((err: unknown) => err),
      p.forwarding.relayCredential(relayKey.publicKey, 'not a relay id').catch((err: unknown) => err),
      p.forwarding.relayCredential(relayKey.publicKey, 'x'.repeat(65)).catch((err: unknown) => err),
    ]);
    expect(refused.map((err) => (err as { code?: string }).code)).toEqual(['WICKET_ERR_KEY_INVALID', 'WICKET_ERR_ARGUMENT', 'WICKET_ERR_ARGUMENT']);
    // The signing side's own API gives the same credential shape.
    const { Authority: SigningAuthority } = await import('../../relay/authority/authority.js');
    const local = new SigningAuthority({ identity: p.key, store: p.signing, logger: testLogger() });
    expect(local.role).toBe('signing');
    expect(verified(local, (await local.relayCredential(relayKey.publicKey, 'r2')).encoded, relayKey.identifier).attributes).toEqual({ 'wicket:relay': 'r2' });
  });

  it('a revoked member is refused by the signer, not signed: WICKET_ERR_REVOKED reaches the forwarding relay', async () => {
    const p = await project();
    const agent = Identity.generate();
    const member = await p.enroll(agent, {});
    await p.signing.revokeMember(agent.identifier, Date.now(), 'test');
    const refused = await p.forwarding.credentialFor(member).catch((err: unknown) => err);
    expect(isWicketError(refused, 'WICKET_ERR_REVOKED')).toBe(true);
    expect(p.signer!.counts).toEqual({ signed: 0, endorsed: 0, refused: 1 });
  });

  it('hostile rows written straight into the queue are refused with a code and never signed; a well-formed relay row in the same sweep is', async () => {
    const p = await project({ signer: false });
    const agent = Identity.generate();
    await p.enroll(agent, { admin: 'true' });
    const revoked = Identity.generate();
    await p.enroll(revoked, {});
    // A member row carrying a relay's attribute, as only a write past the authority can make one.
    const posing = Identity.generate();
    await p.enroll(posing, {});
    await cluster.sql(p.database, `UPDATE members SET attributes = '{"wicket:relay":"r9"}' WHERE identifier = '${posing.identifier}'`);
    await p.signing.revokeMember(revoked.identifier, Date.now(), 'test');
    const relayKey = Identity.generate();
    const other = Identity.generate();
    const hex = (b: Buffer) => `'\\x${b.toString('hex')}'::bytea`;
    const rows: [string, string, string, string, string][] = [
      // kind, subject, public_key, relay_id, expected
      ['member', `'${Identity.generate().identifier}'`, 'NULL', 'NULL', 'WICKET_ERR_MEMBER_UNKNOWN'],
      ['member', `'${revoked.identifier}'`, 'NULL', 'NULL', 'WICKET_ERR_REVOKED'],
      ['member', `'not-an-identifier'`, 'NULL', 'NULL', 'WICKET_ERR_IDENTIFIER_INVALID'],
      ['member', `'${agent.identifier.toUpperCase()}'`, 'NULL', 'NULL', 'WICKET_ERR_IDENTIFIER_INVALID'],
      ['member', `'${posing.identifier}'`, 'NULL', 'NULL', 'WICKET_ERR_ARGUMENT'],
      // A live member with admin in its row, asked for with no redemption evidence: never endorsed.
      ['member', `'${agent.identifier}'`, 'NULL', 'NULL', 'WICKET_ERR_NOT_ENDORSED'],
      ['relay', `'${relayKey.identifier}'`, hex(other.publicKey), `'r1'`, 'WICKET_ERR_CREDENTIAL_SUBJECT'],
      ['relay', `'${relayKey.identifier}'`, hex(Buffer.alloc(5)), `'r1'`, 'WICKET_ERR_KEY_INVALID'],
      ['relay', `'${relayKey.identifier}'`, 'NULL', `'r1'`, 'WICKET_ERR_KEY_INVALID'],
      ['relay', `'${relayKey.identifier}'`, hex(relayKey.publicKey), `'${'z'.repeat(300)}'`, 'WICKET_ERR_ARGUMENT'],
      ['relay', `'${relayKey.identifier}'`, hex(relayKey.publicKey), `'bad id; DROP TABLE members'`, 'WICKET_ERR_ARGUMENT'],
      // An agent's key asked for as a relay: a member gets no relay credential.
      ['relay', `'${agent.identifier}'`, hex(agent.publicKey), `'r1'`, 'WICKET_ERR_ARGUMENT'],
      ['relay', `'${relayKey.identifier}'`, hex(relayKey.publicKey), `'good-relay'`, 'signed'],
    ];
    const values = rows.map(([kind, subject, key, relayId]) => `('${kind}', ${subject}, ${key}, ${relayId}, 'hostile', ${Date.now()})`).join(', ');
    await cluster.sql(p.database, `INSERT INTO credential_requests (kind, subject, public_key, relay_id, requested_by, requested_at) VALUES ${values}`);
    // A kind the schema does not know never becomes a row at all.
    await expect(cluster.sql(p.database, `INSERT INTO credential_requests (kind, subject, requested_by, requested_at) VALUES ('admin', '${agent.identifier}', 'hostile', ${Date.now()})`)).rejects.toThrow(/credential_requests_kind_check/);

    // No NOTIFY was sent for these rows: the signer's periodic sweep is what finds them.
    const started = Date.now();
    const signer = p.startSigner();
    const answered = async () => (await cluster.sql(p.database, 'SELECT count(*) FROM credential_requests WHERE answered_at IS NULL')).trim() === '0';
    while (!(await answered()) && Date.now() - started < CREDENTIAL_SIGNER_SWEEP_MS + SLACK_MS) await new Promise((r) => setTimeout(r, 50));
    expect(await answered()).toBe(true);
    const outcome = (await cluster.sql(p.database, "SELECT coalesce(refused, 'signed'), credential IS NULL, encode(credential, 'hex') FROM credential_requests ORDER BY request_id")).trim().split('\n').map((line) => line.split('|'));
    expect(outcome.map(([code]) => code)).toEqual(rows.map((row) => row[4]));
    expect(outcome.slice(0, -1).every(([, isNull]) => isNull === 't')).toBe(true);
    const good = verifyCredential(Buffer.from(outcome.at(-1)![2]!, 'hex'), { authorityPublicKey: p.key.publicKey, subject: relayKey.identifier, now: Date.now() });
    expect(good.attributes).toEqual({ 'wicket:relay': 'good-relay' });
    expect(signer.counts).toEqual({ signed: 1, endorsed: 0, refused: rows.length - 1 });
  });

  it(`no signer: the forwarding authority gives up with WICKET_ERR_AUTHORITY_UNAVAILABLE after CREDENTIAL_ANSWER_TIMEOUT_MS (${CREDENTIAL_ANSWER_TIMEOUT_MS} ms) and deletes its request`, async () => {
    const p = await project({ signer: false });
    const member = await p.enroll(Identity.generate(), {});
    const started = Date.now();
    const refused = await p.forwarding.credentialFor(member).catch((err: unknown) => err);
    const tookMs = Date.now() - started;
    expect(isWicketError(refused, 'WICKET_ERR_AUTHORITY_UNAVAILABLE')).toBe(true);
    expect((refused as Error).message).toMatch(/relay authority/);
    expect(tookMs).toBeGreaterThanOrEqual(CREDENTIAL_ANSWER_TIMEOUT_MS - 50);
    expect(tookMs).toBeLessThan(CREDENTIAL_ANSWER_TIMEOUT_MS + SLACK_MS);
    // Deleted behind the refusal (asynchronously): a signer that comes later signs nothing for nobody.
    const deadline = Date.now() + 2_000;
    let left = '';
    while ((left = (await cluster.sql(p.database, 'SELECT count(*) FROM credential_requests')).trim()) !== '0' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(left).toBe('0');
  });

  it('a request nobody can still be waiting for (older than CREDENTIAL_REQUEST_KEEP_MS by the store\'s clock) is deleted by the sweep, not signed', async () => {
    const p = await project({ signer: false });
    const member = Identity.generate();
    await p.enroll(member, {});
    const old = Date.now() - CREDENTIAL_REQUEST_KEEP_MS - 5_000;
    await cluster.sql(p.database, `INSERT INTO credential_requests (kind, subject, requested_by, requested_at) VALUES ('member', '${member.identifier}', 'gone', ${old})`);
    const signer = p.startSigner();
    const started = Date.now();
    while ((await cluster.sql(p.database, 'SELECT count(*) FROM credential_requests')).trim() !== '0' && Date.now() - started < CREDENTIAL_SIGNER_SWEEP_MS + SLACK_MS) await new Promise((r) => setTimeout(r, 50));
    expect((await cluster.sql(p.database, 'SELECT count(*) FROM credential_requests')).trim()).toBe('0');
    expect(signer.counts).toEqual({ signed: 0, endorsed: 0, refused: 0 });
  });

  it('two relays without a key starting at once on an empty store: one makes the key and signs, the other forwards and keeps no key', async () => {
    const location = parseStoreLocation(cluster.url(await cluster.createDatabase('race'))) as PostgresLocation;
    const dirs = [tempDir('wicket-race-'), tempDir('wicket-race-')];
    const opened = await Promise.all(
      dirs.map((dir) => openRelayAuthority({ dataDirKeyFile: join(dir, 'authority.key'), sqlitePath: join(dir, 'authority.db'), location, now: Date.now, logger: testLogger() })),
    );
    for (const o of opened) closers.push(() => o.close());
    expect(opened.map((o) => o.role).sort()).toEqual(['forwarding', 'signing']);
    expect(opened.map((o) => o.initialized).sort()).toEqual([false, true]);
    expect(dirs.map((dir) => existsSync(join(dir, 'authority.key')))).toEqual(opened.map((o) => o.role === 'signing'));
    expect(opened[0]!.authority.identifier).toBe(opened[1]!.authority.identifier);
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('two signers on one queue: 40 concurrent requests are each signed exactly once', async () => {
    const p = await project();
    const second = p.startSigner();
    const enrolled = await Promise.all(Array.from({ length: 40 }, () => p.enrollWithEvidence(Identity.generate(), { n: 'x' })));
    const credentials = await Promise.all(enrolled.map((e) => p.forwarding.credentialFor(e.member, e.evidence)));
    credentials.forEach((c, i) => expect(c.subject).toBe(enrolled[i]!.member.identifier));
    expect(p.signer!.counts.signed + second.counts.signed).toBe(40);
  });

  it("a ticket endorsement is insert-only: a signer whose read missed another's (it judged before that one committed) refuses the grant and replaces nothing; a member's is still replaced", async () => {
    const p = await project({ signer: false });
    const endorser = new Endorser(p.key);
    const ticketId = randomBytes(16);
    const first = endorser.endorse('ticket', ticketId.toString('hex'), '{"first":true}');
    const grant = { ticketId, statement: '{}', signature: Buffer.alloc(64) };
    const id = await p.signing.credentials.request({ kind: 'ticket', subject: p.key.identifier, grant, requestedBy: 'test' });
    const heard: string[] = [];
    // A decision made on a read without the other signer's endorsement, which commits before this write.
    await p.signing.endorsements.write(first);
    const answered = await p.signing.credentials.answerPending(() => ({ ticketExpiresAt: Date.now() + 60_000, endorse: endorser.endorse('ticket', ticketId.toString('hex'), '{"second":true}') }), {
      now: Date.now(),
      keepMs: CREDENTIAL_REQUEST_KEEP_MS,
      limit: 10,
      answered: (_request, answer) => heard.push('refused' in answer ? answer.refused : 'endorsed'),
    });
    expect(answered).toBe(1);
    expect(await p.signing.credentials.answerOf(id)).toEqual({ refused: 'WICKET_ERR_GRANT_INVALID' });
    expect(heard).toEqual(['WICKET_ERR_GRANT_INVALID']);
    expect((await p.signing.endorsements.read('ticket', ticketId.toString('hex')))?.statement).toBe('{"first":true}');
    expect(await p.signing.endorsements.writeNew(first)).toBe(false);
    // Members are endorsed again when what they hold changes: that write still replaces.
    const member = Identity.generate();
    await p.signing.endorsements.write(endorser.endorse('member', member.identifier, '{"old":true}'));
    const memberId = await p.signing.credentials.request({ kind: 'member', subject: member.identifier, requestedBy: 'test' });
    await p.signing.credentials.answerPending(() => ({ credential: Buffer.from('c'), endorse: endorser.endorse('member', member.identifier, '{"new":true}') }), { now: Date.now(), keepMs: CREDENTIAL_REQUEST_KEEP_MS, limit: 10 });
    expect(await p.signing.credentials.answerOf(memberId)).toEqual({ credential: Buffer.from('c') });
    expect((await p.signing.endorsements.read('member', member.identifier))?.statement).toBe('{"new":true}');
  });
});
