import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { decodeCredential, issueCredential, verifyCredential, type Credential } from '../../protocol/credential.js';
import { wicketError } from '../../protocol/errors.js';
import { identifierOf, type Identifier, type Identity } from '../../protocol/identity.js';
import {
  CLOCK_SKEW_MS,
  CREDENTIAL_TTL_MS,
  MAX_ATTRIBUTE_KEY_LEN,
  MAX_ATTRIBUTE_VALUE_LEN,
  MAX_ATTRIBUTES,
  MAX_RELAY_NAME_LEN,
  MAX_RELAY_NAMES,
  TICKET_DEFAULT_TTL_MS,
  TICKET_DEFAULT_USAGE_COUNT,
  TICKET_ID_LEN,
  TICKET_MAX_TTL_MS,
  TICKET_MAX_USAGE_COUNT,
  TICKET_SECRET_LEN,
  MAX_TICKET_RELAYS,
} from '../../protocol/limits.js';
import { RELAY_ROLE_ATTRIBUTE } from '../../protocol/mesh-messages.js';
import { isRelayName, RELAY_NAME_RULE, RESERVED_ATTRIBUTE_PREFIX } from '../../protocol/relay-names.js';
import { Secret } from '../../protocol/secret.js';
import { encodeTicket, hashTicketSecret, type Ticket, type TicketRelay } from '../../protocol/ticket.js';
import {
  type Attributes,
  type AuditEvent,
  type AuditEventName,
  type AuthorityStore,
  type EnrollmentKind,
  type MemberRecord,
  type RevocationEvent,
  type RevokeOutcome,
  type TicketListing,
  type TicketRevokeOutcome,
} from './store.js';

// The project authority: it mints enrollment tickets, redeems them into members, issues
// short-lived credentials, and revokes. It holds the authority identity key and talks to an
// AuthorityStore; it knows nothing about sockets (the relay server wires it to connections).
// The clock is injected (`now`) so expiry is testable.

/** Where tickets send agents: the relay's public URL and, for a self-signed relay, its pinned certificate. */
export interface RelayEndpoint {
  readonly url: string;
  /** SHA-256 of the relay's DER certificate. */
  readonly fingerprint?: Buffer;
}

export interface AuthorityOptions {
  readonly identity: Identity;
  readonly store: AuthorityStore;
  readonly logger: Logger;
  readonly endpoint?: RelayEndpoint;
  readonly now?: () => number;
  readonly credentialTtlMs?: number;
}

export interface TicketRequest {
  readonly attributes?: Attributes;
  readonly relayNames?: readonly string[];
  readonly usageCount?: number;
  readonly expiresInMs?: number;
  /** Who asked: an admin's identifier, or 'relay' / 'cli' on the relay host. */
  readonly createdBy: string;
}

export interface CreatedTicket {
  /** The printable ticket; it carries the secret, so it stays wrapped until printed or sent. */
  readonly text: Secret<string>;
  readonly ticketId: string;
  readonly expiresAt: number;
}

export interface Enrollment {
  readonly member: MemberRecord;
  readonly kind: EnrollmentKind;
}


