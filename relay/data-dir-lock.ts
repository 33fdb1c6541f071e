import { randomBytes } from 'node:crypto';
import { linkSync, openSync, readFileSync, realpathSync, unlinkSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { wicketError } from '../protocol/errors.js';
import type { RelayDataPaths } from './data-dir.js';

// One relay per data folder. Two relays on one authority store would each keep their own live
// connections, revocation cursor and relay.json, and mint tickets with whichever URL wrote last:
// the second `relay start` is refused with WICKET_ERR_DATA_DIR_LOCKED, naming the holder's pid.
//
// The lock is DIR/relay.lock holding the relay's pid. It is created whole or not at all: the pid
// goes into a private temporary file that is then hard-linked to relay.lock (link fails if the
// name exists, like O_EXCL, and nobody ever reads a half-written pid). A lock whose pid is not a
// live process is stale (a relay killed with SIGKILL, a power cut) and is taken over with a log
// line; so is one naming our own pid that this process does not hold (a container's relay is
// pid 1 on every start). It is removed on close, and on any process exit that runs 'exit' hooks.
//
// The offline commands (`relay ticket …`, `relay member …`) do not take it: SQLite in WAL mode is
// safe for them while the relay runs, and they must keep working then.

export interface DataDirLock {
  readonly path: string;
  /** Removes the lock if it is still ours; idempotent. */
  release(): void;
}

/** Locks held by this process, by real path: two in-process relays on one folder are refused too. */
const heldHere = new Set<string>();

const TAKE_ATTEMPTS = 3;

type Holder = { readonly kind: 'gone' } | { readonly kind: 'pid'; readonly pid: number } | { readonly kind: 'garbage' };

function readHolder(path: string): Holder {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'gone' };
    throw wicketError('WICKET_ERR_STORE', `cannot read the relay lock ${path}`, err);
  }
  const pid = /^\s*(\d{1,10})\s*$/.exec(text)?.[1];
  return pid === undefined || Number(pid) < 1 ? { kind: 'garbage' } : { kind: 'pid', pid: Number(pid) };
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, under another user (a relay run by someone else on this folder).
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Creates `path` holding our pid, atomically; false when it already exists. */
function tryCreate(path: string): boolean {
  const content = `${process.pid}\n`;
  const temporary = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}`);
  writeFileSync(temporary, content, { mode: 0o600, flag: 'wx' });
  try {
    linkSync(temporary, path);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    // A file system without hard links: O_EXCL, with a moment where the file is still empty.
    if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'ENOSYS') return createExclusive(path, content);
    throw wicketError('WICKET_ERR_STORE', `cannot create the relay lock ${path}`, err);
  } finally {
    unlinkSync(temporary);
  }
}

function createExclusive(path: string, content: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw wicketError('WICKET_ERR_STORE', `cannot create the relay lock ${path}`, err);
  }
  try {
    writeSync(fd, content);
  } finally {
    closeSync(fd);
  }
  return true;
}

function removeIfOurs(path: string): void {
  const holder = readHolder(path);
  if (holder.kind === 'pid' && holder.pid === process.pid) {
    try {
      unlinkSync(path);
    } catch {
      // Already gone: nothing to release.
    }
  }
}

/** Takes the data folder's lock for this process, or throws WICKET_ERR_DATA_DIR_LOCKED. */
export function lockDataDir(paths: RelayDataPaths, logger: Logger): DataDirLock {
  const path = paths.lock;
  const key = join(realpathSync(paths.dir), basename(path));
  for (let attempt = 0; attempt < TAKE_ATTEMPTS; attempt++) {
    if (!heldHere.has(key) && tryCreate(path)) return held(path, key);
    const holder = readHolder(path);
    if (holder.kind === 'gone') continue; // released meanwhile: try again
    if (holder.kind === 'pid') {
      const live = holder.pid === process.pid ? heldHere.has(key) : processExists(holder.pid);
      if (live) {
        throw wicketError(
          'WICKET_ERR_DATA_DIR_LOCKED',
          `the relay data folder ${paths.dir} is in use by relay pid ${holder.pid} (${path}); stop that relay or use another --data folder`,
        );
      }
    }
    logger.warn(
      { lock: path, ...(holder.kind === 'pid' ? { stalePid: holder.pid } : { content: 'not a pid' }) },
      'taking over the data folder lock of a relay that is no longer running',
    );
    try {
      unlinkSync(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw wicketError('WICKET_ERR_STORE', `cannot remove the stale relay lock ${path}`, err);
    }
  }
  throw wicketError('WICKET_ERR_DATA_DIR_LOCKED', `could not take ${path} in ${TAKE_ATTEMPTS} attempts: another relay is starting on ${paths.dir}`);
}

function held(path: string, key: string): DataDirLock {
  heldHere.add(key);
  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    process.off('exit', release);
    heldHere.delete(key);
    removeIfOurs(path);
  };
  // A relay ended by process.exit (a second signal, a fatal error) leaves no lock behind.
  process.on('exit', release);
  return { path, release };
}
