import { createHash, hkdfSync } from 'node:crypto';
import { ByteReader } from './byte-reader.js';
import { ByteWriter } from './byte-writer.js';
import { isWicketError, wicketError } from './errors.js';
import { Identity, verifySignature } from './identity.js';
import {
  ED25519_PUBLIC_KEY_LEN,
  MAX_RELAY_URL_LEN,
  MAX_TICKET_RELAYS,
  MAX_TICKET_TEXT_LEN,
  RELAY_CERT_FINGERPRINT_LEN,
  TICKET_CHECKSUM_LEN,
  TICKET_ID_LEN,
  TICKET_SECRET_LEN,
} from './limits.js';
import { Secret } from './secret.js';

// An enrollment ticket: everything a new agent needs to reach the relay, trust the project
// authority, and redeem a one-time secret (protocol/README.md, "Ticket"):
//
//   body   = version u8 (=1) ‖ flags u8 (bit 0: fingerprint present; other bits zero)
//            ‖ relayUrl string16 ‖ [relay certificate fingerprint 32, when bit 0]
//            ‖ authority public key 32 ‖ ticket id 16 ‖ secret 32 ‖ expiresAt u64 ms
//   ticket = "wkt1_" ‖ base64url(body ‖ SHA-256(body)[0..4])        no padding, canonical
//
// Version 2 lists several relays of one project (they share a store), the first to dial first:
//
//   body   = version u8 (=2) ‖ flags u8 (=0) ‖ count u8 (1..MAX_TICKET_RELAYS)
//            ‖ count × (entry flags u8 (bit 0: fingerprint) ‖ relayUrl string16 ‖ [fingerprint 32])
//            ‖ authority public key 32 ‖ ticket id 16 ‖ secret 32 ‖ expiresAt u64 ms
//
// A ticket naming one relay is still written as version 1, so agents older than version 2 read it.
//
// Tickets are pasted by people, so the checksum exists to turn a truncated or mangled paste into
// an error that says so, before anything reaches the relay. It is not a security measure: the
// authority checks possession of the secret, and the expiry.
//
// The secret never leaves the agent: it derives an Ed25519 "ticket key", of which the authority
// keeps only the PUBLIC key; the agent signs ticketProofMessage (authority, ticket id, its own
// member key) with it. A relay, even a compromised one, learns nothing that enrolls another key.

export const TICKET_PREFIX = 'wkt1_';

/** One more relay of the project a ticket names (version 2). */
export interface TicketRelay {
  url: string;
  fingerprint?: Buffer;
}

export interface Ticket {
  /** ws:// or wss:// URL of the relay (the first of the list: dialled first). */
  relayUrl: string;
  /** SHA-256 of the relay's DER certificate (32 bytes), when the relay's certificate is pinned. */
  relayCertFingerprint?: Buffer;
  /** Ed25519 public key of the project authority (32 bytes), pinned at enrollment. */
  authorityPublicKey: Buffer;
  /** TICKET_ID_LEN bytes; names the ticket in the authority's store (not secret). */
  ticketId: Buffer;
  /** TICKET_SECRET_LEN bytes; the authority keeps only ticketKeyFromSecret(secret).publicKey. */
  secret: Secret<Buffer>;
  /** ms since epoch. decodeTicket does not check it: the authority does, with its clock. */
  expiresAt: number;
  /** The project's other relays, in the order to try them after relayUrl (none: a version 1 ticket). */
  otherRelays?: TicketRelay[];
}

const VERSION = 1;
const VERSION_RELAY_LIST = 2;
const FLAG_FINGERPRINT = 0x01;
/** version, flags, relay URL length. */
const HEADER_LEN = 4;
const KNOWN_FLAGS = FLAG_FINGERPRINT;
const BASE64URL_CHAR = /^[A-Za-z0-9_-]$/;

