import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  existsSync,
  fstatSync,
  fsyncSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';
import { wicketError, isWicketError, type WicketError } from '../protocol/errors.js';
import { Identity, parseIdentifier, type Identifier } from '../protocol/identity.js';
import { ED25519_PUBLIC_KEY_LEN, ENROLLMENT_FILE_MAX_BYTES, MAX_CREDENTIAL_LEN, MAX_RELAY_URL_LEN, MAX_TICKET_RELAYS, RELAY_CERT_FINGERPRINT_LEN } from '../protocol/limits.js';
import type { TicketRelay } from '../protocol/ticket.js';
import { Secret } from '../protocol/secret.js';

// The agent's home ($WICKET_HOME, default ~/.wicket): its identity key and its enrollment.
//
//   identity.key      raw 32-byte Ed25519 seed, mode 0600, created once and never rewritten
//   enrollment.json   relay URL(s), pinned relay certificate(s) and authority, identifier, current
//                     credential; mode 0600, replaced atomically (write a temp file, rename)
//   control.sock      the running node's control socket (created by the node, not here)
//   node.yaml         the node config when no --config is given (or node.json; agent/config-file.ts)
//
// DESIGN.md property 8: identity keys at rest with mode 0600. A key file that others can read is
// refused rather than used, because using it would hide that the key may already be copied.

const IDENTITY_FILE = 'identity.key';
const ENROLLMENT_FILE = 'enrollment.json';
const CONTROL_SOCKET = 'control.sock';
const SEED_LEN = 32;

export interface Enrollment {
  relayUrl: string;
  relayCertFingerprint?: Buffer;
  authorityPublicKey: Buffer;
  identifier: Identifier;
  credential: Buffer;
  enrolledAt: number;
  /** The project's other relays from the ticket, tried in order when relayUrl is lost (issue 14). */
  otherRelays?: TicketRelay[];
}

/** $WICKET_HOME, or ~/.wicket. */
export function defaultHome(): string {
  const fromEnv = process.env.WICKET_HOME;
  return fromEnv !== undefined && fromEnv !== '' ? fromEnv : join(homedir(), '.wicket');
}

/** On-disk form of Enrollment: buffers as base64, versioned so a later format can migrate. */
interface EnrollmentFile {
  version: 1;
  relayUrl: string;
  relayCertFingerprint?: string;
  authorityPublicKey: string;
  identifier: string;
  credential: string;
  enrolledAt: number;
  /** Absent in homes enrolled before tickets listed several relays. */
  otherRelays?: { url: string; fingerprint?: string }[];
}

export class Vault {
  readonly home: string;
  readonly controlSocketPath: string;
  #identity: Identity | undefined;

  private constructor(home: string) {
    this.home = home;
    this.controlSocketPath = join(home, CONTROL_SOCKET);
  }

