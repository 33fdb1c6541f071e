import { accessSync, chmodSync, closeSync, constants, existsSync, mkdirSync, openSync, readFileSync, renameSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { wicketError } from '../protocol/errors.js';
import type { Secret } from '../protocol/secret.js';
import { AUTHORITY_KEY_FILE } from './authority/authority-key.js';

// The relay's data folder (default $WICKET_RELAY_DATA or ~/.wicket-relay, mode 0700):
//
//   authority.key     the project authority's Ed25519 seed (0600)
//   authority.db      SQLite store: members, tickets (public keys only, no secrets), revocations, audit
//   tls/cert.pem      the generated self-signed certificate (when the relay made one)
//   tls/key.pem       its private key (0600)
//   relay.json        the public URL and certificate fingerprint, so `relay ticket create`
//                     can mint tickets from this folder while the relay runs
//   admin-ticket      the one-time admin ticket of the first start (0600)
//   relay.lock        the running relay's pid, held for its life (data-dir-lock.ts): a second
//                     `relay start` on this folder is refused

export interface RelayDataPaths {
  readonly dir: string;
  readonly authorityKey: string;
  readonly store: string;
  readonly tlsDir: string;
  readonly tlsCert: string;
  readonly tlsKey: string;
  readonly relayConfig: string;
  readonly adminTicket: string;
  readonly lock: string;
}

/** What `relay start` writes for offline tools; fingerprint is hex SHA-256 of the DER certificate. */
export interface RelayConfigFile {
  readonly url: string;
  readonly fingerprint?: string;
  readonly authority: string;
  readonly listen: string;
  readonly startedAt: string;
}

export function defaultDataDir(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env.WICKET_RELAY_DATA;
  return fromEnv !== undefined && fromEnv !== '' ? fromEnv : join(homedir(), '.wicket-relay');
}

export function relayDataPaths(dir: string): RelayDataPaths {
  return {
    dir,
    authorityKey: join(dir, AUTHORITY_KEY_FILE),
    store: join(dir, 'authority.db'),
    tlsDir: join(dir, 'tls'),
    tlsCert: join(dir, 'tls', 'cert.pem'),
    tlsKey: join(dir, 'tls', 'key.pem'),
    relayConfig: join(dir, 'relay.json'),
    adminTicket: join(dir, 'admin-ticket'),
    lock: join(dir, 'relay.lock'),
  };
}

export function ensureDataDir(dir: string): RelayDataPaths {
  let created: string | undefined;
  try {
    created = mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    checkDataDirAccess(dir, err);
    throw wicketError('WICKET_ERR_STORE', `cannot create the relay data folder ${dir}`, err);
  }
  checkDataDirAccess(dir);
  const paths = relayDataPaths(dir);
  narrowExistingModes(paths, created !== undefined);
  return paths;
}

/**
 * EACCES/EPERM on the data folder means "this user may not", never "no authority here" or "the
 * store is broken": WICKET_ERR_PERMISSION naming the folder and what the relay needs there.
 * `err` is a failure already met (mkdir); without one the folder's access is checked now.
 */
export function checkDataDirAccess(dir: string, err?: unknown): void {
  let code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (err === undefined) {
    try {
      accessSync(dir, constants.R_OK | constants.W_OK | constants.X_OK);
    } catch (failure) {
      code = (failure as NodeJS.ErrnoException).code;
    }
  }
  if (code !== 'EACCES' && code !== 'EPERM') return;
  throw wicketError('WICKET_ERR_PERMISSION', `uid ${process.getuid?.() ?? '?'} may not use the relay data folder ${dir}: the relay needs read, write and search (rwx) on it (${code}); run as its owner`);
}

/**
 * A data folder made by an older version (or by hand) may be open to other users, as may the files
 * it wrote then: the folder becomes 0700 and the files that are not keys 0600. (A key file others
 * could read is refused instead, by the code that loads it: it may have leaked, and the operator
 * must know.) A folder is only narrowed when it is clearly ours: just made, or holding the
 * authority key, and never a shared sticky folder such as /tmp.
 */
function narrowExistingModes(paths: RelayDataPaths, justCreated: boolean): void {
  const folder = statSync(paths.dir);
  const ours = justCreated || existsSync(paths.authorityKey);
  if (ours && (folder.mode & 0o1077) !== 0 && (folder.mode & 0o1000) === 0) chmodSync(paths.dir, 0o700);
  if (existsSync(paths.tlsDir)) chmodSync(paths.tlsDir, 0o700);
  for (const file of [paths.tlsCert, paths.relayConfig, paths.adminTicket]) {
    if (existsSync(file) && (statSync(file).mode & 0o077) !== 0) chmodSync(file, 0o600);
  }
}

export function writeRelayConfig(paths: RelayDataPaths, config: RelayConfigFile): void {
  const temporary = `${paths.relayConfig}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  renameSync(temporary, paths.relayConfig);
}

export function readRelayConfig(paths: RelayDataPaths): RelayConfigFile {
  let text: string;
  try {
    text = readFileSync(paths.relayConfig, 'utf8');
  } catch {
    throw wicketError('WICKET_ERR_ARGUMENT', `${paths.relayConfig} not found: run \`relay start --data ${paths.dir}\` once first`);
  }
  const parsed = JSON.parse(text) as Partial<RelayConfigFile>;
  if (typeof parsed.url !== 'string' || typeof parsed.authority !== 'string') {
    throw wicketError('WICKET_ERR_STORE', `${paths.relayConfig} is damaged; restart the relay to rewrite it`);
  }
  return parsed as RelayConfigFile;
}

/** Writes a secret-bearing file with mode 0600 (created that way, so it is never briefly readable). */
export function writeSecretFile(path: string, content: Secret<string>): void {
  const fd = openSync(path, 'w', 0o600);
  try {
    chmodSync(path, 0o600);
    writeSync(fd, `${content.reveal()}\n`);
  } finally {
    closeSync(fd);
  }
}
