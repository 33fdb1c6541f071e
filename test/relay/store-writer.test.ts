import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Identity } from '../../protocol/identity.js';
import { Secret } from '../../protocol/secret.js';
import { CREDENTIAL_REQUEST_CHANNEL } from '../../relay/authority/pg-schema.js';
import { encodeTicket, ticketKeyFromSecret } from '../../protocol/ticket.js';
import { enrollAgent, type RelayProcess, runAgent, runCommand, startAuthorityProcess, startRelayProcess, stopAll, tempDir } from '../../scripts/lib/local-processes.js';
import { postgresBinaries, startPostgresCluster, type PostgresCluster } from '../../scripts/lib/postgres-cluster.js';

// Issue 14: "taking over a forwarding relay gives no power to mint a credential". Whoever holds a
// forwarding relay holds the store's password, so these tests write the store directly, as such an
// attacker would, on one real PostgreSQL with relay S (signs) and relay F (forwards). Each forgery
// must be refused by the signer with WICKET_ERR_NOT_ENDORSED, through F (the credential queue) and
// through S (which signs for its own agents): the signer believes only what it endorsed. The
// positive control: a ticket the signer made enrolls through the same relays.

const binaries = postgresBinaries();
if ('skip' in binaries) console.log(`store-writer attacks skipped: ${binaries.skip}`);