  /**
   * Opens (creating with mode 0700 if needed) the agent home. A home made by an older version or by
   * hand that others can enter is narrowed to 0700 when it is clearly ours (just made, or holding
   * our identity key), never a shared sticky folder such as /tmp.
   */
  static open(home: string): Vault {
    let created: string | undefined;
    try {
      created = mkdirSync(home, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw permissionError(err, home, 'create the agent home (write and search on its parent folder)') ??
        wicketError('WICKET_ERR_CONFIG', `cannot create the agent home ${home}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, err);
    }
    let stat;
    try {
      stat = statSync(home);
    } catch (err) {
      throw permissionError(err, home, 'reach the agent home (search on every parent folder)') ?? err;
    }
    if (!stat.isDirectory()) throw wicketError('WICKET_ERR_CONFIG', `agent home ${home} is not a directory`);
    const ours = created !== undefined || existsSync(join(home, IDENTITY_FILE));
    if (ours && (stat.mode & 0o1077) !== 0 && (stat.mode & 0o1000) === 0) {
      try {
        chmodSync(home, 0o700);
      } catch (err) {
        throw permissionError(err, home, 'narrow the mode of the agent home to 0700 (only its owner may)') ?? err;
      }
    }
    return new Vault(home);
  }

  /** Loads the identity, creating it once (mode 0600) when there is none. */
  identity(): Identity {
    if (this.#identity !== undefined) return this.#identity;
    const path = join(this.home, IDENTITY_FILE);
    let seed = this.#readKeyFile(path);
    if (seed === undefined) {
      this.#createKeyFile(path);
      seed = this.#readKeyFile(path);
      if (seed === undefined) throw wicketError('WICKET_ERR_KEY_INVALID', `identity key ${path} vanished right after it was created`);
    }
    try {
      this.#identity = Identity.fromSeed(new Secret(seed));
    } finally {
      seed.fill(0);
    }
    return this.#identity;
  }

  /** The saved enrollment, or undefined when this home was never enrolled. */
  enrollment(): Enrollment | undefined {
    const path = join(this.home, ENROLLMENT_FILE);
    let text: string;
    try {
      const stat = lstatSync(path);
      if (!stat.isFile()) throw wicketError('WICKET_ERR_CONFIG', `${path} is not a regular file`);
      if (stat.size > ENROLLMENT_FILE_MAX_BYTES) throw wicketError('WICKET_ERR_CONFIG', `${path} is ${stat.size} bytes, cap ${ENROLLMENT_FILE_MAX_BYTES}`);
      text = readFileSync(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      if (isWicketError(err)) throw err;
      throw permissionError(err, path, 'read the enrollment (r on the file, x on the agent home)') ??
        wicketError('WICKET_ERR_CONFIG', `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, err);
    }
    return parseEnrollmentFile(text, path);
  }

  requireEnrollment(): Enrollment {
    const e = this.enrollment();
    if (e === undefined) throw wicketError('WICKET_ERR_NOT_ENROLLED', `no enrollment in ${this.home}; run \`agent enroll --ticket …\` first`);
    return e;
  }

  saveEnrollment(e: Enrollment): void {
    const file: EnrollmentFile = {
      version: 1,
      relayUrl: e.relayUrl,
      ...(e.relayCertFingerprint !== undefined ? { relayCertFingerprint: e.relayCertFingerprint.toString('base64') } : {}),
      authorityPublicKey: e.authorityPublicKey.toString('base64'),
      identifier: e.identifier,
      credential: e.credential.toString('base64'),
      enrolledAt: e.enrolledAt,
      ...(e.otherRelays !== undefined && e.otherRelays.length > 0
        ? { otherRelays: e.otherRelays.map((r) => ({ url: r.url, ...(r.fingerprint !== undefined ? { fingerprint: r.fingerprint.toString('base64') } : {}) })) }
        : {}),
    };
    // Round-trip through the parser so a bad value never reaches the disk.
    const text = JSON.stringify(file, null, 2) + '\n';
    parseEnrollmentFile(text, ENROLLMENT_FILE);
    this.#writeAtomically(join(this.home, ENROLLMENT_FILE), Buffer.from(text, 'utf8'));
  }

  /**
   * Replaces the stored relays (a relay listed the project's relays, relay-list.ts), first to dial
   * first, keeping everything else; atomic like every write of the enrollment.
   */
  saveRelays(relays: readonly TicketRelay[]): void {
    const [first, ...others] = relays;
    if (first === undefined) throw wicketError('WICKET_ERR_INTERNAL', 'an enrollment keeps at least one relay');
    const { relayCertFingerprint: _old, otherRelays: _others, ...e } = this.requireEnrollment();
    this.saveEnrollment({ ...e, relayUrl: first.url, ...(first.fingerprint === undefined ? {} : { relayCertFingerprint: first.fingerprint }), otherRelays: others });
  }

  /** Replaces the stored credential (after a refresh from the relay), keeping everything else. */
  saveCredential(credential: Buffer): void {
    const e = this.requireEnrollment();
    this.saveEnrollment({ ...e, credential: Buffer.from(credential) });
  }

  #readKeyFile(path: string): Buffer | undefined {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw permissionError(err, path, 'read the identity key (r on the file, x on the agent home)') ??
        wicketError('WICKET_ERR_KEY_INVALID', `cannot read identity key ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, err);
    }
    try {
      // Check the mode of the file we actually opened (no race between stat and read).
      const stat = fstatSync(fd);
      if (!stat.isFile()) throw wicketError('WICKET_ERR_KEY_INVALID', `identity key ${path} is not a regular file`);
      if ((stat.mode & 0o077) !== 0) {
        throw wicketError(
          'WICKET_ERR_KEY_FILE_PERMISSIONS',
          `identity key ${path} has mode ${(stat.mode & 0o777).toString(8).padStart(4, '0')}; others may read it. Run \`chmod 600 ${path}\``,
        );
      }
      if (stat.size !== SEED_LEN) throw wicketError('WICKET_ERR_KEY_INVALID', `identity key ${path} is ${stat.size} bytes, expected ${SEED_LEN}`);
      const seed = Buffer.alloc(SEED_LEN);
      const read = readSyncFully(fd, seed);
      if (read !== SEED_LEN) throw wicketError('WICKET_ERR_KEY_INVALID', `identity key ${path} is truncated`);
      return seed;
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Creates the key file without ever exposing a partial one: the seed goes to a private temp
   * file that is then hard-linked into place. link() fails if the key already exists, so two
   * agents starting at once in one home end up sharing the first key instead of overwriting it.
   */
  #createKeyFile(path: string): void {
    const seed = Identity.generate().exportSeed().reveal();
    const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      writeFileDurably(tmp, seed);
      try {
        linkSync(tmp, path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
    } catch (err) {
      throw permissionError(err, path, 'create the identity key (w and x on the agent home)') ??
        wicketError('WICKET_ERR_KEY_INVALID', `cannot create identity key ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, err);
    } finally {
      seed.fill(0);
      rmSync(tmp, { force: true });
    }
  }

  #writeAtomically(path: string, data: Buffer): void {
    const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      writeFileDurably(tmp, data);
      renameSync(tmp, path);
    } catch (err) {
      rmSync(tmp, { force: true });
      throw permissionError(err, path, 'write the enrollment (w and x on the agent home)') ?? wicketError('WICKET_ERR_CONFIG', `cannot write ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, err);
    }
  }
}

