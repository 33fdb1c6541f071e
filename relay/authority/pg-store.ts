import pg from 'pg';
import type { Logger } from 'pino';
import type { Identifier } from '../../protocol/identity.js';
import { PgEndorsements } from './pg-endorsements.js';
import { type MemberRow, memberFromRow, revocationFromRow, type RevocationRow, ticketFromRow, ticketKeyMatches, type TicketListingRow } from './store-rows.js';
import { RELAY_LIVE_TIMEOUT_MS, STORE_CONNECT_TIMEOUT_MS, STORE_POOL_SIZE, STORE_QUERY_TIMEOUT_MS } from '../../protocol/limits.js';
import { isUnavailable, storeFailure } from './pg-errors.js';
import { PgCredentialQueue } from './pg-credential-queue.js';
import { StoreListener } from './pg-listener.js';
import { claimProject, CREDENTIAL_ANSWER_CHANNEL, CREDENTIAL_REQUEST_CHANNEL, migratePostgres, type ProjectRecord, readProject, REVOCATION_CHANNEL, REVOCATION_LOCK, SERVED_NAMES_CHANNEL, withProjectLock } from './pg-schema.js';
import type { PostgresLocation } from './store-location.js';
import {
  applyEnrollment,
  type Attributes,
  type AuditEvent,
  type AuthorityStore,
  type MemberRecord,
  type RedeemOutcome,
  type RedeemRequest,
  type ReinstateOutcome,
  type RevocationEvent,
  type RelayRecord,
  type ServedName,
  type RevokeOutcome,
  type TicketListing,
  type TicketRecord,
  type TicketRevokeOutcome,
} from './store.js';

// The authority store several relays share: PostgreSQL through a pg.Pool. Same rows and same
// outcomes as SqliteStore (the contract tests run on both); what differs is how concurrency is
// made safe across processes on other machines:
//
// - redemption locks the ticket row (SELECT … FOR UPDATE) for its whole transaction, so of twenty
//   relays redeeming a one-use ticket at once, one spends it and the others then read uses_left 0;
// - revoke and reinstate take REVOCATION_LOCK (a transaction advisory lock) before drawing a seq,
//   so seqs commit in order and a relay reading "events after N" can never skip one committed late;
//   they NOTIFY REVOCATION_CHANNEL in the same transaction (delivered at commit, to every relay);
// - `changes` is the dedicated LISTEN connection (pg-listener.ts), for revocations and for
//   `credentials`, the queue through which forwarding relays get credentials signed
//   (pg-credential-queue.ts);
// - `endorsements`, what the signer vouched for (pg-endorsements.ts): the rows above are believed
//   by relays, but a signer signs only what it endorsed.
//
// This module (and pg) is loaded only when `--store postgres://…` is given (open-store.ts).

const LISTING_COLUMNS = 'ticket_id, attributes, relay_names, usage_count, uses_left, created_at, expires_at, created_by, revoked_at, revoked_by';

/** bigint (ms timestamps, seqs) comes back as a number: every value we store is far below 2^53. */
const TYPES = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === pg.types.builtins.INT8 ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format ?? 'text')) as typeof pg.types.getTypeParser,
};

function sslOption(ssl: PostgresLocation['connection']['ssl']): pg.ClientConfig['ssl'] {
  if (ssl === undefined || ssl === false) return false;
  return ssl === true ? {} : { ...ssl };
}

export function clientConfig(location: PostgresLocation): pg.ClientConfig {
  return {
    ...location.connection,
    // sslmode: absent or disable → no TLS; require → TLS, certificate unchecked; verify-full → TLS,
    // certificate and name checked (node's defaults). A copy, so pg cannot alter the parsed location.
    ssl: sslOption(location.connection.ssl),
    connectionTimeoutMillis: STORE_CONNECT_TIMEOUT_MS,
    query_timeout: STORE_QUERY_TIMEOUT_MS,
    keepAlive: true,
    types: TYPES,
    application_name: location.connection.application_name ?? 'wicket-relay',
  };
}

type Queryable = Pick<pg.ClientBase, 'query'>;

export class PgStore implements AuthorityStore {
  readonly #pool: pg.Pool;
  readonly #shown: string;
  readonly changes: StoreListener;
  readonly credentials: PgCredentialQueue;
  readonly endorsements: PgEndorsements;