describe.skipIf('skip' in binaries)('a store writer cannot mint a credential', () => {
  let cluster: PostgresCluster;
  let storeUrl: string;
  let keyFile: string;
  let authorityKey: Buffer;
  let signing: RelayProcess;
  let forwarding: RelayProcess;
  let db: pg.Client;

  /** A ticket made where the key is (S's folder). */
  async function mint(attributes: string[]): Promise<string> {
    const args = ['ticket', 'create', '--data', signing.dataDir, '--store', storeUrl, '--json'];
    for (const a of attributes) args.push('--attribute', a);
    const result = await runCommand('relay', args);
    if (result.code !== 0) throw new Error(`ticket create failed: ${result.stderr}`);
    return (JSON.parse(result.stdout) as { ticket: string }).ticket;
  }

  /** What an attacker with the store's password writes: a ticket row of its own, granting admin. */
  async function forgeTicket(relay: RelayProcess): Promise<string> {
    const secret = new Secret(randomBytes(32));
    const ticketId = randomBytes(16);
    const now = Date.now();
    await db.query(
      `INSERT INTO tickets (ticket_id, ticket_key, attributes, relay_names, usage_count, uses_left, created_at, expires_at, created_by)
       VALUES ($1, $2, $3, '[]', 5, 5, $4, $5, 'relay')`,
      [ticketId, ticketKeyFromSecret(secret).publicKey, JSON.stringify({ admin: 'true' }), now, now + 3_600_000],
    );
    return encodeTicket({ relayUrl: relay.url, authorityPublicKey: authorityKey, ticketId, secret, expiresAt: now + 3_600_000 });
  }

  async function enrollWith(ticket: string): Promise<{ code: number | null; stderr: string }> {
    const home = tempDir('wicket-agent-');
    const file = join(home, 'enroll.ticket');
    writeFileSync(file, ticket, { mode: 0o600 });
    return runAgent(home, ['enroll', '--ticket-file', file, '--json']);
  }

  beforeAll(async () => {
    cluster = await startPostgresCluster();
    storeUrl = cluster.url(await cluster.createDatabase('store_writer'));
    signing = await startRelayProcess({ extraArgs: ['--store', storeUrl] });
    keyFile = join(signing.dataDir, 'authority.key');
    authorityKey = Identity.fromSeed(new Secret(readFileSync(keyFile))).publicKey;
    forwarding = await startRelayProcess({ extraArgs: ['--store', storeUrl] });
    db = new pg.Client({ connectionString: storeUrl });
    await db.connect();
  }, 120_000);

  afterAll(async () => {
    await db?.end();
    await stopAll();
    await cluster?.stop();
  });

  it('a ticket row written straight into the store enrolls nobody, through the forwarding or the signing relay', async () => {
    for (const relay of [forwarding, signing]) {
      const result = await enrollWith(await forgeTicket(relay));
      expect(result.code, result.stderr).not.toBe(0);
      expect(result.stderr).toContain('WICKET_ERR_NOT_ENDORSED');
    }
    // Control: a ticket the signer made enrolls through both.
    await enrollAgent(forwarding, { ticket: await mint(['ok']) });
    await enrollAgent(signing, { ticket: await mint(['ok']) });
  }, 60_000);

  it('a forged endorsement row (a tag not made with the project key) does not help', async () => {
    const ticket = await forgeTicket(forwarding);
    const ticketId = (await db.query<{ ticket_id: Buffer }>("SELECT ticket_id FROM tickets WHERE attributes LIKE '%admin%' ORDER BY created_at DESC LIMIT 1")).rows[0]!.ticket_id;
    await db.query("INSERT INTO endorsements (kind, subject, statement, tag) VALUES ('ticket', $1, $2, $3)", [ticketId.toString('hex'), '{}', randomBytes(32)]);
    const result = await enrollWith(ticket);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('WICKET_ERR_NOT_ENDORSED');
  }, 60_000);

  it('a member row and a credential request written straight into the queue are refused, never signed', async () => {
    const intruder = Identity.generate();
    await db.query("INSERT INTO members (identifier, public_key, attributes, enrolled_at, revoked_at) VALUES ($1, $2, $3, $4, NULL)", [
      intruder.identifier,
      intruder.publicKey,
      JSON.stringify({ admin: 'true' }),
      Date.now(),
    ]);
    const { rows } = await db.query<{ request_id: number }>(
      "INSERT INTO credential_requests (kind, subject, requested_by, requested_at) VALUES ('member', $1, 'attacker', (extract(epoch from clock_timestamp()) * 1000)::bigint) RETURNING request_id",
      [intruder.identifier],
    );
    await db.query('SELECT pg_notify($1, $2)', [CREDENTIAL_REQUEST_CHANNEL, String(rows[0]!.request_id)]);
    let answer: { credential: Buffer | null; refused: string | null } | undefined;
    const deadline = Date.now() + 10_000;
    while (answer === undefined && Date.now() < deadline) {
      answer = (await db.query<{ credential: Buffer | null; refused: string | null }>('SELECT credential, refused FROM credential_requests WHERE request_id = $1 AND answered_at IS NOT NULL', [rows[0]!.request_id])).rows[0];
      if (answer === undefined) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(answer).toEqual({ credential: null, refused: 'WICKET_ERR_NOT_ENDORSED' });
  }, 30_000);

  it("raising an enrolled member's attributes in the store gives it no admin credential, on either relay", async () => {
    for (const relay of [signing, forwarding]) {
      const member = await enrollAgent(relay, { ticket: await mint(['plain']) });
      await db.query('UPDATE members SET attributes = $1 WHERE identifier = $2', [JSON.stringify({ plain: 'true', admin: 'true' }), member.identifier]);
      const result = await runAgent(member.home, ['ticket', 'create', '--attribute', 'x']);
      expect(result.code, result.stderr).not.toBe(0);
      expect(result.stderr).toContain('WICKET_ERR_NOT_ADMIN');
    }
  }, 60_000);

  it("the forwarding relay's folder cannot make tickets (WICKET_ERR_SIGNER_ONLY); with the key it can", async () => {
    const refused = await runCommand('relay', ['ticket', 'create', '--data', forwarding.dataDir, '--store', storeUrl]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('WICKET_ERR_SIGNER_ONLY');
    const made = await runCommand('relay', ['ticket', 'create', '--data', forwarding.dataDir, '--store', storeUrl, '--authority-key', keyFile, '--json']);
    expect(made.code, made.stderr).toBe(0);
    await enrollAgent(forwarding, { ticket: (JSON.parse(made.stdout) as { ticket: string }).ticket });
  }, 60_000);

  it('`relay authority --endorse-existing` vouches for members made before endorsements, as the store holds them', async () => {
    const before = Identity.generate();
    await db.query("INSERT INTO members (identifier, public_key, attributes, enrolled_at, revoked_at) VALUES ($1, $2, '{\"old\":\"true\"}', $3, NULL)", [before.identifier, before.publicKey, Date.now()]);
    const signer = await startAuthorityProcess({ store: storeUrl, keyFile, extraArgs: ['--endorse-existing'] });
    // The intruder row of the earlier test is endorsed too: the flag is the operator's word on the store as it is.
    expect(signer.endorsedExisting).toBeGreaterThanOrEqual(1);
    const endorsed = await db.query("SELECT statement FROM endorsements WHERE kind = 'member' AND subject = $1", [before.identifier]);
    expect(JSON.parse((endorsed.rows[0] as { statement: string }).statement)).toEqual({ identifier: before.identifier, publicKey: before.publicKey.toString('hex'), attributes: { old: 'true' } });
    await signer.proc.kill('SIGTERM');
  }, 60_000);
});
