import type { Logger } from 'pino';
import { performance } from 'node:perf_hooks';
import type { Attributes, Credential } from '../protocol/credential.js';
import { asWicketError, wicketError, type ErrorCode } from '../protocol/errors.js';
import { identifierOf, type Identifier, type Identity } from '../protocol/identity.js';
import { ENROLL_DEADLINE_MS, RELAY_AUTH_TIMEOUT_MS } from '../protocol/limits.js';
import { isTicketExpired, type Ticket, type TicketRelay } from '../protocol/ticket.js';
import { dialRelay } from './relay-dial.js';
import { relayHandshake, type HandshakeProgress } from './relay-handshake.js';
import type { Vault } from './vault.js';

// `agent enroll`: redeem a ticket at the relay named in it and keep what the ticket pins.
//
//   1. refuse an expired ticket locally (a friendlier message, and no proof travels for nothing)
//   2. refuse a ticket from another authority than the one this home is already enrolled with
//   3. create the identity if there is none (vault, mode 0600)
//   4. dial the relay (TLS pinned to the ticket's fingerprint), check the hello's authority
//      against the ticket's key, send `enroll` (the ticket's public key and a proof derived from
//      the secret, never the secret), verify the welcome credential against that key
//   5. save the enrollment: relay URLs, pinned certificates, pinned authority, credential
//
// A ticket listing several relays (issue 14) is tried in order, all within ENROLL_DEADLINE_MS:
// a relay that cannot be reached, times out, fails its pin, serves another authority or goes away
// without answering hands over to the next one (a ticket proof only ever goes to a relay that passed
// the pin and the authority check, and a redemption whose answer was lost is answered again
// without spending a use), and so does one that answers with a refusal about its own state
// (RELAY_STATE_REFUSALS). A relay that refuses the ticket or the key has decided for the whole
// project (they share one store): that error is final. When no relay could enroll the agent, the error
// (WICKET_ERR_RELAYS_UNREACHABLE) names each relay and why.
//
// Enrolling again with a ticket of the same authority is allowed: the relay merges the new
// ticket's attributes into the member (protocol/README.md, "Relay behaviour"), and the new relay
// URL/pin are kept. Running it again with the same ticket after a failure (the relay died before
// its welcome arrived) is answered as the first redemption was, without spending another use.

/** Refusals about the answering relay's own state, not the ticket: the next relay is tried. */
const RELAY_STATE_REFUSALS: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'WICKET_ERR_STORE_UNAVAILABLE',
  'WICKET_ERR_AUTHORITY_UNAVAILABLE',
  'WICKET_ERR_RELAY_OVERLOADED',
  'WICKET_ERR_INTERNAL',
]);

export interface EnrollOptions {
  ticket: Ticket;
  vault: Vault;
  logger: Logger;
  insecure?: boolean;
  now?: () => number;
  /** All relays of the ticket are tried within this (default ENROLL_DEADLINE_MS; tests shorten it). */
  deadlineMs?: number;
}

export interface EnrollResult {
  identifier: Identifier;
  attributes: Attributes;
  /** The relay that enrolled this agent: the first of the ticket's relays that answered. */
  relayUrl: string;
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
  const first: TicketRelay = ticket.relayCertFingerprint === undefined ? { url: ticket.relayUrl } : { url: ticket.relayUrl, fingerprint: ticket.relayCertFingerprint };
  const relays = [first, ...(ticket.otherRelays ?? [])];
  const deadlineMs = o.deadlineMs ?? ENROLL_DEADLINE_MS;
  const deadline = performance.now() + deadlineMs;
  const failures: string[] = [];
  for (const relay of relays) {
    const left = Math.floor(deadline - performance.now());
    if (left <= 0) {
      failures.push(`${relay.url}: not tried, the ${deadlineMs} ms enrollment deadline had passed`);
      continue;
    }
    log.info({ relay: relay.url }, 'enrolling');
    const progress: HandshakeProgress = { refused: false };
    let credential: Credential;
    try {
      credential = await enrollAt(relay, o, identity, { endsAt: deadline, deadlineMs, progress, now });
    } catch (err) {
      const e = asWicketError(err);
      // A decision about the ticket or the key (spent, expired, unknown, revoked) is the project's:
      // another relay of the same store would only repeat it. A refusal about this relay's own
      // state (its store connection down, no signer answering it, overloaded) is not: the next
      // relay may get through, and a redemption whose answer was lost is answered again without
      // spending a use. A one-relay ticket fails as it always did.
      if ((progress.refused && !RELAY_STATE_REFUSALS.has(e.code)) || relays.length === 1) throw e;
      log.warn({ relay: relay.url, code: e.code }, 'could not enroll through this relay; trying the next relay of the ticket');
      failures.push(`${relay.url}: ${e.message}`);
      continue;
    }
    // The relay that answered is dialled first from now on; the others follow in ticket order.
    const others = relays.filter((r) => r !== relay);
    vault.saveEnrollment({
      relayUrl: relay.url,
      ...(relay.fingerprint !== undefined ? { relayCertFingerprint: relay.fingerprint } : {}),
      authorityPublicKey: ticket.authorityPublicKey,
      identifier: identity.identifier,
      credential: credential.encoded,
      enrolledAt: now(),
      ...(others.length > 0 ? { otherRelays: others } : {}),
    });
    log.info({ relay: relay.url, attributes: Object.keys(credential.attributes) }, 'enrolled');
    return { identifier: identity.identifier, attributes: { ...credential.attributes }, relayUrl: relay.url };
  }
  throw wicketError(
    'WICKET_ERR_RELAYS_UNREACHABLE',
    `none of the ticket's ${relays.length} relays could enroll this agent: ${failures.map((f, i) => `(${i + 1}) ${f}`).join('; ')}`,
  );
}

/**
 * One relay: dial (TLS pinned to its fingerprint), check the hello's authority against the
 * ticket's key, send `enroll`, verify the welcome credential against that key. The whole attempt
 * ends at the enrollment deadline; each step keeps its own RELAY_AUTH_TIMEOUT_MS within it.
 */
async function enrollAt(relay: TicketRelay, o: EnrollOptions, identity: Identity, a: { endsAt: number; deadlineMs: number; progress: HandshakeProgress; now: () => number }): Promise<Credential> {
  const left = (): number => Math.max(1, Math.floor(a.endsAt - performance.now()));
  const link = await dialRelay({ url: relay.url, fingerprint: relay.fingerprint, insecure: o.insecure, timeoutMs: Math.min(RELAY_AUTH_TIMEOUT_MS, left()) });
  const cut = setTimeout(() => link.fail(wicketError('WICKET_ERR_RELAY_TIMEOUT', `the ${a.deadlineMs} ms enrollment deadline passed while ${link.where} was answering`)), left());
  try {
    return await relayHandshake(
      link,
      { kind: 'enroll', identity, ticketId: o.ticket.ticketId, secret: o.ticket.secret },
      { authorityPublicKey: o.ticket.authorityPublicKey, now: a.now(), timeoutMs: RELAY_AUTH_TIMEOUT_MS, progress: a.progress },
    );
  } finally {
    clearTimeout(cut);
    await link.close();
  }
}