/** HKDF info naming what the ticket secret derives: the seed of the ticket key. */
export const TICKET_KEY_INFO = 'wicket ticket key v1';
/** Domain of the ticket proof, so no other signature made with a ticket key can pass for one. */
export const TICKET_PROOF_DOMAIN = Buffer.from('wicket/ticket-proof/v1\0');

/**
 * The Ed25519 key a ticket secret stands for: seed = HKDF-SHA256(secret, salt empty, info
 * TICKET_KEY_INFO, 32 bytes); the authority (at creation) and the agent derive the same key.
 */
export function ticketKeyFromSecret(secret: Secret<Buffer>): Identity {
  const seed = Buffer.from(hkdfSync('sha256', secret.reveal(), Buffer.alloc(0), TICKET_KEY_INFO, 32));
  try {
    return Identity.fromSeed(new Secret(seed));
  } finally {
    seed.fill(0);
  }
}

/**
 * What the ticket key signs to enroll `memberPublicKey`: TICKET_PROOF_DOMAIN ‖ authority public key
 * (32) ‖ ticket id (16) ‖ member public key (32): a proof enrolls that key in that project only. No
 * challenge in it (the enroll signature has one), so it stays verifiable later as evidence by
 * anyone holding the ticket's public key. Throws WICKET_ERR_ARGUMENT on a wrong length.
 */
export function ticketProofMessage(authorityPublicKey: Buffer, ticketId: Buffer, memberPublicKey: Buffer): Buffer {
  checkLength('authority public key', authorityPublicKey, ED25519_PUBLIC_KEY_LEN);
  checkLength('id', ticketId, TICKET_ID_LEN);
  checkLength('member public key', memberPublicKey, ED25519_PUBLIC_KEY_LEN);
  return Buffer.concat([TICKET_PROOF_DOMAIN, authorityPublicKey, ticketId, memberPublicKey]);
}

/** True when `proof` is the ticket key's signature of ticketProofMessage; false (never a throw) otherwise. */
export function verifyTicketProof(o: { ticketKey: Buffer; authorityPublicKey: Buffer; ticketId: Buffer; memberPublicKey: Buffer; proof: Buffer }): boolean {
  try {
    return verifySignature(o.ticketKey, ticketProofMessage(o.authorityPublicKey, o.ticketId, o.memberPublicKey), o.proof);
  } catch {
    return false;
  }
}

/**
 * A ticket id as people type it (`relay ticket revoke ID`): TICKET_ID_LEN bytes in hex, as
 * `ticket create --json` and `ticket list` print it. The id names a ticket; it is not its secret.
 * Throws WICKET_ERR_ARGUMENT without echoing the text.
 */
export function parseTicketId(text: unknown): Buffer {
  const hex = typeof text === 'string' ? text.trim().toLowerCase() : '';
  if (hex.length !== TICKET_ID_LEN * 2 || !/^[0-9a-f]+$/.test(hex)) {
    throw wicketError('WICKET_ERR_ARGUMENT', `a ticket id is ${TICKET_ID_LEN * 2} hex digits, as \`ticket list\` prints it`);
  }
  return Buffer.from(hex, 'hex');
}

/** True when the ticket's expiry has passed at `now` (ms since epoch). */
export function isTicketExpired(t: Ticket, now: number): boolean {
  return now >= t.expiresAt;
}

function checksumOf(body: Uint8Array): Buffer {
  return createHash('sha256').update(body).digest().subarray(0, TICKET_CHECKSUM_LEN);
}

/**
 * Why a relay URL is unfit for a ticket, or undefined when it is fit. Printable ASCII only, so the
 * text in the ticket is exactly what the agent dials (the URL parser would silently drop tabs and
 * newlines); no user:password (it would be a secret outside Secret); no #fragment (WebSocket
 * URLs cannot carry one).
 */