  private constructor(pool: pg.Pool, shown: string, changes: StoreListener) {
    this.#pool = pool;
    this.#shown = shown;
    this.changes = changes;
    this.credentials = new PgCredentialQueue((what, body) => this.#transaction(what, body), (what, text, values) => this.#query(what, text, values), changes);
    this.endorsements = new PgEndorsements((what, text, values) => this.#query(what, text, values));
  }

  /**
   * Connects, migrates (under the migration lock), claims or checks the project when `authority`
   * is given (with `publicKey`, a process holding the key, also recording the key), and starts
   * listening. `initialized`: this call recorded the project (its first admin ticket is due).
   * Throws WICKET_ERR_STORE_UNAVAILABLE, WICKET_ERR_STORE or WICKET_ERR_STORE_PROJECT_MISMATCH.
   */
  static async open(
    location: PostgresLocation,
    o: { authority?: Identifier; publicKey?: Buffer; now: number; logger: Logger },
  ): Promise<{ store: PgStore; initialized: boolean }> {
    const config = clientConfig(location);
    const pool = new pg.Pool({ ...config, max: STORE_POOL_SIZE });
    // An idle connection dropped by a restarting server: the pool replaces it on the next query.
    pool.on('error', (err) => o.logger.warn({ store: location.shown, reason: storeFailure('idle connection', err, location.shown).message }, 'store connection lost'));
    const channels = [REVOCATION_CHANNEL, SERVED_NAMES_CHANNEL, CREDENTIAL_REQUEST_CHANNEL, CREDENTIAL_ANSWER_CHANNEL] as const;
    const changes = new StoreListener(() => new pg.Client(config), channels, location.shown, o.logger);
    const store = new PgStore(pool, location.shown, changes);
    try {
      let initialized = false;
      await store.#withClient('initializing the store', async (client) => {
        await migratePostgres(client, o.now);
        const authority = o.authority;
        if (authority !== undefined) initialized = await withProjectLock(client, () => claimProject(client, authority, o.now, location.shown, o.publicKey));
      });
      await changes.start();
      return { store, initialized };
    } catch (err) {
      await store.close();
      throw storeFailure('opening the store', err, location.shown);
    }
  }

  /** The project this store belongs to (undefined: an empty store, no relay has claimed it). */
  project(): Promise<ProjectRecord | undefined> {
    return this.#withClient('reading the project', (client) => readProject(client));
  }

  /** Claims the project for `authority` (see claimProject): true when this call recorded it. */
  claimProject(authority: Identifier, publicKey: Buffer, now: number): Promise<boolean> {
    return this.#withClient('claiming the project', (client) => withProjectLock(client, () => claimProject(client, authority, now, this.#shown, publicKey)));
  }

  /**
   * The store's project; on an empty store, `makeKey` is called (under the project lock, so by one
   * process only) and its key recorded as the project. `initialized`: this call recorded it.
   */
  initializeProject(makeKey: () => { identifier: Identifier; publicKey: Buffer }, now: number): Promise<{ project: ProjectRecord; initialized: boolean }> {
    return this.#withClient('initializing the project', (client) =>
      withProjectLock(client, async () => {
        const existing = await readProject(client);
        if (existing !== undefined) return { project: existing, initialized: false };
        const key = makeKey();
        const initialized = await claimProject(client, key.identifier, now, this.#shown, key.publicKey);
        return { project: (await readProject(client))!, initialized };
      }),
    );
  }

  async #withClient<T>(what: string, body: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (err) {
      throw storeFailure(what, err, this.#shown);
    }
    let broken: Error | undefined;
    try {
      return await body(client);
    } catch (err) {
      // A connection that failed mid-transaction is not given back for reuse.
      if (isUnavailable(err)) broken = err as Error;
      throw storeFailure(what, err, this.#shown);
    } finally {
      client.release(broken);
    }
  }

