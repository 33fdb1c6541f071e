import { issueCredential, type Attributes, type Credential } from '../../protocol/credential.js';
import { asWicketError, wicketError } from '../../protocol/errors.js';
import { identifierOf, isIdentifier, type Identity } from '../../protocol/identity.js';
import { ED25519_PUBLIC_KEY_LEN } from '../../protocol/limits.js';
import { isRelayId, RELAY_ID_ATTRIBUTE } from '../../protocol/relay-names.js';
import type { PendingCredentialRequest, QueuedGrant, SignerDecision } from './credential-queue.js';
import { Endorser, type EndorsementStore, type MemberEvidence } from './endorsement.js';
import { judgeTicketGrant } from './grant-rule.js';
import { judgeMember } from './membership-rule.js';
import type { MemberRecord } from './store.js';

// Who signs a relay's credentials (issue 14, "signing key only where credentials are issued").
// A signing relay (SQLite, or PostgreSQL with the project key) signs in its own process
// (LocalIssuer); a forwarding relay holds only the project's public key and asks a signer through
// the store (remote-issuer.ts). The Authority sees only this interface, so the rest of the relay
// asks for a credential the same way in both roles.
//
// On a shared store, what a member's credential carries is decided by membership-rule.ts from the
// signer's own endorsements, the same way whether the signer is asked through the queue
// (answerRequest, credential-signer.ts) or signs for its own relay's agents (LocalIssuer).

/** signing: this process holds the project key. forwarding: it only verifies, and asks a signer. */
export type AuthorityRole = 'signing' | 'forwarding';

export type CredentialSubject =
  /** evidence: right after a redemption, what lets a signer on a shared store admit the member. */
  | { readonly kind: 'member'; readonly member: MemberRecord; readonly evidence?: MemberEvidence }
  /** A relay process's own Ed25519 key (relay-to-relay links), not a member. */
  | { readonly kind: 'relay'; readonly publicKey: Buffer; readonly relayId: string };

export interface CredentialIssuer {
  readonly role: AuthorityRole;
  /** A fresh credential for `subject`. Forwarding: may throw WICKET_ERR_AUTHORITY_UNAVAILABLE. */
  issue(subject: CredentialSubject): Promise<Credential>;
  /**
   * Forwarding only (a signing process endorses tickets itself): asks a signer to endorse the
   * ticket an admin's grant names (grant-rule.ts); resolves to the expiry the signer fixed.
   */
  endorseGrant?(admin: string, grant: QueuedGrant): Promise<number>;
}

/** The attributes of a relay's own credential. */
export function relayAttributes(relayId: string): Attributes {
  return { [RELAY_ID_ATTRIBUTE]: relayId };
}

/** Checks a relay credential's inputs the same way on both sides of the queue. Throws WICKET_ERR_ARGUMENT / KEY_INVALID. */
export function checkRelaySubject(publicKey: unknown, relayId: unknown): void {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== ED25519_PUBLIC_KEY_LEN) {
    throw wicketError('WICKET_ERR_KEY_INVALID', `a relay's key must be a ${ED25519_PUBLIC_KEY_LEN}-byte Ed25519 public key`);
  }
  if (!isRelayId(relayId)) throw wicketError('WICKET_ERR_ARGUMENT', `relay id ${JSON.stringify(String(relayId).slice(0, 80))} is not 1..64 letters, digits, '.', '_' or '-'`);
}

export function signSubject(identity: Identity, subject: CredentialSubject, issuedAt: number, ttlMs: number): Credential {
  if (subject.kind === 'member') {
    return issueCredential(identity, { subject: subject.member.identifier, attributes: subject.member.attributes, issuedAt, ttlMs });
  }
  checkRelaySubject(subject.publicKey, subject.relayId);
  return issueCredential(identity, { subject: identifierOf(subject.publicKey), attributes: relayAttributes(subject.relayId), issuedAt, ttlMs });
}

/**
 * Signs in this process: the relay (or `relay authority`) holds the project key. With `endorsements`
 * (a shared store) a member gets only what membership-rule.ts allows, and a member it admits on a
 * ticket's evidence is endorsed before the credential is handed out.
 */
