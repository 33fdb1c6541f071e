import { wicketError } from '../protocol/errors.js';
import { verifySignature } from '../protocol/identity.js';
import { ED25519_PUBLIC_KEY_LEN, ED25519_SIGNATURE_LEN, MAX_CREDENTIAL_LEN, TICKET_ID_LEN } from '../protocol/limits.js';
import { fromBase64url, RELAY_AUTH_DOMAIN, RELAY_ENROLL_DOMAIN } from '../protocol/relay-frames.js';
import type { AgentToRelay } from '../protocol/relay-messages.js';
import { verifyTicketProof } from '../protocol/ticket.js';

// The first step of `auth` and `enroll` on one connection: decode the fields and check that the
// agent holds the key it names, by its signature over this connection's single-use challenge
// (protocol/README.md, "Relay frames"). Only then does the connection bind the key and ask the
// authority (store I/O) whether the member may in. Pure apart from the signature checks.
//
// An enroll carries no ticket secret, only the ticket's public key and its proof for this member
// key (protocol/ticket.ts): both are checked here, before the store is touched, so a bad proof
// never spends a ticket use. The store then decides whether that public key is the ticket's.

export interface ProvenAuth {
  readonly publicKey: Buffer;
  readonly credential: Buffer;
  readonly revocationsAfter: number;
}

export interface ProvenEnroll {
  readonly publicKey: Buffer;
  readonly ticketId: Buffer;
  /** The ticket key's public key, as the agent derived it from the secret. */
  readonly ticketKey: Buffer;
  /** The ticket key's signature of ticketProofMessage(authority, ticketId, publicKey). */
  readonly ticketProof: Buffer;
}

export function proveAuth(message: Extract<AgentToRelay, { t: 'auth' }>, challenge: Buffer): ProvenAuth {
  const publicKey = fromBase64url(message.publicKey, 'publicKey', { exact: ED25519_PUBLIC_KEY_LEN });
  const signature = fromBase64url(message.signature, 'signature', { exact: ED25519_SIGNATURE_LEN });
  const credential = fromBase64url(message.credential, 'credential', { max: MAX_CREDENTIAL_LEN });
  if (!verifySignature(publicKey, Buffer.concat([RELAY_AUTH_DOMAIN, challenge]), signature)) {
    throw wicketError('WICKET_ERR_SIGNATURE_INVALID', "auth signature does not verify over this connection's challenge");
  }
  return { publicKey, credential, revocationsAfter: message.revocationsAfter };
}

/** `authorityPublicKey`: this relay's own project key, which the ticket proof must name. */
export function proveEnroll(message: Extract<AgentToRelay, { t: 'enroll' }>, challenge: Buffer, authorityPublicKey: Buffer): ProvenEnroll {
  const ticketId = fromBase64url(message.ticketId, 'ticketId', { exact: TICKET_ID_LEN });
  const ticketKey = fromBase64url(message.ticketKey, 'ticketKey', { exact: ED25519_PUBLIC_KEY_LEN });
  const ticketProof = fromBase64url(message.ticketProof, 'ticketProof', { exact: ED25519_SIGNATURE_LEN });
  const publicKey = fromBase64url(message.publicKey, 'publicKey', { exact: ED25519_PUBLIC_KEY_LEN });
  const signature = fromBase64url(message.signature, 'signature', { exact: ED25519_SIGNATURE_LEN });
  // Both checked before redeeming, so neither a bad signature nor a bad proof spends a ticket use.
  if (!verifySignature(publicKey, Buffer.concat([RELAY_ENROLL_DOMAIN, challenge, ticketId]), signature)) {
    throw wicketError('WICKET_ERR_SIGNATURE_INVALID', "enroll signature does not verify over this connection's challenge and ticket id");
  }
  if (!verifyTicketProof({ ticketKey, authorityPublicKey, ticketId, memberPublicKey: publicKey, proof: ticketProof })) {
    throw wicketError('WICKET_ERR_SIGNATURE_INVALID', "enroll ticket proof does not verify for this ticket key, ticket id, member key and this relay's authority");
  }
  return { publicKey, ticketId, ticketKey, ticketProof };
}