export function relayUrlProblem(url: string): string | undefined {
  if (url.length === 0) return 'relay URL is empty';
  if (!/^[\x21-\x7e]+$/.test(url)) return 'relay URL contains spaces, control or non-ASCII characters';
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'relay URL does not parse as a URL';
  }
  if (parsed.protocol !== 'ws:' && parsed.protocol !== 'wss:') {
    return `relay URL scheme is ${JSON.stringify(parsed.protocol.slice(0, 16))}, expected ws: or wss:`;
  }
  if (parsed.hostname === '') return 'relay URL has no host';
  if (parsed.username !== '' || parsed.password !== '') return 'relay URL must not carry a user name or password';
  if (url.includes('#')) return 'relay URL must not carry a #fragment';
  return undefined;
}

function checkLength(name: string, bytes: unknown, length: number): void {
  if (!(bytes instanceof Uint8Array) || bytes.length !== length) {
    throw wicketError('WICKET_ERR_ARGUMENT', `ticket ${name} must be ${length} bytes`);
  }
}

function checkRelay(url: unknown, fingerprint: unknown): void {
  const urlProblem = typeof url === 'string' ? relayUrlProblem(url) : 'relay URL is not a string';
  if (urlProblem !== undefined) throw wicketError('WICKET_ERR_ARGUMENT', urlProblem);
  if ((url as string).length > MAX_RELAY_URL_LEN) {
    throw wicketError('WICKET_ERR_ARGUMENT', `relay URL is ${(url as string).length} characters, cap ${MAX_RELAY_URL_LEN}`);
  }
  if (fingerprint !== undefined) checkLength('relay certificate fingerprint', fingerprint, RELAY_CERT_FINGERPRINT_LEN);
}

/** Encodes a ticket as printable text. Throws WICKET_ERR_ARGUMENT when a field is out of shape. */
export function encodeTicket(t: Ticket): string {
  checkRelay(t.relayUrl, t.relayCertFingerprint);
  const others = t.otherRelays ?? [];
  if (!Array.isArray(others) || 1 + others.length > MAX_TICKET_RELAYS) {
    throw wicketError('WICKET_ERR_ARGUMENT', `a ticket names at most ${MAX_TICKET_RELAYS} relays`);
  }
  for (const relay of others) checkRelay(relay?.url, relay?.fingerprint);
  const urls = [t.relayUrl, ...others.map((r) => r.url)];
  if (new Set(urls).size !== urls.length) throw wicketError('WICKET_ERR_ARGUMENT', 'a ticket names each relay URL once');
  checkLength('authority public key', t.authorityPublicKey, ED25519_PUBLIC_KEY_LEN);
  checkLength('id', t.ticketId, TICKET_ID_LEN);
  if (!(t.secret instanceof Secret)) throw wicketError('WICKET_ERR_ARGUMENT', 'ticket secret must be wrapped in Secret');
  checkLength('secret', t.secret.reveal(), TICKET_SECRET_LEN);
  if (!Number.isSafeInteger(t.expiresAt) || t.expiresAt < 0) {
    throw wicketError('WICKET_ERR_ARGUMENT', 'ticket expiresAt must be a non-negative integer (ms since epoch)');
  }

  const w = new ByteWriter();
  if (others.length === 0) {
    w.u8(VERSION).u8(t.relayCertFingerprint === undefined ? 0 : FLAG_FINGERPRINT).string16(t.relayUrl);
    if (t.relayCertFingerprint !== undefined) w.fixed(t.relayCertFingerprint);
  } else {
    w.u8(VERSION_RELAY_LIST).u8(0).u8(1 + others.length);
    for (const relay of [{ url: t.relayUrl, fingerprint: t.relayCertFingerprint }, ...others]) {
      w.u8(relay.fingerprint === undefined ? 0 : FLAG_FINGERPRINT).string16(relay.url);
      if (relay.fingerprint !== undefined) w.fixed(relay.fingerprint);
    }
  }
  w.fixed(t.authorityPublicKey).fixed(t.ticketId).fixed(t.secret.reveal()).u64(t.expiresAt);
  const body = w.finish();
  const binary = Buffer.concat([body, checksumOf(body)]);
  // The binary holds the secret: wipe our copies once the text exists.
  const text = TICKET_PREFIX + binary.toString('base64url');
  body.fill(0);
  binary.fill(0);
  // Every decoder refuses a longer text, so none may be written (long URLs times many relays).
  if (text.length > MAX_TICKET_TEXT_LEN) {
    throw wicketError('WICKET_ERR_ARGUMENT', `the ticket would be ${text.length} characters, cap ${MAX_TICKET_TEXT_LEN}: name fewer relays or shorter URLs`);
  }
  return text;
}

