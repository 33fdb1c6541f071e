import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { wicketError } from '../../protocol/errors.js';
import type { Identifier } from '../../protocol/identity.js';
import { MAX_TICKET_RELAYS, TICKET_ID_LEN, TICKET_SECRET_LEN } from '../../protocol/limits.js';
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
    await this.#record(checked, true);
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
    } else {
      if (this.o.endorser !== undefined && this.o.endorser.verifies(await this.o.store.endorsements!.read('ticket', grant.ticketId), 'ticket', grant.ticketId)) {
        throw wicketError('WICKET_ERR_GRANT_INVALID', `ticket ${grant.ticketId} is already endorsed: a grant makes one ticket once`);
      }
      expiresAt = now + expiresInMs;
    }
    const ticketKey = Buffer.from(grant.ticketKey, 'hex');
    await this.#record({ ticketId, ticketKey, attributes, relayNames, usageCount, createdAt: now, expiresAt, createdBy: admin.identifier }, !this.#forwarding);
    const relays: TicketRelay[] = [endpoint.fingerprint === undefined ? { url: endpoint.url } : { url: endpoint.url, fingerprint: endpoint.fingerprint }];
    relays.push(...(await this.#otherLiveRelays(endpoint, now)));
    return { ticketId: grant.ticketId, expiresAt, relays, authorityPublicKey: this.o.publicKey };
  }

  /**
   * Stores a checked ticket: its endorsement first when this process makes it (`endorseHere`; a
   * ticket row without one, after a crash between the two, enrolls nobody), then the row, the
   * audit event and the log line.
   */
  async #record(t: CheckedTicket, endorseHere: boolean): Promise<void> {
    const ticketId = t.ticketId.toString('hex');
    if (endorseHere && this.o.endorser !== undefined) {
      const statement = ticketStatementText({ ticketId, ticketKey: t.ticketKey.toString('hex'), attributes: t.attributes, relayNames: t.relayNames, usageCount: t.usageCount, expiresAt: t.expiresAt });
      await this.o.store.endorsements!.write(this.o.endorser.endorse('ticket', ticketId, statement));
    }
    await this.o.store.insertTicket(t);
    await this.o.audit('ticket-create', t.createdBy.startsWith('I') ? t.createdBy : undefined, {
      ticketId,
      createdBy: t.createdBy,
      attributes: t.attributes,
      relayNames: t.relayNames,
      usageCount: t.usageCount,
      expiresAt: new Date(t.expiresAt).toISOString(),
    });
    this.o.logger.info({ ticketId, createdBy: t.createdBy, usageCount: t.usageCount, relayNames: t.relayNames, expiresAt: t.expiresAt }, 'ticket created');
  }
}