function checkTicketRequest(request: TicketRequest): { attributes: Attributes; relayNames: string[]; usageCount: number; expiresInMs: number } {
  const attributes: Attributes = {};
  const given = request.attributes ?? {};
  if (typeof given !== 'object' || given === null || Array.isArray(given)) {
    throw wicketError('WICKET_ERR_ARGUMENT', 'attributes must be an object of strings');
  }
  const entries = Object.entries(given);
  // One slot stays free for wicket:relays.
  if (entries.length > MAX_ATTRIBUTES - 1) throw wicketError('WICKET_ERR_ARGUMENT', `at most ${MAX_ATTRIBUTES - 1} attributes`);
  for (const [key, value] of entries) {
    if (key.length === 0 || Buffer.byteLength(key) > MAX_ATTRIBUTE_KEY_LEN || key.includes('=')) {
      throw wicketError('WICKET_ERR_ARGUMENT', `attribute key must be 1..${MAX_ATTRIBUTE_KEY_LEN} bytes without '='`);
    }
    if (key.startsWith(RESERVED_ATTRIBUTE_PREFIX)) {
      throw wicketError('WICKET_ERR_ARGUMENT', `attribute ${JSON.stringify(key)} is reserved (relay names go in relayNames / --relay)`);
    }
    if (typeof value !== 'string' || Buffer.byteLength(value) > MAX_ATTRIBUTE_VALUE_LEN) {
      throw wicketError('WICKET_ERR_ARGUMENT', `attribute ${JSON.stringify(key)} value must be a string of at most ${MAX_ATTRIBUTE_VALUE_LEN} bytes`);
    }
    attributes[key] = value;
  }
  const relayNames = [...new Set(request.relayNames ?? [])];
  if (relayNames.length > MAX_RELAY_NAMES) throw wicketError('WICKET_ERR_ARGUMENT', `at most ${MAX_RELAY_NAMES} relay names`);
  for (const name of relayNames) checkRelayName(name);
  if (Buffer.byteLength(relayNames.join(',')) > MAX_ATTRIBUTE_VALUE_LEN) {
    throw wicketError('WICKET_ERR_ARGUMENT', `relay names together exceed ${MAX_ATTRIBUTE_VALUE_LEN} bytes`);
  }
  const usageCount = request.usageCount ?? TICKET_DEFAULT_USAGE_COUNT;
  if (!Number.isSafeInteger(usageCount) || usageCount < 1 || usageCount > TICKET_MAX_USAGE_COUNT) {
    throw wicketError('WICKET_ERR_ARGUMENT', `usage count must be an integer from 1 to ${TICKET_MAX_USAGE_COUNT}`);
  }
  const expiresInMs = request.expiresInMs ?? TICKET_DEFAULT_TTL_MS;
  if (!Number.isSafeInteger(expiresInMs) || expiresInMs < 1 || expiresInMs > TICKET_MAX_TTL_MS) {
    throw wicketError('WICKET_ERR_ARGUMENT', `ticket lifetime must be 1 ms to ${TICKET_MAX_TTL_MS / 86_400_000} days`);
  }
  return { attributes, relayNames, usageCount, expiresInMs };
}

export function checkRelayName(name: unknown): string {
  if (!isRelayName(name)) {
    const shown = typeof name === 'string' ? JSON.stringify(name.slice(0, MAX_RELAY_NAME_LEN)) : typeof name;
    throw wicketError('WICKET_ERR_ARGUMENT', `relay name ${shown} must be ${RELAY_NAME_RULE}`);
  }
  return name;
}

/**
 * Why a ticket was not redeemed, in words the agent prints as they are (the relay sends this text
 * to the enrolling agent). It says no more than the code does.
 */
function refusalDetail(
  code: 'WICKET_ERR_TICKET_UNKNOWN' | 'WICKET_ERR_TICKET_EXPIRED' | 'WICKET_ERR_TICKET_USED' | 'WICKET_ERR_TICKET_REVOKED' | 'WICKET_ERR_REVOKED',
  ticketId: string, identifier: Identifier): string {
  switch (code) {
    case 'WICKET_ERR_REVOKED':
      return `${identifier} was revoked; enroll a new key, or ask an admin to reinstate this one`;
    case 'WICKET_ERR_TICKET_USED':
      return `ticket ${ticketId} was already used (it has no uses left); ask an admin for a new ticket`;
    case 'WICKET_ERR_TICKET_REVOKED':
      return `ticket ${ticketId} was revoked by an admin; ask an admin for a new ticket`;
    case 'WICKET_ERR_TICKET_EXPIRED':
      return `ticket ${ticketId} has expired; ask an admin for a new ticket`;
    case 'WICKET_ERR_TICKET_UNKNOWN':
      return `ticket ${ticketId} is not known to this relay (another relay's or project's ticket, or a mistyped secret)`;
  }
}

export class Authority {
  readonly identity: Identity;
  readonly store: AuthorityStore;
  readonly now: () => number;
  readonly credentialTtlMs: number;
  readonly #logger: Logger;
  #endpoint: RelayEndpoint | undefined;

  constructor(options: AuthorityOptions) {
    this.identity = options.identity;
    this.store = options.store;
    this.#logger = options.logger;
    this.#endpoint = options.endpoint;
    this.now = options.now ?? Date.now;
    this.credentialTtlMs = options.credentialTtlMs ?? CREDENTIAL_TTL_MS;
  }

  get identifier(): Identifier {
    return this.identity.identifier;
  }

  get publicKey(): Buffer {
    return this.identity.publicKey;
  }

  get endpoint(): RelayEndpoint | undefined {
    return this.#endpoint;
  }

  /** The relay sets this once it knows its bound port; tickets carry it. */
  setEndpoint(endpoint: RelayEndpoint): void {
    this.#endpoint = endpoint;
  }