/** The ticket's fields as read from the bytes, before any meaning is checked. */
interface Layout {
  version: number;
  flags: number;
  relays: { url: Uint8Array; fingerprint: Uint8Array | undefined }[];
  authorityPublicKey: Uint8Array;
  ticketId: Uint8Array;
  secret: Uint8Array;
  expiresAt: number;
  bodyLength: number;
}

type LayoutResult =
  | { ok: true; layout: Layout }
  | { ok: false; truncatedIn: string | undefined; problem: string };

/**
 * Reads the fields in order without judging them, so that a ticket cut short can be reported as
 * "ends inside <field>" even though its checksum (the last 4 bytes) is then missing.
 */
function readLayout(bytes: Uint8Array): LayoutResult {
  const r = new ByteReader(bytes, 'ticket');
  let field = 'format version';
  try {
    const version = r.u8(field);
    field = 'flags';
    const flags = r.u8(field);
    const relays: Layout['relays'] = [];
    let count = 1;
    let entryFlags = flags;
    if (version === VERSION_RELAY_LIST) {
      field = 'relay count';
      count = r.u8(field);
      if (count < 1 || count > MAX_TICKET_RELAYS) return { ok: false, truncatedIn: undefined, problem: `it lists ${count} relays, expected 1 to ${MAX_TICKET_RELAYS}` };
    }
    for (let i = 0; i < count; i++) {
      if (version === VERSION_RELAY_LIST) {
        field = `flags of relay ${i + 1}`;
        entryFlags = r.u8(field);
        if ((entryFlags & ~FLAG_FINGERPRINT) !== 0) return { ok: false, truncatedIn: undefined, problem: `relay ${i + 1} has unknown flags` };
      }
      field = count === 1 ? 'relay URL' : `URL of relay ${i + 1}`;
      const url = r.bytes16(field, MAX_RELAY_URL_LEN);
      field = count === 1 ? 'relay certificate fingerprint' : `certificate fingerprint of relay ${i + 1}`;
      relays.push({ url, fingerprint: entryFlags & FLAG_FINGERPRINT ? r.fixed(RELAY_CERT_FINGERPRINT_LEN, field) : undefined });
    }
    field = 'authority public key';
    const authorityPublicKey = r.fixed(ED25519_PUBLIC_KEY_LEN, field);
    field = 'ticket id';
    const ticketId = r.fixed(TICKET_ID_LEN, field);
    field = 'secret';
    const secret = r.fixed(TICKET_SECRET_LEN, field);
    field = 'expiry';
    const expiresAt = r.u64(field);
    const bodyLength = r.offset;
    field = 'checksum';
    r.fixed(TICKET_CHECKSUM_LEN, field);
    if (r.remaining !== 0) return { ok: false, truncatedIn: undefined, problem: `${r.remaining} more bytes than the format holds` };
    return {
      ok: true,
      layout: { version, flags, relays, authorityPublicKey, ticketId, secret, expiresAt, bodyLength },
    };
  } catch (err) {
    if (isWicketError(err, 'WICKET_ERR_FRAME_TRUNCATED')) return { ok: false, truncatedIn: field, problem: `it ends inside the ${field}` };
    if (isWicketError(err)) return { ok: false, truncatedIn: undefined, problem: err.message.slice(err.code.length + 2) };
    throw err;
  }
}

/**
 * A ticket whose layout runs out looks truncated, but so does one whose flags or URL length were
 * altered by a mangled character. Before calling it truncated, restore the header the byte count
 * implies: if the checksum then matches, the end is intact and only the header was altered. One
 * base64url character can straddle the 4-byte header and the URL's first byte, which is always
 * the 'w' of ws:// or wss://, so that byte is restored too.
 */