export class LocalIssuer implements CredentialIssuer {
  readonly role = 'signing';
  readonly #endorser: Endorser | undefined;

  constructor(
    private readonly identity: Identity,
    private readonly now: () => number,
    private readonly ttlMs: number,
    private readonly endorsements?: EndorsementStore,
  ) {
    this.#endorser = endorsements === undefined ? undefined : new Endorser(identity);
  }

  async issue(subject: CredentialSubject): Promise<Credential> {
    try {
      if (subject.kind !== 'member' || this.endorsements === undefined) return signSubject(this.identity, subject, this.now(), this.ttlMs);
      const { member, evidence } = subject;
      const [memberEndorsement, ticketEndorsement] = await Promise.all([
        this.endorsements.read('member', member.identifier),
        evidence === undefined ? undefined : this.endorsements.read('ticket', evidence.ticketId.toString('hex')),
      ]);
      const now = this.now();
      const verdict = judgeMember(this.#endorser!, this.identity.publicKey, { member, memberEndorsement, evidence, ticketEndorsement }, now);
      if (verdict.endorse !== undefined) await this.endorsements.write(verdict.endorse);
      return issueCredential(this.identity, { subject: member.identifier, attributes: verdict.attributes, issuedAt: now, ttlMs: this.ttlMs });
    } catch (err) {
      throw asWicketError(err);
    }
  }
}

/**
 * A signer's answer to one queued request, whoever wrote the row: a member's credential carries
 * what membership-rule.ts allows (with the endorsement to store when it admits one), an admin's
 * ticket grant is endorsed when grant-rule.ts allows it, and an
 * unknown, revoked or unendorsed member, a member row carrying a relay's attribute, a relay key
 * that is not its subject's, a member's key asked for as a relay, or an unknown kind is refused
 * (the code goes back to the requester), never signed.
 */
export function answerRequest(identity: Identity, endorser: Endorser, request: PendingCredentialRequest, issuedAt: number, ttlMs: number): SignerDecision {
  try {
    if (!isIdentifier(request.subject)) throw wicketError('WICKET_ERR_IDENTIFIER_INVALID', 'the subject is not an identifier');
    if (request.kind === 'member') {
      const member = request.member;
      if (member === undefined || member.identifier !== request.subject) throw wicketError('WICKET_ERR_MEMBER_UNKNOWN', `no member ${request.subject}`);
      const { memberEndorsement, evidence, ticketEndorsement } = request;
      const verdict = judgeMember(endorser, identity.publicKey, { member, memberEndorsement, evidence, ticketEndorsement }, issuedAt);
      const credential = issueCredential(identity, { subject: request.subject, attributes: verdict.attributes, issuedAt, ttlMs }).encoded;
      return verdict.endorse === undefined ? { credential } : { credential, endorse: verdict.endorse };
    }
    if (request.kind === 'relay') {
      checkRelaySubject(request.publicKey, request.relayId);
      if (identifierOf(request.publicKey!) !== request.subject) throw wicketError('WICKET_ERR_CREDENTIAL_SUBJECT', 'the relay key is not the subject');
      // A member's key is an agent's: it never gets a relay's credential.
      if (request.member !== undefined) throw wicketError('WICKET_ERR_ARGUMENT', `${request.subject} is a member, not a relay`);
      return { credential: signSubject(identity, { kind: 'relay', publicKey: request.publicKey!, relayId: request.relayId! }, issuedAt, ttlMs).encoded };
    }
    if (request.kind === 'ticket') {
      const { subject, member, memberEndorsement, grant, ticketEndorsement, requestedAt } = request;
      const verdict = judgeTicketGrant(endorser, identity.publicKey, { subject, member, memberEndorsement, grant, ticketEndorsement, requestedAt }, issuedAt);
      return { ticketExpiresAt: verdict.expiresAt, endorse: verdict.endorse };
    }
    throw wicketError('WICKET_ERR_ARGUMENT', 'unknown request kind');
  } catch (err) {
    return { refused: asWicketError(err).code };
  }
}
