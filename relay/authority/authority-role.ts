import { existsSync } from 'node:fs';
import type { Logger } from 'pino';
import { wicketError } from '../../protocol/errors.js';
import { identifierOf, type Identity } from '../../protocol/identity.js';
import { RELAY_ID_ATTRIBUTE } from '../../protocol/relay-names.js';
import { AUTHORITY_KEY_OPTION, loadOrCreateAuthorityKey, loadProjectKey } from './authority-key.js';
import { Authority } from './authority.js';
import type { AuthorityRole } from './credential-issuer.js';
import { CredentialSigner } from './credential-signer.js';
import { Endorser, memberStatementText } from './endorsement.js';
import { openAuthorityStore } from './open-store.js';
import type { PgStore } from './pg-store.js';
import type { ProjectRecord } from './pg-schema.js';
import { RemoteIssuer } from './remote-issuer.js';
import type { PostgresLocation, StoreLocation } from './store-location.js';
import type { AuthorityStore } from './store.js';

// Which role a relay's authority takes, decided once at start and logged (issue 14, "signing key
// only where credentials are issued"):
//
//   signing     SQLite (one relay); or PostgreSQL with --authority-key FILE or DATA/authority.key;
//               or the first relay on an empty PostgreSQL store, which makes the key and records
//               the project. It signs its own agents' credentials, and, on PostgreSQL, answers the
//               forwarding relays' requests (credential-signer.ts).
//   forwarding  PostgreSQL, the project already recorded, no key given and none in DATA. It never
//               reads, writes or holds the private key: it verifies with the project's public key
//               from the store's `project` row and asks a signer for credentials (remote-issuer.ts).
//
// `relay authority` (openSigningService) is a signer with no relay around it.

export interface OpenedAuthority {
  readonly authority: Authority;
  readonly store: AuthorityStore;
  readonly role: AuthorityRole;
  /** This start recorded the project (a new SQLite key, or the first relay on an empty store): mint the first admin ticket. */
  readonly initialized: boolean;
  /** Stops the signer (when this process signs for others) and closes the store. */
  close(): Promise<void>;
}

export interface AuthorityRoleOptions {
  /** DATA/authority.key. */
  readonly dataDirKeyFile: string;
  /** DATA/authority.db, for SQLite. */
  readonly sqlitePath: string;
  /** `--authority-key FILE`. */
  readonly keyFile?: string;
  readonly location: StoreLocation;
  /** A store given by the caller (tests): the relay signs, as on SQLite. */
  readonly store?: AuthorityStore;
  readonly now: () => number;
  readonly logger: Logger;
  readonly credentialTtlMs?: number;
}

function ttlOf(o: { credentialTtlMs?: number }): { credentialTtlMs?: number } {
  return o.credentialTtlMs === undefined ? {} : { credentialTtlMs: o.credentialTtlMs };
}

/** A signing authority; on a store with a credential queue it also answers other relays' requests. */
function signing(identity: Identity, store: AuthorityStore, initialized: boolean, o: AuthorityRoleOptions): OpenedAuthority {
  const logger = o.logger.child({ component: 'authority' });
  const authority = new Authority({ identity, store, logger, now: o.now, ...ttlOf(o) });
  const signer = store.credentials === undefined ? undefined : new CredentialSigner({ identity, queue: store.credentials, logger, now: o.now, ...ttlOf(o) });
  signer?.start();
  return {
    authority,
    store,
    role: 'signing',
    initialized,
    close: async () => {
      await signer?.stop();
      await store.close();
    },
  };
}

/** The project's public key from its row, checked against the identifier recorded beside it. */
export function projectPublicKey(project: ProjectRecord, shown: string): Buffer {
  if (project.publicKey === undefined) {
    throw wicketError(
      'WICKET_ERR_AUTHORITY_UNAVAILABLE',
      `the store ${shown} does not record the public key of project ${project.authority} yet (no relay holding the key has started on it since the upgrade): start one relay with the key (${AUTHORITY_KEY_OPTION} FILE) once, then this one`,
    );
  }
  if (identifierOf(project.publicKey) !== project.authority) {
    throw wicketError('WICKET_ERR_STORE', `the store ${shown} is inconsistent: its project public key is not that of authority ${project.authority}`);
  }
  return project.publicKey;
}

/** An authority holding only the project's public key: credentials come from a signer, through the store. */
export function forwardingAuthority(store: PgStore, project: ProjectRecord, shown: string, o: Pick<AuthorityRoleOptions, 'now' | 'logger' | 'credentialTtlMs'>): Authority {
  const logger = o.logger.child({ component: 'authority' });
  const publicKey = projectPublicKey(project, shown);
  const issuer = new RemoteIssuer({ queue: store.credentials, authorityPublicKey: publicKey, logger, now: o.now });
  return new Authority({ publicKey, issuer, store, logger, now: o.now, ...ttlOf(o) });
}