function onlyHeaderAltered(bytes: Buffer): boolean {
  const fixedTail = ED25519_PUBLIC_KEY_LEN + TICKET_ID_LEN + TICKET_SECRET_LEN + 8 + TICKET_CHECKSUM_LEN;
  for (const flags of [0, FLAG_FINGERPRINT]) {
    const urlLength = bytes.length - HEADER_LEN - (flags ? RELAY_CERT_FINGERPRINT_LEN : 0) - fixedTail;
    if (urlLength < 1 || urlLength > MAX_RELAY_URL_LEN) continue;
    const candidate = Buffer.from(bytes.subarray(0, bytes.length - TICKET_CHECKSUM_LEN));
    candidate[0] = VERSION;
    candidate[1] = flags;
    candidate.writeUInt16BE(urlLength, 2);
    candidate[HEADER_LEN] = 0x77; // 'w'
    const matches = checksumOf(candidate).equals(bytes.subarray(bytes.length - TICKET_CHECKSUM_LEN));
    candidate.fill(0); // it holds the secret
    if (matches) return true;
  }
  return false;
}

function malformed(detail: string): never {
  throw wicketError('WICKET_ERR_TICKET_MALFORMED', detail);
}

function checkPrefix(text: string): void {
  if (text.startsWith(TICKET_PREFIX)) return;
  if (text === '') throw wicketError('WICKET_ERR_TICKET_PREFIX', 'ticket is empty');
  const otherVersion = /^wkt(\d{1,3})_/.exec(text);
  if (otherVersion) {
    throw wicketError('WICKET_ERR_TICKET_PREFIX', `ticket format wkt${otherVersion[1]}_ is not supported; this Wicket reads ${TICKET_PREFIX} tickets`);
  }
  if (TICKET_PREFIX.startsWith(text)) {
    throw wicketError('WICKET_ERR_TICKET_PREFIX', `ticket is truncated: ${text.length} characters, shorter than the ${TICKET_PREFIX} prefix`);
  }
  if (text.toLowerCase().startsWith(TICKET_PREFIX)) {
    throw wicketError('WICKET_ERR_TICKET_PREFIX', `ticket prefix must be lowercase ${TICKET_PREFIX}`);
  }
  // Never echo the text: a wrong paste may be some other secret.
  throw wicketError('WICKET_ERR_TICKET_PREFIX', `text does not start with ${TICKET_PREFIX}, so it is not a Wicket ticket`);
}

/** Positions are 1-based and count from the first character of the (trimmed) ticket. */
function checkAlphabet(payload: string): void {
  for (let i = 0; i < payload.length; i++) {
    const ch = payload[i]!;
    if (BASE64URL_CHAR.test(ch)) continue;
    const position = TICKET_PREFIX.length + i + 1;
    if (/\s/.test(ch)) malformed(`whitespace at position ${position} inside the ticket (was it wrapped over lines? join them)`);
    const shown = ch.charCodeAt(0) >= 0x21 && ch.charCodeAt(0) <= 0x7e ? `'${ch}'` : `U+${ch.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`;
    malformed(`bad base64url character ${shown} at position ${position} (a ticket holds only A-Z a-z 0-9 - _)`);
  }
}

/**
 * Parses a ticket pasted by a person. Surrounding whitespace is ignored. Throws
 * WICKET_ERR_TICKET_PREFIX or WICKET_ERR_TICKET_MALFORMED with a message naming what is wrong;
 * never echoes the ticket or its secret. Expiry is not checked here (see isTicketExpired).
 */
