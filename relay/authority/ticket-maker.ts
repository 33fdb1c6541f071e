import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { wicketError } from '../../protocol/errors.js';
import type { Identifier } from '../../protocol/identity.js';
import { MAX_TICKET_RELAYS, TICKET_GRANT_FRESHNESS_MS, TICKET_ID_LEN, TICKET_SECRET_LEN } from '../../protocol/limits.js';
import { Secret } from '../../protocol/secret.js';
import { checkGrantFresh, ticketGrantText, verifyTicketGrant, type TicketGrant as SignedGrant } from '../../protocol/ticket-grant.js';
import { encodeTicket, ticketKeyFromSecret, type Ticket, type TicketRelay } from '../../protocol/ticket.js';
import type { CredentialIssuer } from './credential-issuer.js';
import { ticketStatementText, type Endorser } from './endorsement.js';
import type { AuditEventName, AuthorityStore } from './store.js';
import { checkTicketRequest, type TicketGrant } from './ticket-rules.js';

// How the authority makes tickets (authority.ts delegates here). Two ways in, one way to record:
//   - createTicket: this process makes the secret (the relay's first admin ticket, `relay ticket
//     create`, an agent older than ticket grants);
//   - createGrantedTicket: an admin agent made the ticket itself and signed a grant for it
//     (protocol/ticket-grant.ts); the secret never reaches a relay. A process holding the project
//     key endorses it itself; a forwarding relay asks a signer to (grant-rule.ts, through the store).
// Both end in #record: the endorsement (where this process makes it), the row, the audit line.
// On a shared store only what a signer endorsed enrolls anyone, so a forwarding relay can neither
// make a ticket of its own nor change what an admin granted.

/** Where tickets send agents: the relay's public URL and, for a self-signed relay, its pinned certificate. */
export interface RelayEndpoint {
  readonly url: string;
  /** SHA-256 of the relay's DER certificate. */
  readonly fingerprint?: Buffer;
}

export interface TicketRequest extends TicketGrant {
  /** Who asked: an admin's identifier, or 'relay' / 'cli' on the relay host. */
  readonly createdBy: string;
}

export interface CreatedTicket {
  /** The printable ticket; it carries the secret, so it stays wrapped until printed or sent. */
  readonly text: Secret<string>;
  readonly ticketId: string;
  readonly expiresAt: number;
}

/** An admin's grant as its connection delivered it: the admin, what it signed, and the signature. */
export interface GrantedTicketRequest {
  readonly admin: { readonly identifier: Identifier; readonly publicKey: Buffer };
  readonly grant: SignedGrant;
  readonly signature: Buffer;
}

/** What the admin agent needs to write the ticket text with its own secret. */
export interface GrantedTicket {
  readonly ticketId: string;
  readonly expiresAt: number;
  /** This relay first, then the project's other live relays. */
  readonly relays: TicketRelay[];
  readonly authorityPublicKey: Buffer;
}

export interface TicketMakerOptions {
  readonly store: AuthorityStore;
  readonly logger: Logger;
  readonly now: () => number;
  readonly publicKey: Buffer;
  readonly endpoint: () => RelayEndpoint | undefined;
  /** Present where this process holds the key and the store keeps endorsements. */
  readonly endorser: Endorser | undefined;
  readonly issuer: CredentialIssuer;
  readonly audit: (event: AuditEventName, identifier: string | undefined, detail?: Record<string, unknown>) => Promise<void>;
}

interface CheckedTicket {
  readonly ticketId: Buffer;
  readonly ticketKey: Buffer;
  readonly attributes: Record<string, string>;
  readonly relayNames: string[];
  readonly usageCount: number;
  readonly createdAt: number;
  readonly expiresAt: number;
  readonly createdBy: string;
}

/**
 * A forwarding relay records the expiry it reads back from the store's answer row, which anyone
 * who writes the store could have changed. A signer fixed it as its clock + expiresInMs while this
 * relay waited. Its clock and this relay's were each within TICKET_GRANT_FRESHNESS_MS of the
 * grant's signedAt (both judged it), so within twice that of each other: anything outside that
 * window is not the signer's answer. Refused with WICKET_ERR_NOT_ENDORSED (the grant was good;
 * the answer is not what the signer endorsed), rather than recorded into a ticket row and a
 * ticket text the endorsement contradicts. What a tamperer can still do inside the window (move
 * the expiry by minutes) gains nothing: the signer checks expiry against its endorsement.
 */
