import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeCredential } from '../../protocol/credential.js';
import { Identity } from '../../protocol/identity.js';
import { TICKET_GRANT_FRESHNESS_MS } from '../../protocol/limits.js';
import { Secret } from '../../protocol/secret.js';
import { parseTicketGrant, signTicketGrant, type TicketGrant } from '../../protocol/ticket-grant.js';
import { decodeTicket, ticketKeyFromSecret } from '../../protocol/ticket.js';
import { CREDENTIAL_REQUEST_CHANNEL } from '../../relay/authority/pg-schema.js';
import { type AgentHome, enrollAgent, type RelayProcess, runAgent, runCommand, startAuthorityProcess, startRelayProcess, stopAll, tempDir } from '../../scripts/lib/local-processes.js';
import { postgresBinaries, startPostgresCluster, type PostgresCluster } from '../../scripts/lib/postgres-cluster.js';
import { prepareGrantedTicket } from '../../agent/granted-ticket.js';
import { RawRelayClient } from '../helpers/raw-relay-client.js';

// Issue 14, tickets on a shared store without the key at hand: an admin agent connected to a
// forwarding relay (F) runs `agent ticket create`; the agent makes the ticket and signs a grant,
// F queues it, `relay authority` (the only signer) endorses it, F records it, and the agent writes
// the ticket text with its own secret. F never sees the secret (its tap, its logs, the queue row).
// A store writer's hand-written 'ticket' requests, with a grant altered, forged, stale, from an
// unknown, revoked or non-admin member, or replayed, are refused and endorse no ticket.

const binaries = postgresBinaries();
if ('skip' in binaries) console.log(`ticket grants through a forwarding relay skipped: ${binaries.skip}`);

const DB_NOW_MS = '(extract(epoch from clock_timestamp()) * 1000)::bigint';