export function decodeTicket(text: string): Ticket {
  if (typeof text !== 'string') malformed(`ticket must be a string, got ${text === null ? 'null' : typeof text}`);
  if (text.length > MAX_TICKET_TEXT_LEN) malformed(`ticket text is ${text.length} characters, cap ${MAX_TICKET_TEXT_LEN}`);
  const trimmed = text.trim();
  checkPrefix(trimmed);
  const payload = trimmed.slice(TICKET_PREFIX.length);
  if (payload.length === 0) malformed(`ticket is truncated: nothing follows the ${TICKET_PREFIX} prefix`);
  checkAlphabet(payload);

  // base64url never has a length of 1 mod 4; decode what can be decoded so that a cut ticket
  // still gets "ends inside <field>".
  const impossibleLength = payload.length % 4 === 1;
  const decodable = impossibleLength ? payload.slice(0, -1) : payload;
  const bytes = Buffer.from(decodable, 'base64url');
  try {
    return decodeBytes(bytes, decodable, impossibleLength);
  } finally {
    bytes.fill(0);
  }
}

function decodeBytes(bytes: Buffer, decodable: string, impossibleLength: boolean): Ticket {
  const layoutResult = readLayout(bytes);
  const checksumOk =
    bytes.length > TICKET_CHECKSUM_LEN &&
    checksumOf(bytes.subarray(0, bytes.length - TICKET_CHECKSUM_LEN)).equals(bytes.subarray(bytes.length - TICKET_CHECKSUM_LEN));
  if (!checksumOk) {
    if (!layoutResult.ok && layoutResult.truncatedIn !== undefined && !onlyHeaderAltered(bytes)) {
      malformed(`ticket is truncated: it ends inside the ${layoutResult.truncatedIn}; copy the whole ticket`);
    }
    malformed('ticket is mangled: checksum mismatch (a character was changed, added or removed); copy the ticket again');
  }
  if (impossibleLength) malformed('ticket is mangled: a stray character follows the end of the ticket');
  // The checksum cannot see the spare low bits of the last character; a canonical re-encoding can.
  if (bytes.toString('base64url') !== decodable) malformed('ticket is mangled: its last character was altered');

  // The bytes are what the issuer wrote. Anything wrong now is the format, not the copy.
  const version = bytes[0]!;
  if (version !== VERSION && version !== VERSION_RELAY_LIST) {
    malformed(`ticket format version ${version} is not supported (this Wicket reads versions ${VERSION} and ${VERSION_RELAY_LIST}); upgrade the agent`);
  }
  const flags = bytes[1] ?? 0;
  if ((flags & ~(version === VERSION ? KNOWN_FLAGS : 0)) !== 0) malformed(`ticket has unknown flags 0x${flags.toString(16).padStart(2, '0')}; upgrade the agent`);
  if (!layoutResult.ok) malformed(`ticket layout is invalid: ${layoutResult.problem}`);
  const l = layoutResult.layout;

  const relays = l.relays.map((relay, i): TicketRelay => {
    let url: string;
    try {
      url = new TextDecoder('utf-8', { fatal: true }).decode(relay.url);
    } catch {
      malformed(`ticket relay URL${l.relays.length > 1 ? ` ${i + 1}` : ''} is not valid UTF-8`);
    }
    const urlProblem = relayUrlProblem(url);
    if (urlProblem !== undefined) malformed(`ticket ${urlProblem}${l.relays.length > 1 ? ` (relay ${i + 1})` : ''}`);
    return relay.fingerprint === undefined ? { url } : { url, fingerprint: Buffer.from(relay.fingerprint) };
  });
  if (new Set(relays.map((r) => r.url)).size !== relays.length) malformed('ticket names one relay URL twice');
  const [first, ...others] = relays as [TicketRelay, ...TicketRelay[]];

  const ticket: Ticket = {
    relayUrl: first.url,
    authorityPublicKey: Buffer.from(l.authorityPublicKey),
    ticketId: Buffer.from(l.ticketId),
    secret: new Secret(Buffer.from(l.secret)),
    expiresAt: l.expiresAt,
  };
  if (first.fingerprint !== undefined) ticket.relayCertFingerprint = first.fingerprint;
  if (others.length > 0) ticket.otherRelays = others;
  return ticket;
}
