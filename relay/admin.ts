import type { Logger } from 'pino';
import { asWicketError, wicketError } from '../protocol/errors.js';
import { identifierOf, parseIdentifier } from '../protocol/identity.js';
import { AUDIT_LIST_DEFAULT, AUDIT_LIST_MAX, ED25519_PUBLIC_KEY_LEN, ED25519_SIGNATURE_LEN, TICKET_ID_LEN, TICKET_LIST_REPLY_BUDGET } from '../protocol/limits.js';
import { relaysToWire } from '../protocol/relay-directory.js';
import { base64url } from '../protocol/relay-frames.js';
import type { AgentToRelay } from '../protocol/relay-messages.js';
import { isAdmin } from '../protocol/relay-names.js';
import { parseTicketId } from '../protocol/ticket.js';
import type { TicketGrant } from '../protocol/ticket-grant.js';
import type { Authority } from './authority/authority.js';
import type { Attributes } from './authority/store.js';
import { ticketView, type TicketView } from './authority/ticket-view.js';
import type { LiveConnections } from './live-connections.js';
import type { PeerIdentity, RelayPeer } from './peer.js';
import type { Revocation } from './revocation.js';

// Admin requests (protocol/README.md, "Relay behaviour"): `request {id, op, args}` answered by
// `response {id, result}` or `response {id, error: {code, message}}`. Only peers whose credential
// carries admin=true may use them; a refused or failed request never closes the connection.

type RequestMessage = Extract<AgentToRelay, { t: 'request' }>;
type Handler = (admin: PeerIdentity, args: Record<string, unknown>) => Promise<unknown>;

const iso = (ms: number): string => new Date(ms).toISOString();

function stringRecord(value: unknown, field: string): Attributes {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw wicketError('WICKET_ERR_ARGUMENT', `${field} must be an object of strings`);
  }
  for (const [key, v] of Object.entries(value)) {
    if (typeof v !== 'string') throw wicketError('WICKET_ERR_ARGUMENT', `${field}.${key.slice(0, 40)} must be a string`);
  }
  return value as Attributes;
}

function stringArray(value: unknown, field: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) {
    throw wicketError('WICKET_ERR_ARGUMENT', `${field} must be an array of strings`);
  }
  return value as string[];
}

function optionalInteger(value: unknown, field: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw wicketError('WICKET_ERR_ARGUMENT', `${field} must be an integer`);
  return value;
}

const HEX_TICKET_ID = new RegExp(`^[0-9a-f]{${TICKET_ID_LEN * 2}}$`);
const HEX_PUBLIC_KEY = new RegExp(`^[0-9a-f]{${ED25519_PUBLIC_KEY_LEN * 2}}$`);
/** Unpadded base64url of an Ed25519 signature. */
const GRANT_SIGNATURE_TEXT = new RegExp(`^[A-Za-z0-9_-]{${Math.ceil((ED25519_SIGNATURE_LEN * 4) / 3)}}$`);

/**
 * 'ticket.create' with a grant: every grant field present and in shape, else WICKET_ERR_ARGUMENT
 * naming the field (never echoing it). usageCount and expiresInMs are signed, so no default
 * stands in for them.
 */