/**
 * EACCES/EPERM mean "this user may not", never "the file is corrupt": reported as
 * WICKET_ERR_PERMISSION naming the path, the user and the permission needed, so nobody re-creates
 * an identity or re-enrolls over what is only a chown away. Undefined for any other error.
 */
export function permissionError(err: unknown, path: string, needed: string): WicketError | undefined {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code !== 'EACCES' && code !== 'EPERM') return undefined;
  return wicketError('WICKET_ERR_PERMISSION', `${currentUser()} may not ${needed}: ${path} (${code})`, err);
}

function currentUser(): string {
  try {
    return `user ${userInfo().username} (uid ${process.getuid?.() ?? '?'})`;
  } catch {
    return `uid ${process.getuid?.() ?? '?'}`;
  }
}

/** Writes a new file with mode 0600 (exclusive create) and fsyncs it before it is renamed/linked. */
function writeFileDurably(path: string, data: Buffer): void {
  const fd = openSync(path, 'wx', 0o600);
  try {
    // The umask may only remove bits; chmod makes the intent explicit for odd umasks too.
    chmodSync(path, 0o600);
    let offset = 0;
    while (offset < data.length) offset += writeSync(fd, data, offset, data.length - offset);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function readSyncFully(fd: number, target: Buffer): number {
  let total = 0;
  while (total < target.length) {
    const n = readSync(fd, target, total, target.length - total, null);
    if (n === 0) break;
    total += n;
  }
  return total;
}

function parseEnrollmentFile(text: string, path: string): Enrollment {
  const bad = (detail: string): never => {
    throw wicketError('WICKET_ERR_CONFIG', `${path}: ${detail}; re-enroll with \`agent enroll\``);
  };
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return bad('not valid JSON');
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return bad('not a JSON object');
  const f = raw as Record<string, unknown>;
  if (f.version !== 1) return bad(`unsupported version ${JSON.stringify(f.version)}`);
  if (typeof f.relayUrl !== 'string' || f.relayUrl.length === 0 || f.relayUrl.length > MAX_RELAY_URL_LEN) return bad('relayUrl is missing or too long');
  const bytes = (name: string, value: unknown, length?: number, max?: number): Buffer => {
    if (typeof value !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(value)) return bad(`${name} is not base64`);
    const b = Buffer.from(value, 'base64');
    if (length !== undefined && b.length !== length) return bad(`${name} must be ${length} bytes`);
    if (max !== undefined && (b.length === 0 || b.length > max)) return bad(`${name} must be 1..${max} bytes`);
    return b;
  };
  const authorityPublicKey = bytes('authorityPublicKey', f.authorityPublicKey, ED25519_PUBLIC_KEY_LEN);
  const credential = bytes('credential', f.credential, undefined, MAX_CREDENTIAL_LEN);
  let identifier: Identifier;
  try {
    identifier = parseIdentifier(f.identifier as string);
  } catch {
    return bad('identifier is invalid');
  }
  if (typeof f.enrolledAt !== 'number' || !Number.isSafeInteger(f.enrolledAt) || f.enrolledAt < 0) return bad('enrolledAt is invalid');
  const e: Enrollment = { relayUrl: f.relayUrl, authorityPublicKey, identifier, credential, enrolledAt: f.enrolledAt };
  if (f.relayCertFingerprint !== undefined) e.relayCertFingerprint = bytes('relayCertFingerprint', f.relayCertFingerprint, RELAY_CERT_FINGERPRINT_LEN);
  if (f.otherRelays !== undefined) {
    if (!Array.isArray(f.otherRelays) || f.otherRelays.length >= MAX_TICKET_RELAYS) return bad(`otherRelays must be a list of at most ${MAX_TICKET_RELAYS - 1} relays`);
    e.otherRelays = f.otherRelays.map((r: unknown, i): TicketRelay => {
      const relay = (typeof r === 'object' && r !== null ? r : {}) as Record<string, unknown>;
      if (typeof relay.url !== 'string' || relay.url.length === 0 || relay.url.length > MAX_RELAY_URL_LEN) return bad(`otherRelays[${i}].url is missing or too long`);
      return relay.fingerprint === undefined ? { url: relay.url } : { url: relay.url, fingerprint: bytes(`otherRelays[${i}].fingerprint`, relay.fingerprint, RELAY_CERT_FINGERPRINT_LEN) };
    });
  }
  return e;
}
