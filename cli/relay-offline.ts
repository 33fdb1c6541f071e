import { existsSync } from 'node:fs';
import { destination, pino, type Logger } from 'pino';
import { wicketError } from '../protocol/errors.js';
import { loadAuthorityKey } from '../relay/authority/authority-key.js';
import { Authority } from '../relay/authority/authority.js';
import { SqliteStore } from '../relay/authority/sqlite-store.js';
import { checkDataDirAccess, readRelayConfig, relayDataPaths } from '../relay/data-dir.js';
import { chosenLogLevel, createLogger } from './logger.js';

// The authority opened straight from a relay data folder, for `relay ticket create` and
// `relay member …` on the relay host. It never creates anything: the folder must come from a
// `relay start`, which also wrote relay.json (the URL and fingerprint tickets carry).

export interface OfflineAuthority {
  readonly authority: Authority;
  close(): Promise<void>;
}

export function openOfflineAuthority(dataDir: string, logger: Logger = quietLogger()): OfflineAuthority {
  const paths = relayDataPaths(dataDir);
  // existsSync says false for a folder this user may not enter: say so, not "no authority".
  if (existsSync(dataDir)) checkDataDirAccess(dataDir);
  if (!existsSync(paths.authorityKey)) {
    throw wicketError('WICKET_ERR_ARGUMENT', `${dataDir} holds no relay authority: run \`relay start --data ${dataDir}\` first`);
  }
  const config = readRelayConfig(paths);
  const identity = loadAuthorityKey(paths.authorityKey);
  const store = new SqliteStore(paths.store);
  const authority = new Authority({
    identity,
    store,
    logger,
    endpoint: { url: config.url, ...(config.fingerprint === undefined ? {} : { fingerprint: Buffer.from(config.fingerprint, 'hex') }) },
  });
  return { authority, close: () => store.close() };
}

/** Offline commands print their result on stdout; their logs stay at warn unless asked. */
function quietLogger(): Logger {
  return chosenLogLevel() === undefined ? pino({ level: 'warn', formatters: { level: (label) => ({ level: label }) } }, destination(2)) : createLogger('relay');
}
