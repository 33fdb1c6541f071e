import { issueCredential, type Attributes, type Credential } from '../../protocol/credential.js';
import { asWicketError, wicketError } from '../../protocol/errors.js';
import { identifierOf, isIdentifier, type Identity } from '../../protocol/identity.js';
import { ED25519_PUBLIC_KEY_LEN } from '../../protocol/limits.js';
import { isRelayId, RELAY_ID_ATTRIBUTE } from '../../protocol/relay-names.js';
import type { CredentialAnswer, PendingCredentialRequest } from './credential-queue.js';
import type { MemberRecord } from './store.js';

// Who signs a relay's credentials (issue 14, "signing key only where credentials are issued").
// A signing relay (SQLite, or PostgreSQL with the project key) signs in its own process
// (LocalIssuer); a forwarding relay holds only the project's public key and asks a signer through
// the store (remote-issuer.ts). The Authority sees only this interface, so the rest of the relay
// asks for a credential the same way in both roles.
//
// answerRequest is the one rule a signer applies to a queued request (credential-signer.ts): the
// request names a subject, the signer decides from the store what to sign, and refuses anything
// else. Pure apart from the signature.

/** signing: this process holds the project key. forwarding: it only verifies, and asks a signer. */
export type AuthorityRole = 'signing' | 'forwarding';

export type CredentialSubject =
  | { readonly kind: 'member'; readonly member: MemberRecord }
  /** A relay process's own Ed25519 key (relay-to-relay links), not a member. */
  | { readonly kind: 'relay'; readonly publicKey: Buffer; readonly relayId: string };

export interface CredentialIssuer {
  readonly role: AuthorityRole;
  /** A fresh credential for `subject`. Forwarding: may throw WICKET_ERR_AUTHORITY_UNAVAILABLE. */
  issue(subject: CredentialSubject): Promise<Credential>;
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

/** Signs in this process: the relay (or `relay authority`) holds the project key. */
export class LocalIssuer implements CredentialIssuer {
  readonly role = 'signing';

  constructor(
    private readonly identity: Identity,
    private readonly now: () => number,
    private readonly ttlMs: number,
  ) {}

  issue(subject: CredentialSubject): Promise<Credential> {
    try {
      return Promise.resolve(signSubject(this.identity, subject, this.now(), this.ttlMs));
    } catch (err) {
      return Promise.reject(asWicketError(err));
    }
  }
}

/**
 * A signer's answer to one queued request, whoever wrote the row: a member's credential carries
 * the member's CURRENT attributes from the store, and an unknown or revoked member, a member row
 * carrying a relay's attribute, a relay key
 * that is not its subject's, a member's key asked for as a relay, or an unknown kind is refused
 * (the code goes back to the requester), never signed.
 */
export function answerRequest(identity: Identity, request: PendingCredentialRequest, issuedAt: number, ttlMs: number): CredentialAnswer {
  try {
    if (!isIdentifier(request.subject)) throw wicketError('WICKET_ERR_IDENTIFIER_INVALID', 'the subject is not an identifier');
    if (request.kind === 'member') {
      const member = request.member;
      if (member === undefined || member.identifier !== request.subject) throw wicketError('WICKET_ERR_MEMBER_UNKNOWN', `no member ${request.subject}`);
      if (member.revokedAt !== undefined) throw wicketError('WICKET_ERR_REVOKED', `${request.subject} is revoked`);
      // A relay's attribute on a member row was written past the authority (tickets cannot grant
      // it): signing it would make a member pass for a relay on the mesh.
      if (member.attributes[RELAY_ID_ATTRIBUTE] !== undefined) throw wicketError('WICKET_ERR_ARGUMENT', `member ${request.subject} carries the reserved ${RELAY_ID_ATTRIBUTE} attribute`);
      return { credential: issueCredential(identity, { subject: request.subject, attributes: member.attributes, issuedAt, ttlMs }).encoded };
    }
    if (request.kind === 'relay') {
      checkRelaySubject(request.publicKey, request.relayId);
      if (identifierOf(request.publicKey!) !== request.subject) throw wicketError('WICKET_ERR_CREDENTIAL_SUBJECT', 'the relay key is not the subject');
      // A member's key is an agent's: it never gets a relay's credential.
      if (request.member !== undefined) throw wicketError('WICKET_ERR_ARGUMENT', `${request.subject} is a member, not a relay`);
      return { credential: signSubject(identity, { kind: 'relay', publicKey: request.publicKey!, relayId: request.relayId! }, issuedAt, ttlMs).encoded };
    }
    throw wicketError('WICKET_ERR_ARGUMENT', 'unknown request kind');
  } catch (err) {
    return { refused: asWicketError(err).code };
  }
}
