import { wicketError } from '../protocol/errors.js';
import { verifySignature } from '../protocol/identity.js';
import { ED25519_PUBLIC_KEY_LEN, ED25519_SIGNATURE_LEN, MAX_CREDENTIAL_LEN, TICKET_ID_LEN, TICKET_SECRET_LEN } from '../protocol/limits.js';
import { fromBase64url, RELAY_AUTH_DOMAIN, RELAY_ENROLL_DOMAIN } from '../protocol/relay-frames.js';
import type { AgentToRelay } from '../protocol/relay-messages.js';
import { Secret } from '../protocol/secret.js';

// The first step of `auth` and `enroll` on one connection: decode the fields and check that the
// agent holds the key it names, by its signature over this connection's single-use challenge
// (protocol/README.md, "Relay frames"). Only then does the connection bind the key and ask the
// authority (store I/O) whether the member may in. Pure apart from the signature check.

export interface ProvenAuth {
  readonly publicKey: Buffer;
  readonly credential: Buffer;
  readonly revocationsAfter: number;
}

export interface ProvenEnroll {
  readonly publicKey: Buffer;
  readonly ticketId: Buffer;
  /** The caller zeroes it once redeemed. */
  readonly secret: Secret<Buffer>;
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

export function proveEnroll(message: Extract<AgentToRelay, { t: 'enroll' }>, challenge: Buffer): ProvenEnroll {
  const ticketId = fromBase64url(message.ticketId, 'ticketId', { exact: TICKET_ID_LEN });
  const secret = new Secret(fromBase64url(message.secret, 'secret', { exact: TICKET_SECRET_LEN }));
  const publicKey = fromBase64url(message.publicKey, 'publicKey', { exact: ED25519_PUBLIC_KEY_LEN });
  const signature = fromBase64url(message.signature, 'signature', { exact: ED25519_SIGNATURE_LEN });
  // Checked before redeeming, so a bad signature never spends a ticket use.
  if (!verifySignature(publicKey, Buffer.concat([RELAY_ENROLL_DOMAIN, challenge, ticketId]), signature)) {
    secret.reveal().fill(0);
    throw wicketError('WICKET_ERR_SIGNATURE_INVALID', "enroll signature does not verify over this connection's challenge and ticket id");
  }
  return { publicKey, ticketId, secret };
}