function parseGrantArgs(
  args: Record<string, unknown>,
  given: { attributes: Attributes; relayNames: string[]; usageCount: number | undefined; expiresInMs: number | undefined },
): { grant: TicketGrant; signature: Buffer } {
  const { ticketId, ticketKey, signedAt, grantSignature } = args;
  if (typeof ticketId !== 'string' || !HEX_TICKET_ID.test(ticketId)) throw wicketError('WICKET_ERR_ARGUMENT', `ticketId must be ${TICKET_ID_LEN * 2} lowercase hex digits`);
  if (typeof ticketKey !== 'string' || !HEX_PUBLIC_KEY.test(ticketKey)) throw wicketError('WICKET_ERR_ARGUMENT', `ticketKey must be ${ED25519_PUBLIC_KEY_LEN * 2} lowercase hex digits (the ticket key's public key)`);
  if (typeof signedAt !== 'number' || !Number.isSafeInteger(signedAt) || signedAt < 0) throw wicketError('WICKET_ERR_ARGUMENT', 'signedAt must be a non-negative integer (ms since epoch)');
  if (typeof grantSignature !== 'string' || !GRANT_SIGNATURE_TEXT.test(grantSignature)) {
    throw wicketError('WICKET_ERR_ARGUMENT', `grantSignature must be a ${ED25519_SIGNATURE_LEN}-byte Ed25519 signature in unpadded base64url`);
  }
  const signature = Buffer.from(grantSignature, 'base64url');
  if (signature.length !== ED25519_SIGNATURE_LEN || signature.toString('base64url') !== grantSignature) {
    throw wicketError('WICKET_ERR_ARGUMENT', `grantSignature must be a ${ED25519_SIGNATURE_LEN}-byte Ed25519 signature in unpadded base64url`);
  }
  if (given.usageCount === undefined || given.expiresInMs === undefined) throw wicketError('WICKET_ERR_ARGUMENT', 'a grant names usageCount and expiresInMs');
  if (given.usageCount < 0 || given.expiresInMs < 0) throw wicketError('WICKET_ERR_ARGUMENT', 'usageCount and expiresInMs must not be negative');
  const grant: TicketGrant = { ticketId, ticketKey, attributes: given.attributes, relayNames: given.relayNames, usageCount: given.usageCount, expiresInMs: given.expiresInMs, signedAt };
  return { grant, signature };
}

export class AdminOps {
  readonly #handlers: Record<string, Handler>;

