import { PG_SCHEMA_VERSION } from '../../relay/authority/pg-schema.js';
import { chmodSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isWicketError } from '../../protocol/errors.js';
import { Identity } from '../../protocol/identity.js';
import { loadOrCreateAuthorityKey, loadProjectKey } from '../../relay/authority/authority-key.js';
import { clientConfig, PgStore } from '../../relay/authority/pg-store.js';
import { parseStoreLocation, redactStoreUrl, type PostgresLocation } from '../../relay/authority/store-location.js';
import { postgresBinaries, startPostgresCluster, type PostgresCluster } from '../../scripts/lib/postgres-cluster.js';
import { tempDir, testLogger } from './relay-fixture.js';

// What only the shared store has: its URL (parsed once, its password never shown), the project
// identity several relays must agree on, migrations racing at start, the change feed, and
// PostgreSQL being away. The rules both stores share are in store-contract.test.ts.

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return isWicketError(err) ? err.message : `not a WicketError: ${String(err)}`;
  }
  return 'no error';
}

describe('--store URLs', () => {
  it('parses postgres:// and postgresql:// with a host, a port, a socket folder or IPv6, and sqlite', () => {
    expect(parseStoreLocation(undefined)).toEqual({ kind: 'sqlite' });
    expect(parseStoreLocation('sqlite')).toEqual({ kind: 'sqlite' });
    expect(parseStoreLocation('postgres://u:p%40ss@db.internal:5433/wicket')).toEqual({
      kind: 'postgres',
      connection: { user: 'u', password: 'p@ss', host: 'db.internal', port: 5433, database: 'wicket' },
      shown: 'postgres://u:***@db.internal:5433/wicket',
    });
    expect(parseStoreLocation('postgresql://u@/wicket?host=/run/postgresql&port=5432')).toMatchObject({ connection: { user: 'u', host: '/run/postgresql', port: 5432, database: 'wicket' } });
    expect(parseStoreLocation('postgres://u@[::1]:6000/w?sslmode=verify-full')).toMatchObject({ connection: { host: '::1', port: 6000, ssl: true } });
  });

  it('sslmode reaches the pg client as meant: disable and none are plain, require skips the certificate check, verify-full checks it', () => {
    const ssl = (url: string) => clientConfig(parseStoreLocation(url) as PostgresLocation).ssl;
    expect(ssl('postgres://u@db/w')).toBe(false);
    expect(ssl('postgres://u@db/w?sslmode=disable')).toBe(false);
    expect(ssl('postgres://u@db/w?sslmode=require')).toEqual({ rejectUnauthorized: false });
    // An empty options object: node's TLS defaults, which verify the chain and the host name.
    expect(ssl('postgres://u@db/w?sslmode=verify-full')).toEqual({});
  });

  it('hostile and mistaken URLs are WICKET_ERR_ARGUMENT, and no message carries the password', () => {
    const secret = 'hunter2-s3cret';
    for (const [text, pattern] of [
      [`mysql://u:${secret}@h/db`, /scheme "mysql" is not supported/],
      [`http://u:${secret}@h/db`, /scheme "http"/],
      ['garbage text', /must be sqlite or postgres:\/\//],
      [`postgres://u:${secret}@h:99999/db`, /port must be a number/],
      [`postgres://u:${secret}@h/db?password=${secret}&evil=1`, /parameter "evil" is not supported/],
      [`postgres://u:${secret}@/db`, /names no host/],
      [`postgres://u:${secret}@h/db?sslmode=maybe`, /sslmode must be/],
      [`postgres://u:${secret}@h%zz/db`, /WICKET_ERR_ARGUMENT/],
    ] as const) {
      const message = codeOf(() => parseStoreLocation(text));
      expect(message).toMatch(/^WICKET_ERR_ARGUMENT: --store /);
      expect(message).toMatch(pattern);
      expect(message).not.toContain(secret);
    }
    expect(redactStoreUrl(`postgres://u:${secret}@h/db?password=${secret}`)).toBe('postgres://u:***@h/db?password=***');
  });
});

describe('--authority-key', () => {
  it('loads the shared key file; a missing one is WICKET_ERR_ARGUMENT (no new project minted by a typo), one others can read WICKET_ERR_KEY_FILE_PERMISSIONS', () => {
    const folder = tempDir('wicket-project-key-');
    try {
      const shared = join(folder, 'shared.key');
      const { identity } = loadOrCreateAuthorityKey(shared);
      expect(loadProjectKey(join(folder, 'data.key'), shared, { create: true })).toMatchObject({ created: false, identity: { identifier: identity.identifier } });
      expect(codeOf(() => loadProjectKey(join(folder, 'data.key'), join(folder, 'typo.key'), { create: true }))).toMatch(/^WICKET_ERR_ARGUMENT: --authority-key .*typo\.key does not exist/);
      chmodSync(shared, 0o640);
      expect(codeOf(() => loadProjectKey(join(folder, 'data.key'), shared, { create: true }))).toMatch(/^WICKET_ERR_KEY_FILE_PERMISSIONS: /);
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });
});

const binaries = postgresBinaries();
if ('skip' in binaries) console.log(`PostgreSQL store tests skipped: ${binaries.skip}`);

describe.skipIf('skip' in binaries)('the PostgreSQL store', () => {
  let cluster: PostgresCluster;
  const stores: PgStore[] = [];
  beforeAll(async () => {
    cluster = await startPostgresCluster();
  }, 90_000);
  afterAll(async () => {
    await cluster?.stop();
  });
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.close()));
  });
  const open = async (location: PostgresLocation, authority = Identity.generate().identifier) => {
    const opened = await PgStore.open(location, { authority, now: Date.now(), logger: testLogger() });
    stores.push(opened.store);
    return opened;
  };
  const fresh = async () => parseStoreLocation(cluster.url(await cluster.createDatabase('pgstore'))) as PostgresLocation;

  it('three relays opening a fresh store at once: migrations run once, one of them initializes the project, the others join it', async () => {
    const location = await fresh();
    const authority = Identity.generate().identifier;
    const opened = await Promise.all([open(location, authority), open(location, authority), open(location, authority)]);
    expect(opened.map((o) => o.initialized).sort()).toEqual([false, false, true]);
    const database = location.connection.database!;
    const versions = Array.from({ length: PG_SCHEMA_VERSION }, (_, i) => String(i + 1)).join('\n');
    expect((await cluster.sql(database, 'SELECT version FROM schema_migrations ORDER BY version')).trim()).toBe(versions);
    expect((await cluster.sql(database, 'SELECT authority FROM project')).trim()).toBe(authority);
  });

  it('a relay whose authority key differs from the project recorded in the store is refused with WICKET_ERR_STORE_PROJECT_MISMATCH naming both', async () => {
    const location = await fresh();
    const project = Identity.generate().identifier;
    await open(location, project);
    const stranger = Identity.generate().identifier;
    const refused = await open(location, stranger).catch((err: unknown) => err);
    expect(isWicketError(refused, 'WICKET_ERR_STORE_PROJECT_MISMATCH')).toBe(true);
    expect((refused as Error).message).toContain(project);
    expect((refused as Error).message).toContain(stranger);
    expect((refused as Error).message).not.toContain(cluster.password);
  });

  it('a socket folder in ?host= works as well as a loopback port', async () => {
    const database = await cluster.createDatabase('socket');
    const { store } = await open(parseStoreLocation(`postgres://wicket@/${database}?host=${cluster.socketDir}&port=${cluster.port}`) as PostgresLocation);
    expect(await store.lastRevocationSeq()).toBe(0);
  });

  it('migration 5: a ticket row keeps the ticket public key (ticket_key), and one left from before (its key emptied) enrolls nobody', async () => {
    const location = await fresh();
    const { store } = await open(location);
    const database = location.connection.database!;
    const columns = (await cluster.sql(database, "SELECT column_name FROM information_schema.columns WHERE table_name = 'tickets'")).split('\n').map((c) => c.trim());
    expect(columns).toContain('ticket_key');
    expect(columns).not.toContain('secret_hash');
    // As migration 5 leaves a ticket made before it: the row kept, its key emptied.
    await cluster.sql(
      database,
      `INSERT INTO tickets (ticket_id, ticket_key, attributes, relay_names, usage_count, uses_left, created_at, expires_at, created_by)
       VALUES ('\\x${'11'.repeat(16)}', decode('', 'hex'), '{}', '[]', 1, 1, 0, ${Date.now() + 60_000}, 'cli')`,
    );
    const member = Identity.generate();
    for (const ticketKey of [Buffer.alloc(0), Buffer.alloc(32)]) {
      expect(await store.redeemTicket({ ticketId: Buffer.alloc(16, 0x11), ticketKey, identifier: member.identifier, publicKey: member.publicKey, now: Date.now() })).toEqual({ ok: false, code: 'WICKET_ERR_TICKET_UNKNOWN' });
    }
    expect((await store.listTickets({ now: Date.now(), all: false })).map((t) => t.usesLeft)).toEqual([1]);
  });

  it("a revocation committed through one store connection reaches another relay's change feed at once (NOTIFY)", async () => {
    const location = await fresh();
    const authority = Identity.generate().identifier;
    const { store: listening } = await open(location, authority);
    const { store: revoking } = await open(location, authority);
    const member = Identity.generate();
    await revoking.insertTicket({ ticketId: Buffer.alloc(16, 1), ticketKey: Buffer.alloc(32, 2), attributes: {}, relayNames: [], usageCount: 1, createdAt: 0, expiresAt: Date.now() + 60_000, createdBy: 'test' });
    await revoking.redeemTicket({ ticketId: Buffer.alloc(16, 1), ticketKey: Buffer.alloc(32, 2), identifier: member.identifier, publicKey: member.publicKey, now: Date.now() });
    const heard = new Promise<number>((resolve) => listening.changes.onRevocationEvents(() => resolve(performance.now())));
    const started = performance.now();
    await revoking.revokeMember(member.identifier, Date.now(), 'test');
    const tookMs = (await heard) - started;
    console.log(`NOTIFY reached the other store's feed ${tookMs.toFixed(1)} ms after the revoke began`);
    expect(tookMs).toBeLessThan(1_000);
    expect((await listening.revocationEventsAfter(0, 0)).map((e) => e.identifier)).toEqual([member.identifier]);
  });

  it('nothing listening at the address: WICKET_ERR_STORE_UNAVAILABLE, naming the store without its password', async () => {
    const port = await new Promise<number>((resolve) => {
      const server = createServer().listen(0, '127.0.0.1', () => {
        const { port: free } = server.address() as { port: number };
        server.close(() => resolve(free));
      });
    });
    const refused = await open(parseStoreLocation(`postgres://wicket:${cluster.password}@127.0.0.1:${port}/nowhere`) as PostgresLocation).catch((err: unknown) => err);
    expect(isWicketError(refused, 'WICKET_ERR_STORE_UNAVAILABLE')).toBe(true);
    expect((refused as Error).message).toContain(`postgres://wicket:***@127.0.0.1:${port}/nowhere`);
    expect((refused as Error).message).not.toContain(cluster.password);
  });
});
