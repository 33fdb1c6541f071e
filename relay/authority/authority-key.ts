import { closeSync, linkSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { wicketError } from '../../protocol/errors.js';
import { Identity } from '../../protocol/identity.js';
import { Secret } from '../../protocol/secret.js';

// The project authority's Ed25519 identity, kept as its raw 32-byte seed in DIR/authority.key with
// mode 0600. Created at most once: the file is written under a temporary name and hard-linked into
// place, so two processes starting at once cannot both create (and disagree on) the authority.

export const AUTHORITY_KEY_FILE = 'authority.key';

export interface LoadedAuthorityKey {
  readonly identity: Identity;
  /** True when this call created the key (the relay's first start). */
  readonly created: boolean;
}

/** Reads the seed, refusing a file other users can read (they could impersonate the authority). */
export function loadAuthorityKey(path: string): Identity {
  const mode = statSync(path).mode;
  if ((mode & 0o077) !== 0) {
    throw wicketError('WICKET_ERR_KEY_FILE_PERMISSIONS', `${path} has mode ${(mode & 0o777).toString(8)}; run chmod 600 ${path}`);
  }
  const seed = readFileSync(path);
  try {
    return Identity.fromSeed(new Secret(seed));
  } finally {
    seed.fill(0);
  }
}

export function loadOrCreateAuthorityKey(path: string): LoadedAuthorityKey {
  try {
    return { identity: loadAuthorityKey(path), created: false };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const identity = Identity.generate();
  const temporary = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  const fd = openSync(temporary, 'wx', 0o600);
  const seed = identity.exportSeed().reveal();
  try {
    writeSync(fd, seed);
  } finally {
    seed.fill(0);
    closeSync(fd);
  }
  try {
    linkSync(temporary, path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    // Another process created it first: theirs is the authority.
    return { identity: loadAuthorityKey(path), created: false };
  } finally {
    unlinkSync(temporary);
  }
  return { identity, created: true };
}

export const AUTHORITY_KEY_OPTION = '--authority-key';

/**
 * The project key a relay (or an offline command) uses: `--authority-key FILE` when given, else
 * DIR/authority.key, made on the first start. Relays sharing one PostgreSQL store share the key
 * this way today; it is the one place keys are chosen, so that forwarding relays can later run
 * without one. A given FILE must exist (a typo must not mint a new project) and be 0600.
 */
export function loadProjectKey(dataDirKeyFile: string, keyFile: string | undefined, o: { create: boolean }): LoadedAuthorityKey {
  if (keyFile === undefined) return o.create ? loadOrCreateAuthorityKey(dataDirKeyFile) : { identity: loadAuthorityKey(dataDirKeyFile), created: false };
  try {
    return { identity: loadAuthorityKey(keyFile), created: false };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    throw wicketError('WICKET_ERR_ARGUMENT', `${AUTHORITY_KEY_OPTION} ${keyFile} does not exist; copy the first relay's DATA/${AUTHORITY_KEY_FILE} there (mode 0600)`);
  }
}