  constructor(
    private readonly authority: Authority,
    private readonly revocation: Revocation,
    private readonly connections: LiveConnections,
    private readonly logger: Logger,
  ) {
    this.#handlers = {
      'ticket.create': (admin, args) => this.#ticketCreate(admin, args),
      'ticket.list': (_admin, args) => this.#ticketList(args),
      'ticket.revoke': (admin, args) => this.#ticketRevoke(admin, args),
      'member.list': () => this.#memberList(),
      'member.revoke': (admin, args) => this.#memberRevoke(admin, args),
      'member.reinstate': (admin, args) => this.#memberReinstate(admin, args),
      'audit.list': (_admin, args) => this.#auditList(args),
    };
  }

  async handle(peer: RelayPeer, request: RequestMessage): Promise<void> {
    const identity = peer.identity;
    try {
      if (identity === undefined || !isAdmin(identity.attributes)) {
        throw wicketError('WICKET_ERR_NOT_ADMIN', `${identity?.identifier ?? 'this connection'} does not have admin=true`);
      }
      const handler = Object.hasOwn(this.#handlers, request.op) ? this.#handlers[request.op] : undefined;
      if (handler === undefined) throw wicketError('WICKET_ERR_ARGUMENT', `unknown admin operation ${JSON.stringify(String(request.op).slice(0, 40))}`);
      const result = await handler(identity, request.args);
      this.logger.info({ conn: peer.id, identifier: identity.identifier, op: request.op }, 'admin request done');
      peer.send({ t: 'response', id: request.id, result });
    } catch (err) {
      const error = asWicketError(err);
      if (error.code === 'WICKET_ERR_INTERNAL') this.logger.error({ err, op: request.op }, 'admin request failed');
      else this.logger.info({ conn: peer.id, identifier: identity?.identifier, op: request.op, code: error.code }, 'admin request refused');
      const message = error.code === 'WICKET_ERR_INTERNAL' ? 'internal relay error' : error.message;
      peer.send({ t: 'response', id: request.id, error: { code: error.code, message } });
    }
  }

  /**
   * Without `ticketKey` the relay makes the ticket (its secret) itself, as before ticket grants;
   * with it the admin agent made the ticket and signed a grant for it (protocol/ticket-grant.ts),
   * and the answer carries what the agent needs to write the ticket text with its own secret.
   */
  async #ticketCreate(admin: PeerIdentity, args: Record<string, unknown>): Promise<unknown> {
    const usageCount = optionalInteger(args.usageCount, 'usageCount');
    const expiresInMs = optionalInteger(args.expiresInMs, 'expiresInMs');
    const attributes = stringRecord(args.attributes, 'attributes');
    const relayNames = stringArray(args.relayNames, 'relayNames');
    const grantFields = ['ticketId', 'ticketKey', 'signedAt', 'grantSignature'].filter((field) => args[field] !== undefined);
    if (grantFields.length > 0) {
      const grant = parseGrantArgs(args, { attributes, relayNames, usageCount, expiresInMs });
      if (admin.publicKey === undefined || identifierOf(admin.publicKey) !== admin.identifier) {
        throw wicketError('WICKET_ERR_INTERNAL', 'the admin connection carries no key of its own');
      }
      const made = await this.authority.createGrantedTicket({ admin: { identifier: admin.identifier, publicKey: admin.publicKey }, ...grant });
      return { ticketId: made.ticketId, expiresAt: iso(made.expiresAt), relays: relaysToWire(made.relays), authorityPublicKey: base64url(made.authorityPublicKey) };
    }
    const created = await this.authority.createTicket({
      attributes,
      relayNames,
      ...(usageCount === undefined ? {} : { usageCount }),
      ...(expiresInMs === undefined ? {} : { expiresInMs }),
      createdBy: admin.identifier,
    });
    return { ticket: created.text.reveal(), ticketId: created.ticketId, expiresAt: iso(created.expiresAt) };
  }

  /**
   * The newest tickets that fit in TICKET_LIST_REPLY_BUDGET (oldest first), and how many older
   * ones were left out: the answer must fit in one control frame.
   */
  async #ticketList(args: Record<string, unknown>): Promise<unknown> {
    if (args.all !== undefined && typeof args.all !== 'boolean') throw wicketError('WICKET_ERR_ARGUMENT', 'all must be true or false');
    const now = this.authority.now();
    const listings = await this.authority.listTickets(args.all === true);
    const tickets: TicketView[] = [];
    let bytes = 0;
    for (let i = listings.length - 1; i >= 0; i--) {
      const view = ticketView(listings[i]!, now);
      bytes += Buffer.byteLength(JSON.stringify(view)) + 1;
      if (bytes > TICKET_LIST_REPLY_BUDGET) break;
      tickets.push(view);
    }
    return { tickets: tickets.reverse(), omitted: listings.length - tickets.length };
  }

  async #ticketRevoke(admin: PeerIdentity, args: Record<string, unknown>): Promise<unknown> {
    const outcome = await this.authority.revokeTicket(parseTicketId(args.ticketId), admin.identifier);
    return { ticket: ticketView(outcome.ticket, this.authority.now()), alreadyRevoked: outcome.alreadyRevoked };
  }

  async #memberList(): Promise<unknown> {
    const members = await this.authority.listMembers();
    return {
      members: members.map((member) => ({
        identifier: member.identifier,
        attributes: member.attributes,
        enrolledAt: iso(member.enrolledAt),
        ...(member.revokedAt === undefined ? {} : { revokedAt: iso(member.revokedAt) }),
        connected: this.connections.isConnected(member.identifier),
      })),
    };
  }

  async #memberRevoke(admin: PeerIdentity, args: Record<string, unknown>): Promise<unknown> {
    const identifier = parseIdentifier(args.identifier as string);
    const result = await this.revocation.revoke(identifier, admin.identifier);
    return { identifier, revokedAt: iso(result.at), closedConnections: result.closedConnections, ticketsSpent: result.ticketsSpent };
  }

  async #memberReinstate(admin: PeerIdentity, args: Record<string, unknown>): Promise<unknown> {
    const identifier = parseIdentifier(args.identifier as string);
    const result = await this.revocation.reinstate(identifier, admin.identifier);
    return { identifier, reinstatedAt: iso(result.at) };
  }

  async #auditList(args: Record<string, unknown>): Promise<unknown> {
    const limit = optionalInteger(args.limit, 'limit') ?? AUDIT_LIST_DEFAULT;
    if (limit < 1 || limit > AUDIT_LIST_MAX) throw wicketError('WICKET_ERR_ARGUMENT', `limit must be 1..${AUDIT_LIST_MAX}`);
    const events = await this.authority.listAudit(limit);
    return {
      events: events.map((event) => ({
        at: iso(event.at),
        event: event.event,
        ...(event.identifier === undefined ? {} : { identifier: event.identifier }),
        ...(event.detail === undefined ? {} : { detail: event.detail }),
      })),
    };
  }
}