  /** One transaction: BEGIN, body, COMMIT (ROLLBACK on any throw, including a WicketError). */
  #transaction<T>(what: string, body: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    return this.#withClient(what, async (client) => {
      await client.query('BEGIN');
      try {
        const result = await body(client);
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
    });
  }

  async #query<R extends pg.QueryResultRow>(what: string, text: string, values: unknown[] = []): Promise<R[]> {
    try {
      return (await this.#pool.query<R>(text, values)).rows;
    } catch (err) {
      throw storeFailure(what, err, this.#shown);
    }
  }

  async insertTicket(ticket: TicketRecord): Promise<boolean> {
    const written = await this.#query(
      'storing a ticket',
      `INSERT INTO tickets (ticket_id, ticket_key, attributes, relay_names, usage_count, uses_left, created_at, expires_at, created_by)
       VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $8) ON CONFLICT (ticket_id) DO NOTHING RETURNING ticket_id`,
      [ticket.ticketId, ticket.ticketKey, JSON.stringify(ticket.attributes), JSON.stringify(ticket.relayNames), ticket.usageCount, ticket.createdAt, ticket.expiresAt, ticket.createdBy],
    );
    return written.length === 1;
  }

  redeemTicket(request: RedeemRequest): Promise<RedeemOutcome> {
    return this.#transaction('redeeming a ticket', async (c): Promise<RedeemOutcome> => {
      // The row lock is held to COMMIT: a racing redemption waits here, then reads uses_left spent.
      const ticket = (
        await c.query<{ ticket_key: Buffer; attributes: string; relay_names: string; uses_left: number; expires_at: number; revoked_at: number | null }>(
          'SELECT ticket_key, attributes, relay_names, uses_left, expires_at, revoked_at FROM tickets WHERE ticket_id = $1 FOR UPDATE',
          [request.ticketId],
        )
      ).rows[0];
      // Unknown id and wrong ticket key look the same, so the answer reveals nothing about valid ids.
      if (ticket === undefined || !ticketKeyMatches(ticket.ticket_key, request.ticketKey)) {
        return { ok: false, code: 'WICKET_ERR_TICKET_UNKNOWN' };
      }
      const row = (await c.query<MemberRow>('SELECT * FROM members WHERE identifier = $1 FOR UPDATE', [request.identifier])).rows[0];
      const existing = row === undefined ? undefined : memberFromRow(row);
      // A revoked key stays revoked, whatever ticket it holds; no use is spent on it.
      if (existing?.revokedAt !== undefined) return { ok: false, code: 'WICKET_ERR_REVOKED' };
      // The same key redeeming the same ticket again (its first welcome was lost): spend nothing.
      if (existing !== undefined) {
        const again = await c.query('SELECT 1 FROM redemptions WHERE ticket_id = $1 AND identifier = $2', [request.ticketId, request.identifier]);
        if (again.rowCount === 1) return { ok: true, member: existing, kind: 'repeated' };
      }
      if (ticket.revoked_at !== null) return { ok: false, code: 'WICKET_ERR_TICKET_REVOKED' };
      if (ticket.uses_left <= 0) return { ok: false, code: 'WICKET_ERR_TICKET_USED' };
      if (request.now >= ticket.expires_at) return { ok: false, code: 'WICKET_ERR_TICKET_EXPIRED' };
      await c.query('UPDATE tickets SET uses_left = uses_left - 1 WHERE ticket_id = $1', [request.ticketId]);
      const { member, kind } = applyEnrollment(
        existing,
        { attributes: JSON.parse(ticket.attributes) as Attributes, relayNames: JSON.parse(ticket.relay_names) as string[] },
        request,
      );
      // Never clears revoked_at: only reinstate does.
      await c.query(
        `INSERT INTO members (identifier, public_key, attributes, enrolled_at, revoked_at) VALUES ($1, $2, $3, $4, NULL)
         ON CONFLICT (identifier) DO UPDATE SET attributes = excluded.attributes`,
        [member.identifier, member.publicKey, JSON.stringify(member.attributes), member.enrolledAt],
      );
      await c.query('INSERT INTO redemptions (ticket_id, identifier, redeemed_at) VALUES ($1, $2, $3)', [request.ticketId, request.identifier, request.now]);
      return { ok: true, member, kind };
    });
  }

  async listTickets(query: { readonly now: number; readonly all: boolean }): Promise<TicketListing[]> {
    const rows = query.all
      ? await this.#query<TicketListingRow>('listing tickets', `SELECT ${LISTING_COLUMNS} FROM tickets ORDER BY created_at, created_seq`)
      : await this.#query<TicketListingRow>(
          'listing tickets',
          `SELECT ${LISTING_COLUMNS} FROM tickets WHERE uses_left > 0 AND expires_at > $1 AND revoked_at IS NULL ORDER BY created_at, created_seq`,
          [query.now],
        );
    return rows.map(ticketFromRow);
  }

  revokeTicket(ticketId: Buffer, now: number, by: string): Promise<TicketRevokeOutcome | undefined> {
    return this.#transaction('revoking a ticket', async (c) => {
      const changed = (await c.query('UPDATE tickets SET revoked_at = $1, revoked_by = $2 WHERE ticket_id = $3 AND revoked_at IS NULL', [now, by, ticketId])).rowCount === 1;
      const row = (await c.query<TicketListingRow>(`SELECT ${LISTING_COLUMNS} FROM tickets WHERE ticket_id = $1`, [ticketId])).rows[0];
      return row === undefined ? undefined : { ticket: ticketFromRow(row), alreadyRevoked: !changed };
    });
  }

  async getMember(identifier: Identifier): Promise<MemberRecord | undefined> {
    const row = (await this.#query<MemberRow>('reading a member', 'SELECT * FROM members WHERE identifier = $1', [identifier]))[0];
    return row === undefined ? undefined : memberFromRow(row);
  }

  async listMembers(): Promise<MemberRecord[]> {
    return (await this.#query<MemberRow>('listing members', 'SELECT * FROM members ORDER BY enrolled_at, identifier')).map(memberFromRow);
  }

  /** Appends a revocation event in seq order and tells every listening relay (both at COMMIT). */
  async #appendEvent(c: Queryable, identifier: Identifier, now: number, by: string, kind: RevocationEvent['kind']): Promise<void> {
    const { rows } = await c.query<{ seq: number }>('INSERT INTO revocations (identifier, revoked_at, revoked_by, kind) VALUES ($1, $2, $3, $4) RETURNING seq', [identifier, now, by, kind]);
    await c.query('SELECT pg_notify($1, $2)', [REVOCATION_CHANNEL, String(rows[0]!.seq)]);
  }

  async #latest(c: Queryable, identifier: Identifier, kind: RevocationEvent['kind']): Promise<RevocationEvent> {
    const row = (await c.query<RevocationRow>('SELECT * FROM revocations WHERE identifier = $1 AND kind = $2 ORDER BY seq DESC LIMIT 1', [identifier, kind])).rows[0];
    if (row === undefined) throw storeFailure('reading revocations', new Error(`member ${identifier} has no ${kind} event`), this.#shown);
    return revocationFromRow(row);
  }

  revokeMember(identifier: Identifier, now: number, by: string): Promise<RevokeOutcome | undefined> {
    return this.#transaction('revoking a member', async (c) => {
      await c.query('SELECT pg_advisory_xact_lock($1)', [REVOCATION_LOCK]);
      const row = (await c.query<MemberRow>('SELECT * FROM members WHERE identifier = $1 FOR UPDATE', [identifier])).rows[0];
      if (row === undefined) return undefined;
      const alreadyRevoked = row.revoked_at !== null;
      if (!alreadyRevoked) {
        await c.query('UPDATE members SET revoked_at = $1 WHERE identifier = $2', [now, identifier]);
        await this.#appendEvent(c, identifier, now, by, 'revoke');
      }
      const spent = await c.query(
        'UPDATE tickets SET uses_left = 0 WHERE uses_left > 0 AND ticket_id IN (SELECT ticket_id FROM redemptions WHERE identifier = $1)',
        [identifier],
      );
      return { event: await this.#latest(c, identifier, 'revoke'), alreadyRevoked, ticketsSpent: spent.rowCount ?? 0 };
    });
  }

  reinstateMember(identifier: Identifier, now: number, by: string): Promise<ReinstateOutcome> {
    return this.#transaction('reinstating a member', async (c): Promise<ReinstateOutcome> => {
      await c.query('SELECT pg_advisory_xact_lock($1)', [REVOCATION_LOCK]);
      const row = (await c.query<MemberRow>('SELECT * FROM members WHERE identifier = $1 FOR UPDATE', [identifier])).rows[0];
      if (row === undefined) return { ok: false, code: 'WICKET_ERR_MEMBER_UNKNOWN' };
      if (row.revoked_at === null) return { ok: false, code: 'WICKET_ERR_MEMBER_NOT_REVOKED' };
      await c.query('UPDATE members SET revoked_at = NULL WHERE identifier = $1', [identifier]);
      await this.#appendEvent(c, identifier, now, by, 'reinstate');
      return { ok: true, event: await this.#latest(c, identifier, 'reinstate') };
    });
  }

  async revocationEventsAfter(afterSeq: number, sinceAt: number): Promise<RevocationEvent[]> {
    const rows = await this.#query<RevocationRow>('reading revocations', 'SELECT * FROM revocations WHERE seq > $1 AND revoked_at >= $2 ORDER BY seq', [afterSeq, sinceAt]);
    return rows.map(revocationFromRow);
  }

  async lastRevocationSeq(): Promise<number> {
    return (await this.#query<{ seq: number | null }>('reading revocations', 'SELECT MAX(seq) AS seq FROM revocations'))[0]?.seq ?? 0;
  }

  async appendAudit(event: AuditEvent): Promise<void> {
    await this.#query('writing an audit event', 'INSERT INTO audit (at, event, identifier, detail) VALUES ($1, $2, $3, $4)', [
      event.at,
      event.event,
      event.identifier ?? null,
      event.detail === undefined ? null : JSON.stringify(event.detail),
    ]);
  }

  async listAudit(limit: number): Promise<AuditEvent[]> {
    const rows = await this.#query<{ at: number; event: string; identifier: string | null; detail: string | null }>(
      'listing audit events',
      'SELECT at, event, identifier, detail FROM (SELECT * FROM audit ORDER BY seq DESC LIMIT $1) AS recent ORDER BY seq',
      [limit],
    );
    return rows.map((row): AuditEvent => {
      const event: { at: number; event: AuditEvent['event']; identifier?: string; detail?: Record<string, unknown> } = { at: row.at, event: row.event as AuditEvent['event'] };
      if (row.identifier !== null) event.identifier = row.identifier;
      if (row.detail !== null) event.detail = JSON.parse(row.detail) as Record<string, unknown>;
      return event;
    });
  }

  async upsertRelay(r: RelayRecord): Promise<void> {
    await this.#query(
      'recording this relay',
      'INSERT INTO relays (url, relay_id, fingerprint, last_seen) VALUES ($1, $2, $3, $4) ON CONFLICT (url) DO UPDATE SET relay_id = $2, fingerprint = $3, last_seen = $4',
      [r.url, r.relayId, r.fingerprint ?? null, r.lastSeen],
    );
  }

  async liveRelays(now: number, withinMs = RELAY_LIVE_TIMEOUT_MS): Promise<RelayRecord[]> {
    const rows = await this.#query<{ url: string; relay_id: string; fingerprint: Buffer | null; last_seen: number }>(
      'listing the relays',
      'SELECT * FROM relays WHERE last_seen >= $1 ORDER BY last_seen DESC, url',
      [now - withinMs],
    );
    return rows.map((row) => ({
      relayId: row.relay_id,
      url: row.url,
      lastSeen: Number(row.last_seen),
      ...(row.fingerprint === null ? {} : { fingerprint: row.fingerprint }),
    }));
  }

  async setServedName(relayId: string, name: string, served: boolean): Promise<void> {
    await this.#transaction('recording a served relay name', async (c) => {
      if (served) await c.query('INSERT INTO served_names (relay_id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING', [relayId, name]);
      else await c.query('DELETE FROM served_names WHERE relay_id = $1 AND name = $2', [relayId, name]);
      // Rows of relays that restarted under a new id (or left for good) would only ever be filtered out: drop them.
      await c.query('DELETE FROM served_names WHERE relay_id NOT IN (SELECT relay_id FROM relays)');
      await c.query('SELECT pg_notify($1, $2)', [SERVED_NAMES_CHANNEL, relayId]);
    });
  }

  async servedNames(now: number): Promise<ServedName[]> {
    const rows = await this.#query<{ relay_id: string; name: string }>(
      'listing served relay names',
      'SELECT s.relay_id, s.name FROM served_names s JOIN relays r ON r.relay_id = s.relay_id WHERE r.last_seen >= $1 ORDER BY s.name, s.relay_id',
      [now - RELAY_LIVE_TIMEOUT_MS],
    );
    return rows.map((row) => ({ relayId: row.relay_id, name: row.name }));
  }

  async close(): Promise<void> {
    await this.changes.close();
    if (!this.#pool.ended) await this.#pool.end().catch(() => undefined);
  }
}
