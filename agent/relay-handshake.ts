import { wicketError, type WicketError } from '../protocol/errors.js';
import { verifyCredential, type Credential } from '../protocol/credential.js';
import { identifierOf, parseIdentifier, type Identity } from '../protocol/identity.js';
import { MAX_CREDENTIAL_LEN, RELAY_CHALLENGE_LEN, TICKET_ID_LEN, TICKET_SECRET_LEN } from '../protocol/limits.js';
import {
  RELAY_AUTH_DOMAIN,
  RELAY_ENROLL_DOMAIN,
  RELAY_PROTOCOL_VERSION,
  base64url,
  fromBase64url,
} from '../protocol/relay-frames.js';
import type { RelayToAgent } from '../protocol/relay-messages.js';
import type { Secret } from '../protocol/secret.js';
import { ticketKeyFromSecret, ticketProofMessage } from '../protocol/ticket.js';
import { relayError, type RelayLink } from './relay-link.js';

// The agent's side of the relay handshake (protocol/README.md, "Relay frames"):
//
//   relay -> agent   hello   {version, challenge (32 bytes), authority identifier}
//   agent -> relay   auth    {publicKey, Ed25519(RELAY_AUTH_DOMAIN ‖ challenge), credential, revocationsAfter}
//                 or enroll  {ticketId, ticketKey, ticketProof, publicKey, Ed25519(RELAY_ENROLL_DOMAIN ‖ challenge ‖ ticketId)}
//   relay -> agent   welcome {identifier, credential}   or   error {code, message}
//
// The hello's authority must be the one we pinned (from the ticket or the enrollment) before we
// say anything: not even a ticket proof goes to a relay serving another authority. The ticket
// secret itself never leaves the agent: it derives the ticket key, whose public key and signature
// of (authority, ticket id, our key) are what the relay sees (protocol/ticket.ts). The
// welcome's credential is verified against the pinned authority key, so a relay that lies about
// its authority in hello still cannot get past this point.

export type HandshakeMode =
  /** `revocationsAfter`: the last revocation event seq this agent saw; the relay re-syncs from it. */
  | { kind: 'auth'; identity: Identity; credential: Buffer; revocationsAfter: number }
  | { kind: 'enroll'; identity: Identity; ticketId: Buffer; secret: Secret<Buffer> };

export interface HandshakeOptions {
  authorityPublicKey: Buffer;
  now: number;
  timeoutMs: number;
  /** Filled in as the handshake goes, for enrollment to decide whether another relay may be tried. */
  progress?: HandshakeProgress;
}

export interface HandshakeProgress {
  /**
   * The relay answered auth/enroll with an error: a decision, and final (the relays of a project
   * share one store, so no other relay decides otherwise). Anything else that fails (no answer, a
   * dial, a pin, a foreign authority, a bad welcome) leaves it false.
   */
  refused: boolean;
}


function protocolError(link: RelayLink, detail: string): WicketError {
  const err = wicketError('WICKET_ERR_RELAY_PROTOCOL', detail);
  link.fail(err);
  return err;
}

async function nextControl(link: RelayLink, timeoutMs: number, what: string): Promise<RelayToAgent> {
  const frame = await link.receive(timeoutMs, what);
  if (frame.kind !== 'control') throw protocolError(link, `the relay sent a data frame before authentication finished`);
  return frame.message;
}

/** Runs the handshake on a fresh link; resolves with the verified welcome credential. */
export async function relayHandshake(link: RelayLink, mode: HandshakeMode, o: HandshakeOptions): Promise<Credential> {
  const hello = await nextControl(link, o.timeoutMs, 'hello');
  if (hello.t === 'error') {
    const err = relayError(hello.code, hello.message);
    link.fail(err);
    throw err;
  }
  if (hello.t !== 'hello') throw protocolError(link, `the relay sent '${hello.t}' where 'hello' was expected`);
  if (hello.version !== RELAY_PROTOCOL_VERSION) {
    const err = wicketError('WICKET_ERR_VERSION', `the relay speaks protocol version ${hello.version}, this agent ${RELAY_PROTOCOL_VERSION}; upgrade the older side`);
    link.fail(err);
    throw err;
  }
  let challenge: Buffer;
  try {
    challenge = fromBase64url(hello.challenge, 'hello.challenge', { exact: RELAY_CHALLENGE_LEN });
    parseIdentifier(hello.authority);
  } catch (err) {
    throw protocolError(link, `the relay's hello is malformed: ${(err as Error).message}`);
  }
  const pinned = identifierOf(o.authorityPublicKey);
  if (hello.authority !== pinned) {
    const err =
      mode.kind === 'enroll'
        ? wicketError('WICKET_ERR_TICKET_UNKNOWN', `the relay at ${link.where} serves authority ${hello.authority}, but the ticket is from ${pinned}; nothing of the ticket was sent`)
        : wicketError('WICKET_ERR_CREDENTIAL_ISSUER', `the relay at ${link.where} serves authority ${hello.authority}, but this agent is enrolled with ${pinned}; re-enroll with a ticket from this relay`);
    link.fail(err);
    throw err;
  }

  const identity = mode.identity;
  if (mode.kind === 'auth') {
    link.sendControl({
      t: 'auth',
      publicKey: base64url(identity.publicKey),
      signature: base64url(identity.sign(Buffer.concat([RELAY_AUTH_DOMAIN, challenge]))),
      credential: base64url(mode.credential),
      revocationsAfter: mode.revocationsAfter,
    });
  } else {
    const secret = mode.secret.reveal();
    if (mode.ticketId.length !== TICKET_ID_LEN || secret.length !== TICKET_SECRET_LEN) {
      const err = wicketError('WICKET_ERR_TICKET_MALFORMED', 'ticket id or secret has the wrong length');
      link.fail(err);
      throw err;
    }
    const ticketKey = ticketKeyFromSecret(mode.secret);
    link.sendControl({
      t: 'enroll',
      ticketId: base64url(mode.ticketId),
      ticketKey: base64url(ticketKey.publicKey),
      ticketProof: base64url(ticketKey.sign(ticketProofMessage(o.authorityPublicKey, mode.ticketId, identity.publicKey))),
      publicKey: base64url(identity.publicKey),
      signature: base64url(identity.sign(Buffer.concat([RELAY_ENROLL_DOMAIN, challenge, mode.ticketId]))),
    });
  }

  const answer = await nextControl(link, o.timeoutMs, 'welcome');
  if (answer.t === 'error') {
    if (o.progress !== undefined) o.progress.refused = true;
    const err = relayError(answer.code, answer.message);
    link.fail(err);
    throw err;
  }
  if (answer.t !== 'welcome') throw protocolError(link, `the relay sent '${answer.t}' where 'welcome' was expected`);
  if (answer.identifier !== identity.identifier) {
    throw protocolError(link, `the relay welcomed ${answer.identifier.slice(0, 70)}, not this agent (${identity.identifier})`);
  }
  let encoded: Buffer;
  try {
    encoded = fromBase64url(answer.credential, 'welcome.credential', { max: MAX_CREDENTIAL_LEN });
  } catch (err) {
    throw protocolError(link, (err as Error).message);
  }
  try {
    return verifyCredential(encoded, { authorityPublicKey: o.authorityPublicKey, subject: identity.identifier, now: o.now });
  } catch (err) {
    // A welcome that does not verify against the pinned authority: an impostor relay, or a
    // relay whose authority changed. Either way we do not store it.
    link.fail(err as WicketError);
    throw err;
  }
}
