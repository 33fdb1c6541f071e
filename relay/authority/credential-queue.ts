// The credential queue of a store shared by several relays (issue 14, "signing key only where
// credentials are issued"). A forwarding relay holds no signing key: it asks for a credential by
// writing a request row, and a signer (any relay started with the project key, or `relay
// authority`) answers it by writing the signed credential, or the code it refused with, into the
// same row. Both sides are told by NOTIFY and re-read as a backstop. A request names only what to
// sign for, and the evidence of a redemption; the signer decides what goes in the credential from
// its own endorsements (membership-rule.ts), not from what the rows claim: every relay can write
// them.
//
// The same queue carries an admin's ticket grant (kind 'ticket', protocol/ticket-grant.ts): the
// forwarding relay an admin is connected to asks a signer to endorse a ticket the admin made and
// signed for; the signer answers with the expiry it fixed (grant-rule.ts).
//
// PgCredentialQueue (pg-credential-queue.ts) is the one implementation; SQLite has one relay, which
// always signs.

import type { Endorsement, MemberEvidence } from './endorsement.js';

/** A member's credential (its current attributes), a relay process's own (`wicket:relay`), or an admin's ticket grant. */
export type CredentialRequestKind = 'member' | 'relay' | 'ticket';

/** kind 'ticket': the grant as the admin signed it (protocol/ticket-grant.ts), and the ticket it names. */
export interface QueuedGrant {
  readonly ticketId: Buffer;
  /** The canonical statement text the admin signed. */
  readonly statement: string;
  readonly signature: Buffer;
}

export interface CredentialRequest {
  readonly kind: CredentialRequestKind;
  /** The identifier the credential names (kind 'ticket': the admin who signed the grant). */
  readonly subject: string;
  /** kind 'relay': the relay's own Ed25519 public key, whose identifier is the subject. */
  readonly publicKey?: Buffer;
  /** kind 'relay': the relay process's id, the credential's `wicket:relay` attribute. */
  readonly relayId?: string;
  /** Which process asked (a random id per process, for the logs). */
  readonly requestedBy: string;
  /** kind 'member', right after a redemption: the ticket and the agent's proof (membership-rule.ts). */
  readonly evidence?: MemberEvidence;
  /** kind 'ticket'. */
  readonly grant?: QueuedGrant;
}

/** What a signer reads of a member (a MemberRecord; kept apart so store.ts can name this file). */
export interface QueuedMember {
  readonly identifier: string;
  readonly publicKey: Buffer;
  readonly attributes: Readonly<Record<string, string>>;
  readonly enrolledAt: number;
  readonly revokedAt?: number;
}

/** A request as a signer reads it back: any field may be hostile (anyone who can write the store). */
export interface PendingCredentialRequest {
  readonly requestId: number;
  readonly kind: string;
  readonly subject: string;
  readonly publicKey: Buffer | undefined;
  readonly relayId: string | undefined;
  readonly requestedBy: string;
  /** ms since epoch, by the store's clock. */
  readonly requestedAt: number;
  /** The member row named by `subject`, if any, read in the signer's transaction. */
  readonly member: QueuedMember | undefined;
  readonly evidence: MemberEvidence | undefined;
  readonly grant: QueuedGrant | undefined;
  /** The stored endorsements of the subject (as a member) and of the evidence's (or grant's) ticket, unchecked. */
  readonly memberEndorsement: Endorsement | undefined;
  readonly ticketEndorsement: Endorsement | undefined;
}

/** What a signer wrote into a request: a credential, a ticket grant's endorsed expiry, or a refusal code. */
export type CredentialAnswer = { readonly credential: Buffer } | { readonly ticketExpiresAt: number } | { readonly refused: string };

/** A signer's decision: the answer, and a member or ticket endorsement to store in the same transaction. */
export type SignerDecision = CredentialAnswer & { readonly endorse?: Endorsement };

export interface CredentialQueue {
  /** Stores the request (stamped with the store's clock) and tells the signers; returns its id. */
  request(request: CredentialRequest): Promise<number>;
  /** The answer to request `id`, or undefined while none is written. */
  answerOf(id: number): Promise<CredentialAnswer | undefined>;
  /** Deletes request `id` (answered, or given up on). */
  forget(id: number): Promise<void>;
  /**
   * One signer sweep, in one transaction: deletes requests older than `keepMs` (by the store's
   * clock), then answers up
   * to `limit` unanswered ones with `decide` (rows another signer is answering are skipped) and
   * tells the requesters. Returns how many it answered. A ticket endorsement is stored insert-only:
   * when the ticket was endorsed already (another signer's sweep got there first), the answer
   * becomes a WICKET_ERR_GRANT_INVALID refusal. `answered` hears each answer as it was written.
   */
  answerPending(
    decide: (request: PendingCredentialRequest) => SignerDecision,
    o: { now: number; keepMs: number; limit: number; answered?: (request: PendingCredentialRequest, answer: SignerDecision) => void },
  ): Promise<number>;
  /** `listener` runs with the request id on each NOTIFY, and with undefined after a (re)connect. */
  onRequests(listener: (id: number | undefined) => void): void;
  onAnswers(listener: (id: number | undefined) => void): void;
}