describe.skipIf('skip' in binaries)('an admin creates tickets through a forwarding relay', () => {
  let cluster: PostgresCluster;
  let storeUrl: string;
  let keyFile: string;
  let authorityKey: Buffer;
  let forwarding: RelayProcess;
  let tapFile: string;
  let admin: AgentHome;
  let adminIdentity: Identity;
  let db: pg.Client;
  const secrets: Buffer[] = [];
  const tickets: string[] = [];

  /** A ticket made with the key from F's folder (as an operator on the signing host would). */
  async function mint(attributes: string[]): Promise<string> {
    const args = ['ticket', 'create', '--data', forwarding.dataDir, '--store', storeUrl, '--authority-key', keyFile, '--json'];
    for (const a of attributes) args.push('--attribute', a);
    const result = await runCommand('relay', args);
    if (result.code !== 0) throw new Error(`ticket create failed: ${result.stderr}`);
    return (JSON.parse(result.stdout) as { ticket: string }).ticket;
  }

  function identityOf(home: string): Identity {
    return Identity.fromSeed(new Secret(readFileSync(join(home, 'identity.key'))));
  }

  function grantOf(over: Partial<TicketGrant> = {}): TicketGrant {
    return {
      ticketId: randomBytes(16).toString('hex'),
      ticketKey: ticketKeyFromSecret(new Secret(randomBytes(32))).publicKey.toString('hex'),
      attributes: { plain: 'true' },
      relayNames: [],
      usageCount: 1,
      expiresInMs: 600_000,
      signedAt: Date.now(),
      ...over,
    };
  }

  /** What a store writer can do: queue a 'ticket' request by hand, NOTIFY, and read the signer's answer. */
  async function queueByHand(o: { subject: string; ticketId: string; statement: string; signature: Buffer; requestedAt?: number }): Promise<{ expiresAt: number | null; refused: string | null }> {
    const { rows } = await db.query<{ request_id: number }>(
      `INSERT INTO credential_requests (kind, subject, requested_by, requested_at, ticket_id, grant_statement, grant_signature)
       VALUES ('ticket', $1, 'attacker', ${o.requestedAt === undefined ? DB_NOW_MS : '$5'}, $2, $3, $4) RETURNING request_id`,
      [o.subject, Buffer.from(o.ticketId, 'hex'), o.statement, o.signature, ...(o.requestedAt === undefined ? [] : [o.requestedAt])],
    );
    const id = rows[0]!.request_id;
    await db.query('SELECT pg_notify($1, $2)', [CREDENTIAL_REQUEST_CHANNEL, String(id)]);
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      const answer = (await db.query<{ ticket_expires_at: number | null; refused: string | null }>('SELECT ticket_expires_at, refused FROM credential_requests WHERE request_id = $1 AND answered_at IS NOT NULL', [id])).rows[0];
      if (answer !== undefined) return { expiresAt: answer.ticket_expires_at === null ? null : Number(answer.ticket_expires_at), refused: answer.refused };
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`request ${id} was not answered`);
  }

  async function endorsed(ticketId: string): Promise<boolean> {
    return (await db.query("SELECT 1 FROM endorsements WHERE kind = 'ticket' AND subject = $1", [ticketId])).rowCount === 1;
  }

  beforeAll(async () => {
    cluster = await startPostgresCluster();
    storeUrl = cluster.url(await cluster.createDatabase('grants'));
    const first = await startRelayProcess({ extraArgs: ['--store', storeUrl] });
    keyFile = join(first.dataDir, 'authority.key');
    authorityKey = Identity.fromSeed(new Secret(readFileSync(keyFile))).publicKey;
    tapFile = join(tempDir('wicket-grant-tap-'), 'relay.tap');
    forwarding = await startRelayProcess({ extraArgs: ['--store', storeUrl, '--tap', tapFile] });
    // Only `relay authority` signs from here on: the relay that made the key is gone.
    await first.proc.kill('SIGTERM');
    await startAuthorityProcess({ store: storeUrl, keyFile });
    admin = await enrollAgent(forwarding, { ticket: await mint(['admin']) });
    adminIdentity = identityOf(admin.home);
    db = new pg.Client({ connectionString: storeUrl });
    await db.connect();
    // Every request row as it was written (the relay deletes it once answered).
    await db.query(`CREATE TABLE seen_requests AS SELECT * FROM credential_requests WITH NO DATA;
      CREATE FUNCTION keep_request() RETURNS trigger AS $$ BEGIN INSERT INTO seen_requests SELECT NEW.*; RETURN NEW; END $$ LANGUAGE plpgsql;
      CREATE TRIGGER keep_request AFTER INSERT ON credential_requests FOR EACH ROW EXECUTE FUNCTION keep_request();`);
  }, 120_000);

  afterAll(async () => {
    await db?.end();
    await stopAll();
    await cluster?.stop();
  });

  it('`agent ticket create` through the forwarding relay works; the ticket enrolls a new agent through it with the granted attributes; `relay ticket list` shows it', async () => {
    expect(forwarding.role).toBe('forwarding');
    const result = await runAgent(admin.home, ['ticket', 'create', '--attribute', 'svc-outlet', '--attribute', 'env=prod', '--relay', 'svc', '--usage-count', '2', '--expires-in', '30m', '--json']);
    expect(result.code, result.stderr).toBe(0);
    const made = JSON.parse(result.stdout) as { ticket: string; ticketId: string; expiresAt: string };
    tickets.push(made.ticket);
    const ticket = decodeTicket(made.ticket);
    secrets.push(Buffer.from(ticket.secret.reveal()));
    expect(ticket.relayUrl).toBe(forwarding.url);
    expect(ticket.authorityPublicKey.equals(authorityKey)).toBe(true);
    expect(ticket.ticketId.toString('hex')).toBe(made.ticketId);
    expect(Math.abs(ticket.expiresAt - (Date.now() + 30 * 60_000))).toBeLessThan(60_000);

    const agent = await enrollAgent(forwarding, { ticket: made.ticket });
    const enrollment = JSON.parse(readFileSync(join(agent.home, 'enrollment.json'), 'utf8')) as { credential: string };
    const credential = decodeCredential(Buffer.from(enrollment.credential, 'base64'));
    expect(credential.attributes).toEqual({ 'svc-outlet': 'true', env: 'prod', 'wicket:relays': 'svc' });

    const listed = await runCommand('relay', ['ticket', 'list', '--all', '--data', forwarding.dataDir, '--store', storeUrl, '--json']);
    expect(listed.code, listed.stderr).toBe(0);
    const row = (JSON.parse(listed.stdout) as { tickets: { ticketId: string; createdBy: string; usesLeft: number }[] }).tickets.find((t) => t.ticketId === made.ticketId);
    expect(row).toMatchObject({ createdBy: admin.identifier, usesLeft: 1 });
    expect(await endorsed(made.ticketId)).toBe(true);
  }, 60_000);

  it('the queue row carried the public ticket key and the grant, never the secret', async () => {
    const rows = (await db.query<Record<string, unknown>>("SELECT * FROM seen_requests WHERE kind = 'ticket' AND requested_by <> 'attacker'")).rows;
    expect(rows.length).toBe(1);
    const grant = parseTicketGrant(rows[0]!.grant_statement);
    expect(grant.ticketKey).toBe(ticketKeyFromSecret(new Secret(Buffer.from(secrets[0]!))).publicKey.toString('hex'));
    expect(rows[0]!.subject).toBe(admin.identifier);
    const everything = Buffer.from(JSON.stringify(rows));
    for (const form of [secrets[0]!.toString('hex'), secrets[0]!.toString('base64'), secrets[0]!.toString('base64url')]) expect(everything.includes(Buffer.from(form))).toBe(false);
  });

  it("a member without admin gets WICKET_ERR_NOT_ADMIN from the relay; a store writer's hand-queued grants are refused by the signer and endorse nothing", async () => {
    const plain = await enrollAgent(forwarding, { ticket: await mint(['plain']) });
    const refused = await runAgent(plain.home, ['ticket', 'create', '--attribute', 'x']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('WICKET_ERR_NOT_ADMIN');

    const revokedAdmin = await enrollAgent(forwarding, { ticket: await mint(['admin']) });
    const revoke = await runCommand('relay', ['member', 'revoke', revokedAdmin.identifier, '--data', forwarding.dataDir, '--store', storeUrl]);
    expect(revoke.code, revoke.stderr).toBe(0);
    // A member raised to admin in the store by hand: its endorsement says otherwise.
    const raised = await enrollAgent(forwarding, { ticket: await mint(['plain']) });
    await db.query('UPDATE members SET attributes = $1 WHERE identifier = $2', [JSON.stringify({ plain: 'true', admin: 'true' }), raised.identifier]);
    // An admin demoted in the store: the row may narrow what was endorsed.
    const demoted = await enrollAgent(forwarding, { ticket: await mint(['admin']) });
    await db.query('UPDATE members SET attributes = $1 WHERE identifier = $2', ['{}', demoted.identifier]);

    const signed = (who: Identity, grant: TicketGrant) => ({ subject: who.identifier, ticketId: grant.ticketId, ...signTicketGrant(who, authorityKey, grant) });
    const g = grantOf();
    const honest = signed(adminIdentity, g);
    const raisedAfter = grantOf();
    const raisedStatement = signTicketGrant(adminIdentity, authorityKey, raisedAfter);
    const stale = grantOf({ signedAt: Date.now() - TICKET_GRANT_FRESHNESS_MS - 60_000 });
    // A row older than a minute by its own stamp is pruned unanswered, so the clocks are bent forward.
    const ahead = Date.now() + TICKET_GRANT_FRESHNESS_MS + 60_000;
    const futureGrant = grantOf({ signedAt: ahead });
    const stranger = Identity.generate();
    const cases: [string, Parameters<typeof queueByHand>[0], string][] = [
      ['attributes raised after signing', { subject: adminIdentity.identifier, ticketId: raisedAfter.ticketId, statement: raisedStatement.statement.replace('{"plain":"true"}', '{"admin":"true","plain":"true"}'), signature: raisedStatement.signature }, 'WICKET_ERR_GRANT_INVALID'],
      ['a wrong signature', { ...honest, signature: signTicketGrant(stranger, authorityKey, g).signature }, 'WICKET_ERR_GRANT_INVALID'],
      ['a signature for another project', { ...honest, signature: signTicketGrant(adminIdentity, Identity.generate().publicKey, g).signature }, 'WICKET_ERR_GRANT_INVALID'],
      ['a grant naming another ticket than the row', { ...honest, ticketId: randomBytes(16).toString('hex') }, 'WICKET_ERR_GRANT_INVALID'],
      ['a stale signedAt', signed(adminIdentity, stale), 'WICKET_ERR_GRANT_INVALID'],
      ["a fresh grant in a row stamped far from it (the store's clock)", { ...signed(adminIdentity, grantOf()), requestedAt: ahead }, 'WICKET_ERR_GRANT_INVALID'],
      ["a grant from the future in a row stamped to match it (the signer's clock)", { ...signed(adminIdentity, futureGrant), requestedAt: ahead }, 'WICKET_ERR_GRANT_INVALID'],
      ['an unknown admin', signed(stranger, grantOf()), 'WICKET_ERR_MEMBER_UNKNOWN'],
      ['a revoked admin', signed(identityOf(revokedAdmin.home), grantOf()), 'WICKET_ERR_REVOKED'],
      ['a member without admin', signed(identityOf(plain.home), grantOf()), 'WICKET_ERR_NOT_ADMIN'],
      ['a member raised to admin by hand', signed(identityOf(raised.home), grantOf()), 'WICKET_ERR_NOT_ADMIN'],
      ['an endorsed admin demoted in the store', signed(identityOf(demoted.home), grantOf()), 'WICKET_ERR_NOT_ADMIN'],
    ];
    for (const [what, request, code] of cases) {
      const answer = await queueByHand(request);
      expect(answer, what).toEqual({ expiresAt: null, refused: code });
      expect(await endorsed(request.ticketId), what).toBe(false);
    }
    // Control: the admin's honest grant, queued the same way, is endorsed; the same grant again is not.
    const accepted = await queueByHand(honest);
    expect(accepted.refused).toBeNull();
    expect(Math.abs(accepted.expiresAt! - (Date.now() + g.expiresInMs))).toBeLessThan(60_000);
    expect(await endorsed(g.ticketId)).toBe(true);
    expect(await queueByHand(honest)).toEqual({ expiresAt: null, refused: 'WICKET_ERR_GRANT_INVALID' });
    // An endorsement alone enrolls nobody, and a row written to match it by hand needs the secret: the attacker has none.
  }, 120_000);

  it("a store writer who changes the signer's answer (the ticket's expiry) gets nothing recorded: the admin sees WICKET_ERR_NOT_ENDORSED", async () => {
    const count = async () => Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM tickets')).rows[0]!.n);
    const before = await count();
    await db.query(`CREATE FUNCTION bend_expiry() RETURNS trigger AS $$ BEGIN NEW.ticket_expires_at := NEW.ticket_expires_at + 10 * 365 * 86400000::bigint; RETURN NEW; END $$ LANGUAGE plpgsql;
      CREATE TRIGGER bend_expiry BEFORE UPDATE ON credential_requests FOR EACH ROW WHEN (NEW.ticket_expires_at IS NOT NULL) EXECUTE FUNCTION bend_expiry();`);
    try {
      const refused = await runAgent(admin.home, ['ticket', 'create', '--attribute', 'bent', '--expires-in', '10m']);
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toContain('WICKET_ERR_NOT_ENDORSED');
      expect(refused.stdout).not.toMatch(/wkt1_/);
    } finally {
      await db.query('DROP TRIGGER bend_expiry ON credential_requests; DROP FUNCTION bend_expiry();');
    }
    expect(await count()).toBe(before);
  }, 30_000);

  it('on the forwarding relay an old-style ticket.create (no grant) still gets WICKET_ERR_SIGNER_ONLY, a malformed grant WICKET_ERR_ARGUMENT, and the connection stays up', async () => {
    const identity = Identity.generate();
    const client = await RawRelayClient.connect(forwarding.url);
    await client.enroll(identity, await mint(['admin']));
    expect((await client.request('ticket.create', { attributes: { x: 'true' } })).error?.code).toBe('WICKET_ERR_SIGNER_ONLY');
    const prepared = prepareGrantedTicket(identity, authorityKey, { attributes: {}, relayNames: [], usageCount: 1, expiresInMs: 60_000 }, Date.now());
    expect((await client.request('ticket.create', { ...prepared.args, ticketKey: 'ab' })).error?.code).toBe('WICKET_ERR_ARGUMENT');
    expect((await client.request('ticket.create', { ...prepared.args, grantSignature: undefined })).error?.code).toBe('WICKET_ERR_ARGUMENT');
    expect((await client.request('ticket.list', {})).error).toBeUndefined();
    prepared.discard();
    await client.close();
  }, 30_000);

  it('a relay holding the key checks and endorses a grant in process; the same grant again, or one whose ticket id the store already holds an endorsement for, is WICKET_ERR_GRANT_INVALID', async () => {
    const signing = await startRelayProcess({ extraArgs: ['--store', storeUrl, '--authority-key', keyFile] });
    expect(signing.role).toBe('signing');
    const identity = Identity.generate();
    const client = await RawRelayClient.connect(signing.url);
    await client.enroll(identity, await mint(['admin']));
    const prepared = prepareGrantedTicket(identity, authorityKey, { attributes: { direct: 'true' }, relayNames: [], usageCount: 1, expiresInMs: 600_000 }, Date.now());
    const response = await client.request('ticket.create', prepared.args);
    expect(response.error).toBeUndefined();
    const made = prepared.finish(response.result as Record<string, unknown>);
    expect(decodeTicket(made.text.reveal()).relayUrl).toBe(signing.url);
    expect(await endorsed(made.ticketId)).toBe(true);
    expect((await client.request('ticket.create', prepared.args)).error?.code).toBe('WICKET_ERR_GRANT_INVALID');
    // Insert-only: an endorsement already there (a store writer's, or a racing signer's), whatever
    // it says, is never replaced, and the grant makes no ticket.
    const raced = prepareGrantedTicket(identity, authorityKey, { attributes: { raced: 'true' }, relayNames: [], usageCount: 1, expiresInMs: 600_000 }, Date.now());
    await db.query("INSERT INTO endorsements (kind, subject, statement, tag) VALUES ('ticket', $1, 'first', $2)", [raced.args.ticketId, Buffer.alloc(32)]);
    expect((await client.request('ticket.create', raced.args)).error?.code).toBe('WICKET_ERR_GRANT_INVALID');
    raced.discard();
    expect((await db.query("SELECT statement FROM endorsements WHERE kind = 'ticket' AND subject = $1", [raced.args.ticketId])).rows[0]?.statement).toBe('first');
    expect((await db.query('SELECT 1 FROM tickets WHERE ticket_id = $1', [Buffer.from(String(raced.args.ticketId), 'hex')])).rowCount).toBe(0);
    const agent = await RawRelayClient.connect(forwarding.url);
    expect((await agent.enroll(Identity.generate(), made.text.reveal())).t).toBe('welcome');
    await client.close();
    await agent.close();
    await signing.proc.kill('SIGTERM');
  }, 60_000);

  it("the forwarding relay's tap and logs never held the ticket's secret (the tap did see the grant)", async () => {
    await forwarding.proc.kill('SIGTERM');
    const tapped = readFileSync(tapFile);
    expect(tapped.includes(Buffer.from('"grantSignature"')), 'the tap saw the admin request').toBe(true);
    const logs = Buffer.from([...forwarding.proc.stdoutLines, ...forwarding.proc.stderrLines].join('\n'));
    for (const secret of secrets) {
      for (const haystack of [tapped, logs]) {
        expect(haystack.includes(secret)).toBe(false);
        for (const form of [secret.toString('hex'), secret.toString('base64'), secret.toString('base64url')]) expect(haystack.includes(Buffer.from(form))).toBe(false);
      }
    }
    for (const ticket of tickets) {
      expect(tapped.includes(Buffer.from(ticket))).toBe(false);
      expect(logs.includes(Buffer.from(ticket))).toBe(false);
    }
  }, 30_000);
});
