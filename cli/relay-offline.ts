import { existsSync } from 'node:fs';
import { destination, pino, type Logger } from 'pino';
import { wicketError } from '../protocol/errors.js';
import { loadProjectKey } from '../relay/authority/authority-key.js';
import { Authority } from '../relay/authority/authority.js';
import { forwardingAuthority } from '../relay/authority/authority-role.js';
import { openAuthorityStore } from '../relay/authority/open-store.js';
import { checkDataDirAccess, readRelayConfig, relayDataPaths } from '../relay/data-dir.js';
import { chosenLogLevel, createLogger } from './logger.js';
import { authorityKeyFileOf, storeLocationOf, type StoreFlags } from './relay-args.js';

// The authority opened straight from a relay data folder, for `relay ticket create` and
// `relay member …` on the relay host. It never creates anything: the folder must come from a
// `relay start`, which also wrote relay.json (the URL and fingerprint tickets carry). With
// `--store postgres://…` it opens that store (checking the project's key like a relay does), so
// a revocation made here reaches every relay on the store at once (NOTIFY). A forwarding relay's
// folder holds no key: there it opens the store's project with its public key alone, which lists
// and revokes tickets and members; making a ticket needs the key (WICKET_ERR_SIGNER_ONLY), since
// the signer endorses every ticket (relay/authority/endorsement.ts); an admin's `agent ticket
// create` needs no key anywhere (its grant goes to the signer: relay/authority/ticket-maker.ts).

export interface OfflineAuthority {
  readonly authority: Authority;
  close(): Promise<void>;
}

export async function openOfflineAuthority(dataDir: string, flags: StoreFlags = {}, logger: Logger = quietLogger()): Promise<OfflineAuthority> {
  const location = storeLocationOf(flags);
  const keyFile = authorityKeyFileOf(flags);
  const paths = relayDataPaths(dataDir);
  // existsSync says false for a folder this user may not enter: say so, not "no authority".
  if (existsSync(dataDir)) checkDataDirAccess(dataDir);
  const forwarding = location.kind === 'postgres' && keyFile === undefined && !existsSync(paths.authorityKey);
  if (keyFile === undefined && !existsSync(paths.authorityKey) && !(forwarding && existsSync(paths.relayConfig))) {
    throw wicketError('WICKET_ERR_ARGUMENT', `${dataDir} holds no relay authority: run \`relay start --data ${dataDir}\` first`);
  }
  const config = readRelayConfig(paths);
  const endpoint = { url: config.url, ...(config.fingerprint === undefined ? {} : { fingerprint: Buffer.from(config.fingerprint, 'hex') }) };
  if (location.kind === 'postgres' && forwarding) {
    const { PgStore } = await import('../relay/authority/pg-store.js');
    const { store } = await PgStore.open(location, { now: Date.now(), logger });
    try {
      const project = await store.project();
      if (project === undefined) throw wicketError('WICKET_ERR_STORE', `the store ${location.shown} holds no project: run \`relay start --data ${dataDir} --store …\` first`);
      const authority = forwardingAuthority(store, project, location.shown, { now: Date.now, logger });
      authority.setEndpoint(endpoint);
      return { authority, close: () => store.close() };
    } catch (err) {
      await store.close();
      throw err;
    }
  }
  const { identity } = loadProjectKey(paths.authorityKey, keyFile, { create: false });
  const { store } = await openAuthorityStore(location, { sqlitePath: paths.store, authority: identity.identifier, keyCreated: false, now: Date.now(), logger });
  const authority = new Authority({ identity, store, logger, endpoint });
  return { authority, close: () => store.close() };
}

/** Offline commands print their result on stdout; their logs stay at warn unless asked. */
function quietLogger(): Logger {
  return chosenLogLevel() === undefined ? pino({ level: 'warn', formatters: { level: (label) => ({ level: label }) } }, destination(2)) : createLogger('relay');
}
