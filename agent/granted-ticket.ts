import { randomBytes } from 'node:crypto';
import { wicketError } from '../protocol/errors.js';
import type { Identity } from '../protocol/identity.js';
import { ED25519_PUBLIC_KEY_LEN, TICKET_ID_LEN, TICKET_SECRET_LEN } from '../protocol/limits.js';
import { parseRelaysMessage } from '../protocol/relay-directory.js';
import { fromBase64url } from '../protocol/relay-frames.js';
import { Secret } from '../protocol/secret.js';
import { signTicketGrant, type TicketGrant } from '../protocol/ticket-grant.js';
import { encodeTicket, ticketKeyFromSecret, type Ticket } from '../protocol/ticket.js';

// `agent ticket create` as an admin makes a ticket (protocol/ticket-grant.ts): the agent draws the
// ticket's secret and id, derives the ticket key, and signs a grant of what the ticket allows with
// its own identity key. The relay (any relay of the project: a forwarding one has a signer endorse
// it through the store) answers with where the ticket sends agents and the expiry the signer
// fixed; the agent writes the ticket text with its secret, which never left this process.

/** What the admin asks the ticket to grant (checked by the CLI, and again by relay and signer). */
export interface TicketWish {
  readonly attributes: Record<string, string>;
  readonly relayNames: readonly string[];
  readonly usageCount: number;
  readonly expiresInMs: number;
}

export interface MadeTicket {
  /** The printable ticket; it holds the secret. */
  readonly text: Secret<string>;
  readonly ticketId: string;
  readonly expiresAt: string;
}

export interface PreparedTicket {
  /** The 'ticket.create' arguments: the wish, the ticket id and public ticket key, and the grant's signature. */
  readonly args: Record<string, unknown>;
  /**
   * The ticket text from the relay's answer; wipes the secret. Throws WICKET_ERR_RELAY_PROTOCOL on
   * an answer out of shape, and on one carrying a relay-made `ticket` (never printed: see finish).
   */
  finish(answer: Record<string, unknown>): MadeTicket;
  /** Wipes the secret without a ticket (the relay refused). */
  discard(): void;
}

function badAnswer(detail: string): never {
  throw wicketError('WICKET_ERR_RELAY_PROTOCOL', `the relay's ticket.create answer ${detail}`);
}

export function prepareGrantedTicket(admin: Identity, authorityPublicKey: Buffer, wish: TicketWish, now: number): PreparedTicket {
  const secret = new Secret(randomBytes(TICKET_SECRET_LEN));
  const ticketId = randomBytes(TICKET_ID_LEN);
  const grant: TicketGrant = {
    ticketId: ticketId.toString('hex'),
    ticketKey: ticketKeyFromSecret(secret).publicKey.toString('hex'),
    attributes: wish.attributes,
    relayNames: [...wish.relayNames],
    usageCount: wish.usageCount,
    expiresInMs: wish.expiresInMs,
    signedAt: now,
  };
  const { signature } = signTicketGrant(admin, authorityPublicKey, grant);
  const args = { ...grant, grantSignature: signature.toString('base64url') };
  return {
    args,
    discard: () => secret.reveal().fill(0),
    finish(answer: Record<string, unknown>): MadeTicket {
      try {
        // A relay that made a ticket itself (its own secret, id, URL, perhaps another project's)
        // answered a grant it ignored: that relay is older than grants, or hostile. Its ticket is
        // not the one this agent signed for, and nothing here could vouch for it.
        if (answer.ticket !== undefined) {
          badAnswer(
            'carries a ticket the relay made itself instead of endorsing the grant this agent signed: the relay is older than ticket grants, or hostile. Upgrade the relay, or create the ticket with `relay ticket create` on the signing host',
          );
        }
        if (answer.ticketId !== grant.ticketId) badAnswer('names another ticket id');
        const authority = typeof answer.authorityPublicKey === 'string' ? fromBase64url(answer.authorityPublicKey, 'authorityPublicKey', { exact: ED25519_PUBLIC_KEY_LEN }) : badAnswer('carries no authorityPublicKey');
        // The grant was signed for the project this agent enrolled in; a ticket for another is no use.
        if (!authority.equals(authorityPublicKey)) badAnswer("names another project's authority key than this agent's");
        const expiresAt = typeof answer.expiresAt === 'string' ? Date.parse(answer.expiresAt) : NaN;
        if (!Number.isSafeInteger(expiresAt) || new Date(expiresAt).toISOString() !== answer.expiresAt) badAnswer('carries no ISO expiresAt');
        const [first, ...others] = parseRelaysMessage(answer.relays);
        const ticket: Ticket = { relayUrl: first!.url, authorityPublicKey, ticketId, secret, expiresAt };
        if (first!.fingerprint !== undefined) ticket.relayCertFingerprint = first!.fingerprint;
        if (others.length > 0) ticket.otherRelays = others;
        return { text: new Secret(encodeTicket(ticket)), ticketId: grant.ticketId, expiresAt: answer.expiresAt as string };
      } finally {
        secret.reveal().fill(0);
      }
    },
  };
}
