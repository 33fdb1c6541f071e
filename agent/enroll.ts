import type { Logger } from 'pino';
import type { Attributes } from '../protocol/credential.js';
import { wicketError } from '../protocol/errors.js';
import { identifierOf, type Identifier } from '../protocol/identity.js';
import { RELAY_AUTH_TIMEOUT_MS } from '../protocol/limits.js';
import { isTicketExpired, type Ticket } from '../protocol/ticket.js';
import { dialRelay } from './relay-dial.js';
import { relayHandshake } from './relay-handshake.js';
import type { Vault } from './vault.js';

// `agent enroll`: redeem a ticket at the relay named in it and keep what the ticket pins.
//
//   1. refuse an expired ticket locally (a friendlier message, and the secret never travels)
//   2. refuse a ticket from another authority than the one this home is already enrolled with
//   3. create the identity if there is none (vault, mode 0600)
//   4. dial the relay (TLS pinned to the ticket's fingerprint), check the hello's authority
//      against the ticket's key, send `enroll`, verify the welcome credential against that key
//   5. save the enrollment: relay URL, pinned certificate, pinned authority, credential
//
// Enrolling again with a ticket of the same authority is allowed: the relay merges the new
// ticket's attributes into the member (protocol/README.md, "Relay behaviour"), and the new relay
// URL/pin are kept. Running it again with the same ticket after a failure (the relay died before
// its welcome arrived) is answered as the first redemption was, without spending another use.

export interface EnrollOptions {
  ticket: Ticket;
  vault: Vault;
  logger: Logger;
  insecure?: boolean;
  now?: () => number;
}

export interface EnrollResult {
  identifier: Identifier;
  attributes: Attributes;
}

export async function enroll(o: EnrollOptions): Promise<EnrollResult> {
  const now = o.now ?? Date.now;
  const { ticket, vault } = o;
  if (isTicketExpired(ticket, now())) {
    throw wicketError('WICKET_ERR_TICKET_EXPIRED', `the ticket expired at ${new Date(ticket.expiresAt).toISOString()}; ask an admin for a new one`);
  }
  const existing = vault.enrollment();
  if (existing !== undefined && !existing.authorityPublicKey.equals(ticket.authorityPublicKey)) {
    throw wicketError(
      'WICKET_ERR_ALREADY_ENROLLED',
      `${vault.home} is enrolled with authority ${identifierOf(existing.authorityPublicKey)}, the ticket is for ${identifierOf(ticket.authorityPublicKey)}`,
    );
  }
  const identity = vault.identity();
  const log = o.logger.child({ identifier: identity.identifier });
  log.info({ relay: ticket.relayUrl }, 'enrolling');

  const link = await dialRelay({
    url: ticket.relayUrl,
    fingerprint: ticket.relayCertFingerprint,
    insecure: o.insecure,
    timeoutMs: RELAY_AUTH_TIMEOUT_MS,
  });
  try {
    const credential = await relayHandshake(
      link,
      { kind: 'enroll', identity, ticketId: ticket.ticketId, secret: ticket.secret },
      { authorityPublicKey: ticket.authorityPublicKey, now: now(), timeoutMs: RELAY_AUTH_TIMEOUT_MS },
    );
    vault.saveEnrollment({
      relayUrl: ticket.relayUrl,
      ...(ticket.relayCertFingerprint !== undefined ? { relayCertFingerprint: ticket.relayCertFingerprint } : {}),
      authorityPublicKey: ticket.authorityPublicKey,
      identifier: identity.identifier,
      credential: credential.encoded,
      enrolledAt: now(),
      ...(ticket.otherRelays !== undefined ? { otherRelays: ticket.otherRelays } : {}),
    });
    log.info({ attributes: Object.keys(credential.attributes) }, 'enrolled');
    return { identifier: identity.identifier, attributes: { ...credential.attributes } };
  } finally {
    await link.close();
  }
}