  /**
   * The project's other live relays (a shared store's presence), most recently seen first, for a
   * ticket that lists this relay first: an agent enrolled with it moves to them when this one is lost.
   */
  async #otherLiveRelays(self: RelayEndpoint, now: number): Promise<TicketRelay[]> {
    const others: TicketRelay[] = [];
    for (const relay of await this.store.liveRelays(now)) {
      if (relay.url === self.url || others.length + 1 >= MAX_TICKET_RELAYS) continue;
      others.push(relay.fingerprint === undefined ? { url: relay.url } : { url: relay.url, fingerprint: relay.fingerprint });
    }
    return others;
  }

  async createTicket(request: TicketRequest): Promise<CreatedTicket> {
    const endpoint = this.#endpoint;
    if (endpoint === undefined) throw wicketError('WICKET_ERR_INTERNAL', 'the relay endpoint is not known yet');
    const { attributes, relayNames, usageCount, expiresInMs } = checkTicketRequest(request);
    const now = this.now();
    const secret = new Secret(randomBytes(TICKET_SECRET_LEN));
    const otherRelays = await this.#otherLiveRelays(endpoint, now);
    const ticket: Ticket = {
      relayUrl: endpoint.url,
      authorityPublicKey: this.publicKey,
      ticketId: randomBytes(TICKET_ID_LEN),
      secret,
      expiresAt: now + expiresInMs,
    };
    if (endpoint.fingerprint !== undefined) ticket.relayCertFingerprint = endpoint.fingerprint;
    if (otherRelays.length > 0) ticket.otherRelays = otherRelays;
    const text = new Secret(encodeTicket(ticket));
    await this.store.insertTicket({
      ticketId: ticket.ticketId,
      secretHash: hashTicketSecret(secret),
      attributes,
      relayNames,
      usageCount,
      createdAt: now,
      expiresAt: ticket.expiresAt,
      createdBy: request.createdBy,
    });
    secret.reveal().fill(0);
    const ticketId = ticket.ticketId.toString('hex');
    await this.audit('ticket-create', request.createdBy.startsWith('I') ? request.createdBy : undefined, {
      ticketId,
      createdBy: request.createdBy,
      attributes,
      relayNames,
      usageCount,
      expiresAt: new Date(ticket.expiresAt).toISOString(),
    });
    this.#logger.info({ ticketId, createdBy: request.createdBy, usageCount, relayNames, expiresAt: ticket.expiresAt }, 'ticket created');
    return { text, ticketId, expiresAt: ticket.expiresAt };
  }

  /**
   * How long after a revocation every credential the revoked identity holds has expired (none is
   * issued after it): agents keep refusing it until then.
   */
  get revocationKeepMs(): number {
    return this.credentialTtlMs + CLOCK_SKEW_MS;
  }

  /** Redeems a ticket for `publicKey` atomically. Throws TICKET_UNKNOWN / TICKET_EXPIRED / TICKET_USED / TICKET_REVOKED / REVOKED. */
  async redeem(request: { ticketId: Buffer; secret: Secret<Buffer>; publicKey: Buffer }): Promise<Enrollment> {
    const identifier = identifierOf(request.publicKey);
    const ticketId = request.ticketId.toString('hex');
    const outcome = await this.store.redeemTicket({
      ticketId: request.ticketId,
      secretHash: hashTicketSecret(request.secret),
      identifier,
      publicKey: Buffer.from(request.publicKey),
      now: this.now(),
    });
    if (!outcome.ok) {
      // The connection logs the refusal (rate-bounded); this line is for debugging only.
      this.#logger.debug({ ticketId, identifier, code: outcome.code }, 'enrollment refused');
      throw wicketError(outcome.code, refusalDetail(outcome.code, ticketId, identifier));
    }
    if (outcome.kind !== 'repeated') await this.audit('enroll', identifier, { ticketId, kind: outcome.kind, attributes: outcome.member.attributes });
    this.#logger.info({ ticketId, identifier, kind: outcome.kind }, 'member enrolled');
    return { member: outcome.member, kind: outcome.kind };
  }

  /**
   * Checks that `publicKey` is a live member and that `credential` was signed by this authority for
   * it. An EXPIRED credential is accepted (protocol/README.md, "Relay behaviour"): a member offline
   * for a while must be able to come back; the member record, not the credential, is the truth.
   */
  async authenticate(publicKey: Buffer, credential: Buffer): Promise<MemberRecord> {
    const identifier = identifierOf(publicKey);
    const member = await this.store.getMember(identifier);
    if (member === undefined) throw wicketError('WICKET_ERR_RELAY_AUTH', `${identifier} is not a member of this project`);
    if (member.revokedAt !== undefined) throw wicketError('WICKET_ERR_REVOKED', `${identifier} was revoked at ${new Date(member.revokedAt).toISOString()}`);
    const decoded = decodeCredential(credential);
    // Verifying at the credential's own issue time checks issuer, signature and subject while
    // deliberately ignoring expiry (see above).
    verifyCredential(credential, { authorityPublicKey: this.publicKey, subject: identifier, now: decoded.issuedAt });
    return member;
  }

  /** A fresh short-lived credential carrying the member's current attributes. */
  issueCredential(member: MemberRecord, ttlMs: number = this.credentialTtlMs): Credential {
    return issueCredential(this.identity, { subject: member.identifier, attributes: member.attributes, issuedAt: this.now(), ttlMs });
  }

  /** A credential for a relay's own per-process key, naming its relay id (relay-to-relay links, relay/mesh/). */
  async relayCredential(publicKey: Buffer, relayId: string): Promise<Credential> {
    return issueCredential(this.identity, { subject: identifierOf(publicKey), attributes: { [RELAY_ROLE_ATTRIBUTE]: relayId }, issuedAt: this.now(), ttlMs: this.credentialTtlMs });
  }

  getMember(identifier: Identifier): Promise<MemberRecord | undefined> {
    return this.store.getMember(identifier);
  }

  listMembers(): Promise<MemberRecord[]> {
    return this.store.listMembers();
  }

  /**
   * Marks the member revoked in the store (new connections are refused from now on) and spends the
   * tickets it redeemed. Throws MEMBER_UNKNOWN.
   */
  async revoke(identifier: Identifier, revokedBy: string): Promise<RevokeOutcome> {
    const outcome = await this.store.revokeMember(identifier, this.now(), revokedBy);
    if (outcome === undefined) throw wicketError('WICKET_ERR_MEMBER_UNKNOWN', `no member ${identifier}`);
    if (!outcome.alreadyRevoked || outcome.ticketsSpent > 0) {
      await this.audit('revoke', identifier, { revokedBy, ticketsSpent: outcome.ticketsSpent });
      this.#logger.info({ identifier, revokedBy, ticketsSpent: outcome.ticketsSpent }, 'member revoked');
    }
    return outcome;
  }

  /** Clears a revocation: the only way back for a revoked key. Throws MEMBER_UNKNOWN / MEMBER_NOT_REVOKED. */
  async reinstate(identifier: Identifier, reinstatedBy: string): Promise<RevocationEvent> {
    const outcome = await this.store.reinstateMember(identifier, this.now(), reinstatedBy);
    if (!outcome.ok) {
      throw wicketError(outcome.code, outcome.code === 'WICKET_ERR_MEMBER_UNKNOWN' ? `no member ${identifier}` : `${identifier} is not revoked`);
    }
    await this.audit('reinstate', identifier, { reinstatedBy });
    this.#logger.info({ identifier, reinstatedBy }, 'member reinstated');
    return outcome.event;
  }

  /** Outstanding tickets (uses left, unexpired, not revoked), or with `all` every stored one. */
  listTickets(all = false): Promise<TicketListing[]> {
    return this.store.listTickets({ now: this.now(), all });
  }

  /**
   * Revokes a ticket that was handed out but should no longer enroll anyone (members it already
   * enrolled stay members: revoke those with `member revoke`). Throws TICKET_UNKNOWN.
   */
  async revokeTicket(ticketId: Buffer, revokedBy: string): Promise<TicketRevokeOutcome> {
    const id = ticketId.toString('hex');
    const outcome = await this.store.revokeTicket(ticketId, this.now(), revokedBy);
    if (outcome === undefined) throw wicketError('WICKET_ERR_TICKET_UNKNOWN', `no ticket ${id} in this relay's store (\`ticket list --all\` shows them all)`);
    if (!outcome.alreadyRevoked) {
      await this.audit('ticket-revoke', revokedBy.startsWith('I') ? revokedBy : undefined, { ticketId: id, revokedBy, usesLeft: outcome.ticket.usesLeft });
      this.#logger.info({ ticketId: id, revokedBy, usesLeft: outcome.ticket.usesLeft }, 'ticket revoked');
    }
    return outcome;
  }

  /** Appends an audit event; a failing audit write is logged, never fatal to the operation. */
  async audit(event: AuditEventName, identifier: string | undefined, detail?: Record<string, unknown>): Promise<void> {
    const record: AuditEvent = { at: this.now(), event, ...(identifier === undefined ? {} : { identifier }), ...(detail === undefined ? {} : { detail }) };
    try {
      await this.store.appendAudit(record);
    } catch (err) {
      this.#logger.error({ err, event, identifier }, 'audit write failed');
    }
  }

  listAudit(limit: number): Promise<AuditEvent[]> {
    return this.store.listAudit(limit);
  }
}