export function checkEndorsedExpiry(expiresAt: number, o: { askedAt: number; answeredAt: number; expiresInMs: number }): void {
  const skew = 2 * TICKET_GRANT_FRESHNESS_MS;
  const earliest = o.askedAt + o.expiresInMs - skew;
  const latest = o.answeredAt + o.expiresInMs + skew;
  if (!Number.isSafeInteger(expiresAt) || expiresAt < earliest || expiresAt > latest) {
    throw wicketError(
      'WICKET_ERR_NOT_ENDORSED',
      `the store's answer gives the granted ticket an expiry (${String(expiresAt).slice(0, 24)}) no signer could have fixed for a ${o.expiresInMs} ms lifetime: someone who writes the store changed the answer; nothing was recorded`,
    );
  }
}

export class TicketMaker {
  constructor(private readonly o: TicketMakerOptions) {}

  /** This process cannot endorse, yet the store only believes what a signer endorsed. */
  get #forwarding(): boolean {
    return this.o.store.endorsements !== undefined && this.o.endorser === undefined;
  }

  #endpoint(): RelayEndpoint {
    const endpoint = this.o.endpoint();
    if (endpoint === undefined) throw wicketError('WICKET_ERR_INTERNAL', 'the relay endpoint is not known yet');
    return endpoint;
  }

  /**
   * The project's other live relays (a shared store's presence), most recently seen first, for a
   * ticket that lists this relay first: an agent enrolled with it moves to them when this one is lost.
   */
  async #otherLiveRelays(self: RelayEndpoint, now: number): Promise<TicketRelay[]> {
    const others: TicketRelay[] = [];
    for (const relay of await this.o.store.liveRelays(now)) {
      if (relay.url === self.url || others.length + 1 >= MAX_TICKET_RELAYS) continue;
      others.push(relay.fingerprint === undefined ? { url: relay.url } : { url: relay.url, fingerprint: relay.fingerprint });
    }
    return others;
  }

  /**
   * A new ticket whose secret this process makes. On a shared store the signer must endorse it (a
   * forwarding relay's ticket would enroll nobody), so a process without the key refuses:
   * WICKET_ERR_SIGNER_ONLY (an admin agent's grant is the way through a forwarding relay).
   */
  async createTicket(request: TicketRequest): Promise<CreatedTicket> {
    const endpoint = this.#endpoint();
    if (this.#forwarding) {
      throw wicketError(
        'WICKET_ERR_SIGNER_ONLY',
        'this relay only forwards (it holds no project key), and on a shared store it cannot make a ticket\'s secret itself: run `agent ticket create` from an up-to-date admin agent (it makes the ticket and signs a grant, through any relay), or `relay ticket create --store … --authority-key FILE` where the key is',
      );
    }
    const { attributes, relayNames, usageCount, expiresInMs } = checkTicketRequest(request);
    const now = this.o.now();
    const secret = new Secret(randomBytes(TICKET_SECRET_LEN));
    const otherRelays = await this.#otherLiveRelays(endpoint, now);
    const ticket: Ticket = { relayUrl: endpoint.url, authorityPublicKey: this.o.publicKey, ticketId: randomBytes(TICKET_ID_LEN), secret, expiresAt: now + expiresInMs };
    if (endpoint.fingerprint !== undefined) ticket.relayCertFingerprint = endpoint.fingerprint;
    if (otherRelays.length > 0) ticket.otherRelays = otherRelays;
    const text = new Secret(encodeTicket(ticket));
    const ticketKey = ticketKeyFromSecret(secret).publicKey;
    secret.reveal().fill(0);
    const checked = { ticketId: ticket.ticketId, ticketKey, attributes, relayNames, usageCount, createdAt: now, expiresAt: ticket.expiresAt, createdBy: request.createdBy };
    // 16 random bytes are never taken; if they were, no ticket would be better than someone else's.
    if (!(await this.#record(checked, true))) throw wicketError('WICKET_ERR_INTERNAL', `a new random ticket id ${checked.ticketId.toString('hex')} is taken`);
    return { text, ticketId: ticket.ticketId.toString('hex'), expiresAt: ticket.expiresAt };
  }

  /**
   * A ticket an admin agent made and signed a grant for. The grant must verify under the admin's key
   * for this project and be fresh by this relay's clock (WICKET_ERR_GRANT_INVALID), and grant what
   * any ticket may (WICKET_ERR_ARGUMENT). Where this process holds the key (or the store is
   * SQLite) it endorses and records the ticket itself; a forwarding relay asks a signer, which
   * judges the grant again from the store alone (grant-rule.ts), and records exactly what the
   * signer endorsed.
   */
  async createGrantedTicket(request: GrantedTicketRequest): Promise<GrantedTicket> {
    const endpoint = this.#endpoint();
    const { admin, grant, signature } = request;
    const statement = ticketGrantText(grant);
    if (!verifyTicketGrant({ adminPublicKey: admin.publicKey, authorityPublicKey: this.o.publicKey, statement, signature })) {
      throw wicketError('WICKET_ERR_GRANT_INVALID', `the grant for ticket ${grant.ticketId} does not verify under ${admin.identifier}'s key for this project`);
    }
    const now = this.o.now();
    checkGrantFresh(grant, now, "this relay's clock");
    const { attributes, relayNames, usageCount, expiresInMs } = checkTicketRequest(grant);
    const ticketId = Buffer.from(grant.ticketId, 'hex');
    let expiresAt: number;
    if (this.#forwarding) {
      if (this.o.issuer.endorseGrant === undefined) throw wicketError('WICKET_ERR_SIGNER_ONLY', 'this relay neither holds the project key nor reaches a signer');
      expiresAt = await this.o.issuer.endorseGrant(admin.identifier, { ticketId, statement, signature });
      checkEndorsedExpiry(expiresAt, { askedAt: now, answeredAt: this.o.now(), expiresInMs });
    } else {
      expiresAt = now + expiresInMs;
    }
    const ticketKey = Buffer.from(grant.ticketKey, 'hex');
    // Endorsed (insert-only) and stored (insert-only) by the store's unique keys, so a replayed
    // grant, even two at once on two relays, makes at most one ticket.
    if (!(await this.#record({ ticketId, ticketKey, attributes, relayNames, usageCount, createdAt: now, expiresAt, createdBy: admin.identifier }, !this.#forwarding))) {
      throw wicketError('WICKET_ERR_GRANT_INVALID', `ticket ${grant.ticketId} is already endorsed or stored: a grant makes one ticket once (run \`agent ticket create\` again for a new one)`);
    }
    const relays: TicketRelay[] = [endpoint.fingerprint === undefined ? { url: endpoint.url } : { url: endpoint.url, fingerprint: endpoint.fingerprint }];
    relays.push(...(await this.#otherLiveRelays(endpoint, now)));
    return { ticketId: grant.ticketId, expiresAt, relays, authorityPublicKey: this.o.publicKey };
  }

  /**
   * Stores a checked ticket: its endorsement first when this process makes it (`endorseHere`; a
   * ticket row without one, after a crash between the two, enrolls nobody), then the row, the
   * audit event and the log line. Both writes are insert-only: false (and no audit) when the ticket
   * id was endorsed or stored already; a ticket is endorsed once, never replaced.
   */
  async #record(t: CheckedTicket, endorseHere: boolean): Promise<boolean> {
    const ticketId = t.ticketId.toString('hex');
    if (endorseHere && this.o.endorser !== undefined) {
      const statement = ticketStatementText({ ticketId, ticketKey: t.ticketKey.toString('hex'), attributes: t.attributes, relayNames: t.relayNames, usageCount: t.usageCount, expiresAt: t.expiresAt });
      if (!(await this.o.store.endorsements!.writeNew(this.o.endorser.endorse('ticket', ticketId, statement)))) return false;
    }
    if (!(await this.o.store.insertTicket(t))) return false;
    await this.o.audit('ticket-create', t.createdBy.startsWith('I') ? t.createdBy : undefined, {
      ticketId,
      createdBy: t.createdBy,
      attributes: t.attributes,
      relayNames: t.relayNames,
      usageCount: t.usageCount,
      expiresAt: new Date(t.expiresAt).toISOString(),
    });
    this.o.logger.info({ ticketId, createdBy: t.createdBy, usageCount: t.usageCount, relayNames: t.relayNames, expiresAt: t.expiresAt }, 'ticket created');
    return true;
  }
}
