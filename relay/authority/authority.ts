import type { Logger } from 'pino';
import { decodeCredential, verifyCredential, type Credential } from '../../protocol/credential.js';
import { isWicketError, wicketError } from '../../protocol/errors.js';
import { identifierOf, type Identifier, type Identity } from '../../protocol/identity.js';
import { CLOCK_SKEW_MS, CREDENTIAL_TTL_MS } from '../../protocol/limits.js';
import {
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
import { LocalIssuer, type AuthorityRole, type CredentialIssuer } from './credential-issuer.js';
import { Endorser, type MemberEvidence } from './endorsement.js';
import { refusalDetail } from './ticket-rules.js';
import { TicketMaker, type CreatedTicket, type GrantedTicket, type GrantedTicketRequest, type RelayEndpoint, type TicketRequest } from './ticket-maker.js';

export { checkRelayName } from './ticket-rules.js';
export type { CreatedTicket, GrantedTicket, GrantedTicketRequest, RelayEndpoint, TicketRequest } from './ticket-maker.js';

// The project authority: it mints enrollment tickets, redeems them into members, issues
// short-lived credentials, and revokes. It talks to an AuthorityStore and knows nothing about
// sockets (the relay server wires it to connections). The clock is injected (`now`) so expiry is
// testable. It signs credentials in one of two roles (credential-issuer.ts): holding the project
// key (`identity`), or, on a forwarding relay, holding only the public key and asking a signer
// through the store (`publicKey` + `issuer`): everything else is the same in both.

export interface AuthorityOptions {
  /** The project key: this process signs. */
  readonly identity?: Identity;
  /** Without `identity`: the project's public key and who signs for this process. */
  readonly publicKey?: Buffer;
  readonly issuer?: CredentialIssuer;
  readonly store: AuthorityStore;
  readonly logger: Logger;
  readonly endpoint?: RelayEndpoint;
  readonly now?: () => number;
  readonly credentialTtlMs?: number;
}

/**
 * An agent's enrollment as the relay proved it (relay/connection-auth.ts): no ticket secret, only
 * the ticket's public key and its proof binding this authority, the ticket id and `publicKey`.
 * redeem needs only ticketKey; ticketProof stays with the request as evidence for a signer.
 */
export interface EnrollRequest {
  readonly ticketId: Buffer;
  readonly ticketKey: Buffer;
  readonly ticketProof: Buffer;
  readonly publicKey: Buffer;
}

export interface Enrollment {
  readonly member: MemberRecord;
  readonly kind: EnrollmentKind;
}

/**
 * A member let in at a relay, with the credential its welcome carries: a fresh one, or
 * (`fallback`) the still-valid one it presented (a forwarding relay did not wait on the signer, or
 * no signer answered), to be refreshed soon.
 */
export interface Admission {
  readonly member: MemberRecord;
  readonly credential: Credential;
  readonly fallback: boolean;
}


export class Authority {
  readonly identifier: Identifier;
  readonly publicKey: Buffer;
  readonly store: AuthorityStore;
  readonly now: () => number;
  readonly credentialTtlMs: number;
  readonly #issuer: CredentialIssuer;
  /** Endorses the tickets this process creates on a shared store; undefined elsewhere (endorsement.ts). */
  readonly #endorser: Endorser | undefined;
  readonly #logger: Logger;
  readonly #tickets: TicketMaker;
  #endpoint: RelayEndpoint | undefined;

  constructor(options: AuthorityOptions) {
    this.store = options.store;
    this.#logger = options.logger;
    this.#endpoint = options.endpoint;
    this.now = options.now ?? Date.now;
    this.credentialTtlMs = options.credentialTtlMs ?? CREDENTIAL_TTL_MS;
    if (options.identity !== undefined) {
      this.publicKey = options.identity.publicKey;
      this.#issuer = new LocalIssuer(options.identity, this.now, this.credentialTtlMs, options.store.endorsements);
    } else if (options.publicKey !== undefined && options.issuer !== undefined) {
      this.publicKey = Buffer.from(options.publicKey);
      this.#issuer = options.issuer;
    } else {
      throw wicketError('WICKET_ERR_INTERNAL', 'an authority needs the project key, or its public key and an issuer');
    }
    this.#endorser = options.identity !== undefined && options.store.endorsements !== undefined ? new Endorser(options.identity) : undefined;
    this.identifier = identifierOf(this.publicKey);
    this.#tickets = new TicketMaker({
      store: this.store,
      logger: this.#logger,
      now: this.now,
      publicKey: this.publicKey,
      endpoint: () => this.#endpoint,
      endorser: this.#endorser,
      issuer: this.#issuer,
      audit: (event, identifier, detail) => this.audit(event, identifier, detail),
    });
  }

  /** signing: credentials are signed in this process; forwarding: a signer signs them through the store. */
  get role(): AuthorityRole {
    return this.#issuer.role;
  }

  get endpoint(): RelayEndpoint | undefined {
    return this.#endpoint;
  }

  /** The relay sets this once it knows its bound port; tickets carry it. */
  setEndpoint(endpoint: RelayEndpoint): void {
    this.#endpoint = endpoint;
  }

  /** A new ticket whose secret this process makes (ticket-maker.ts); WICKET_ERR_SIGNER_ONLY on a forwarding relay. */
  createTicket(request: TicketRequest): Promise<CreatedTicket> {
    return this.#tickets.createTicket(request);
  }

  /** A ticket an admin agent made and signed a grant for (ticket-maker.ts, protocol/ticket-grant.ts). */
  createGrantedTicket(request: GrantedTicketRequest): Promise<GrantedTicket> {
    return this.#tickets.createGrantedTicket(request);
  }

  /**
   * How long after a revocation every credential the revoked identity holds has expired (none is
   * issued after it): agents keep refusing it until then.
   */
  get revocationKeepMs(): number {
    return this.credentialTtlMs + CLOCK_SKEW_MS;
  }

  /**
   * Redeems a ticket for `publicKey` atomically. Throws TICKET_UNKNOWN / TICKET_EXPIRED / TICKET_USED / TICKET_REVOKED / REVOKED.
   * The caller has verified `ticketProof` (relay/connection-auth.ts); the store matches `ticketKey`.
   */
  async redeem(request: EnrollRequest): Promise<Enrollment> {
    const identifier = identifierOf(request.publicKey);
    const ticketId = request.ticketId.toString('hex');
    const outcome = await this.store.redeemTicket({
      ticketId: request.ticketId,
      ticketKey: request.ticketKey,
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
   * An agent's `enroll`: redeem (the ticket use is spent in the store), then the new member's
   * credential, with the ticket and the agent's proof as the evidence a signer on a shared store
   * admits it on (membership-rule.ts).
   */
  async enroll(request: EnrollRequest): Promise<Admission> {
    const { member } = await this.redeem(request);
    return { member, credential: await this.credentialFor(member, { ticketId: request.ticketId, ticketProof: request.ticketProof }), fallback: false };
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

  /**
   * A fresh short-lived credential carrying the member's current attributes (on a shared store,
   * those the signer endorsed: membership-rule.ts). Throws WICKET_ERR_AUTHORITY_UNAVAILABLE when a
   * forwarding relay's signer does not answer in time, REVOKED / MEMBER_UNKNOWN when it refuses.
   */
  credentialFor(member: MemberRecord, evidence?: MemberEvidence): Promise<Credential> {
    return this.#issuer.issue(evidence === undefined ? { kind: 'member', member } : { kind: 'member', member, evidence });
  }

  /**
   * A credential for a relay process's own Ed25519 key (relay-to-relay links): subject its
   * identifier, attributes `{ 'wicket:relay': relayId }`. Not a member: agents refuse it as a
   * channel peer, and it opens only relay-to-relay links (which carry ciphertext).
   */
  relayCredential(publicKey: Buffer, relayId: string): Promise<Credential> {
    return this.#issuer.issue({ kind: 'relay', publicKey, relayId });
  }

  /**
   * An agent's `auth`: authenticate, then a fresh credential. A forwarding relay does not make a
   * login wait on the signer when the agent presents a credential with at least half its life left
   * (verified: issuer, signature, subject, not expired; authenticate read that the member is not
   * revoked): it lets the agent in with it, and the refresh that follows soon brings a fresh one.
   * Measured before this: a signer that had just died made every login on a forwarding relay wait
   * the whole answer timeout. When no signer answers (WICKET_ERR_AUTHORITY_UNAVAILABLE), a
   * presented credential that is still valid at all lets the agent in the same way: an authority
   * outage must not stop existing agents from reconnecting.
   */
  async admit(publicKey: Buffer, presented: Buffer): Promise<Admission> {
    const member = await this.authenticate(publicKey, presented);
    const own = this.#stillValid(presented, member.identifier);
    if (own !== undefined && this.#issuer.role === 'forwarding' && own.expiresAt - this.now() >= (own.expiresAt - own.issuedAt) / 2) {
      return { member, credential: own, fallback: true };
    }
    try {
      return { member, credential: await this.credentialFor(member), fallback: false };
    } catch (err) {
      if (!isWicketError(err, 'WICKET_ERR_AUTHORITY_UNAVAILABLE') || own === undefined) throw err;
      this.#logger.warn({ identifier: member.identifier, expiresAt: new Date(own.expiresAt).toISOString() }, 'no signer answered; let in with its own still-valid credential');
      return { member, credential: own, fallback: true };
    }
  }

  /** The presented credential when it verifies now (expiry included), else undefined. */
  #stillValid(presented: Buffer, subject: Identifier): Credential | undefined {
    try {
      return verifyCredential(presented, { authorityPublicKey: this.publicKey, subject, now: this.now() });
    } catch {
      return undefined;
    }
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