export async function openRelayAuthority(o: AuthorityRoleOptions): Promise<OpenedAuthority> {
  const storeLogger = o.logger.child({ component: 'store' });
  if (o.store !== undefined || o.location.kind === 'sqlite') {
    const { identity, created } = loadProjectKey(o.dataDirKeyFile, o.keyFile, { create: true });
    const store = o.store ?? (await openAuthorityStore(o.location, { sqlitePath: o.sqlitePath, authority: identity.identifier, keyCreated: created, now: o.now(), logger: storeLogger })).store;
    return signing(identity, store, created, o);
  }
  const location = o.location;
  const { PgStore } = await import('./pg-store.js');
  if (o.keyFile !== undefined || existsSync(o.dataDirKeyFile)) {
    const { identity } = loadProjectKey(o.dataDirKeyFile, o.keyFile, { create: false });
    const { store, initialized } = await PgStore.open(location, { authority: identity.identifier, publicKey: identity.publicKey, now: o.now(), logger: storeLogger });
    return signing(identity, store, initialized, o);
  }
  const { store } = await PgStore.open(location, { now: o.now(), logger: storeLogger });
  try {
    // An empty store: this relay makes the project key (DATA/authority.key) and records the project.
    let made: Identity | undefined;
    const { project, initialized } = await store.initializeProject(() => (made = loadOrCreateAuthorityKey(o.dataDirKeyFile).identity), o.now());
    if (initialized && made !== undefined) return signing(made, store, true, o);
    const authority = forwardingAuthority(store, project, location.shown, o);
    return { authority, store, role: 'forwarding', initialized: false, close: () => store.close() };
  } catch (err) {
    await store.close();
    throw err;
  }
}

export interface SigningService {
  readonly authorityIdentifier: string;
  readonly signer: CredentialSigner;
  /** With endorseExisting: how many members this start endorsed as the store holds them. */
  readonly endorsedExisting: number;
  close(): Promise<void>;
}

/**
 * `relay authority`: a process that only signs, for the forwarding relays of a PostgreSQL store
 * (no WebSocket listener, no data folder). The store's project must exist (the first relay records
 * it and mints the admin ticket) and be this key's.
 */
export async function openSigningService(o: { location: PostgresLocation; keyFile: string; now: () => number; logger: Logger; credentialTtlMs?: number; endorseExisting?: boolean }): Promise<SigningService> {
  const { identity } = loadProjectKey(o.keyFile, o.keyFile, { create: false });
  const { PgStore } = await import('./pg-store.js');
  const { store } = await PgStore.open(o.location, { now: o.now(), logger: o.logger.child({ component: 'store' }) });
  let endorsedExisting = 0;
  try {
    if ((await store.project()) === undefined) {
      throw wicketError('WICKET_ERR_STORE', `the store ${o.location.shown} holds no project yet: start the first relay on it (\`relay start --store …\`), which records the project and mints the admin ticket`);
    }
    // Refuses another project's key, and records the public key where the store lacks it.
    await store.claimProject(identity.identifier, identity.publicKey, o.now());
    if (o.endorseExisting === true) endorsedExisting = await endorseExistingMembers(store, identity);
  } catch (err) {
    await store.close();
    throw err;
  }
  const signer = new CredentialSigner({ identity, queue: store.credentials, logger: o.logger.child({ component: 'authority' }), now: o.now, ...ttlOf(o) });
  signer.start();
  return {
    authorityIdentifier: identity.identifier,
    signer,
    endorsedExisting,
    close: async () => {
      await signer.stop();
      await store.close();
    },
  };
}

/**
 * `relay authority --endorse-existing`: vouches for every live member the store holds now that has
 * no endorsement (members enrolled before endorsements existed), with its current attributes. The
 * operator's word that the store is as it should be; after it, the signer believes only what it
 * endorsed again.
 */
async function endorseExistingMembers(store: PgStore, identity: Identity): Promise<number> {
  const endorser = new Endorser(identity);
  let endorsed = 0;
  for (const member of await store.listMembers()) {
    if (member.revokedAt !== undefined || member.attributes[RELAY_ID_ATTRIBUTE] !== undefined) continue;
    if (endorser.verifies(await store.endorsements.read('member', member.identifier), 'member', member.identifier)) continue;
    const statement = memberStatementText({ identifier: member.identifier, publicKey: member.publicKey.toString('hex'), attributes: member.attributes });
    await store.endorsements.write(endorser.endorse('member', member.identifier, statement));
    endorsed++;
  }
  return endorsed;
}
