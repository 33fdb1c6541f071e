import { wicketError } from './errors.js';
import { AGENT_FEATURES_HEADER_MAX_LEN, MAX_RELAY_URL_LEN, MAX_TICKET_RELAYS, RELAY_CERT_FINGERPRINT_LEN } from './limits.js';
import { base64url, fromBase64url } from './relay-frames.js';
import type { WireRelay } from './relay-messages.js';
import { relayUrlProblem, type TicketRelay } from './ticket.js';

// The project's relays as a relay tells its agents (protocol/README.md, "The relays message"):
//
//   relay -> agent   relays {relays: [{url, fingerprint?}, …]}   the sender first, 1..MAX_TICKET_RELAYS
//
// An agent enrolled when the project had one relay would otherwise never learn of the relays
// added later, and could not move to them when its relay dies (issue 14). Each entry follows the
// ticket's rules for a relay (ticket.ts: printable ASCII ws:// or wss:// URL with a host, no
// user:password, no #fragment, ≤ MAX_RELAY_URL_LEN; a fingerprint is the 32-byte SHA-256 of the
// relay's certificate, base64url as every binary field of a control message); no URL twice.
//
// Who gets it: an older agent closes the connection on a message type it does not know, so the
// relay sends `relays` only to an agent that said it understands it, in its WebSocket upgrade
// request: `wicket-agent-features: relays`. A relay that predates the message ignores the header,
// so neither side needs to know the other's version first, and the protocol version stays 2.

/** The upgrade request's header naming the optional relay messages an agent understands. */
export const AGENT_FEATURES_HEADER = 'wicket-agent-features';
/** The agent understands `relays`. */
export const FEATURE_RELAYS = 'relays';

/** Whether an upgrade's features header (comma-separated tokens) names `feature`; anything odd reads as no features. */
export function acceptsFeature(header: string | string[] | undefined, feature: string): boolean {
  if (typeof header !== 'string' || header.length > AGENT_FEATURES_HEADER_MAX_LEN) return false;
  return header.split(',').some((token) => token.trim() === feature);
}

/** Why one relay is unfit for a list (the ticket's rules), or undefined when it is fit. */
export function relayProblem(relay: TicketRelay): string | undefined {
  if (relay.url.length > MAX_RELAY_URL_LEN) return `relay URL is ${relay.url.length} characters, cap ${MAX_RELAY_URL_LEN}`;
  const urlProblem = relayUrlProblem(relay.url);
  if (urlProblem !== undefined) return urlProblem;
  if (relay.fingerprint !== undefined && relay.fingerprint.length !== RELAY_CERT_FINGERPRINT_LEN) return `a certificate fingerprint is ${RELAY_CERT_FINGERPRINT_LEN} bytes`;
  return undefined;
}

export function relaysToWire(relays: readonly TicketRelay[]): WireRelay[] {
  return relays.map((r) => (r.fingerprint === undefined ? { url: r.url } : { url: r.url, fingerprint: base64url(r.fingerprint) }));
}

/** Same URLs with the same pins, in the same order. */
export function sameRelays(a: readonly TicketRelay[], b: readonly TicketRelay[]): boolean {
  return a.length === b.length && a.every((r, i) => r.url === b[i]!.url && (r.fingerprint === undefined ? b[i]!.fingerprint === undefined : b[i]!.fingerprint?.equals(r.fingerprint) === true));
}

function refused(detail: string): never {
  throw wicketError('WICKET_ERR_RELAY_PROTOCOL', `control 'relays': ${detail}`);
}

/**
 * A `relays` message's list as relays. Hostile input: the count is checked before any entry is
 * read, every entry is checked whole, and an error names the entry and its problem, never more
 * than a short prefix of what was sent. Throws WICKET_ERR_RELAY_PROTOCOL.
 */
export function parseRelaysMessage(list: unknown): TicketRelay[] {
  if (!Array.isArray(list)) refused("field 'relays' is not a list");
  if (list.length === 0 || list.length > MAX_TICKET_RELAYS) refused(`lists ${list.length} relays, expected 1 to ${MAX_TICKET_RELAYS}`);
  const relays: TicketRelay[] = [];
  const urls = new Set<string>();
  list.forEach((entry: unknown, i) => {
    const at = `relay ${i + 1}`;
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) refused(`${at} is not an object`);
    const record = entry as Record<string, unknown>;
    for (const key of Object.keys(record)) {
      if (key !== 'url' && key !== 'fingerprint') refused(`${at} has an unexpected field '${key.slice(0, 40)}'`);
    }
    if (typeof record.url !== 'string') refused(`${at} has no URL string`);
    if (record.fingerprint !== undefined && typeof record.fingerprint !== 'string') refused(`${at}: the fingerprint is not a string`);
    const url = record.url;
    let relay: TicketRelay = { url };
    if (record.fingerprint !== undefined) {
      try {
        relay = { url, fingerprint: fromBase64url(record.fingerprint, 'fingerprint', { exact: RELAY_CERT_FINGERPRINT_LEN }) };
      } catch (err) {
        refused(`${at}: ${(err as Error).message.replace(/^WICKET_ERR_[A-Z_]+: /, '')}`);
      }
    }
    const problem = relayProblem(relay);
    if (problem !== undefined) refused(`${at}: ${problem}`);
    if (urls.has(url)) refused(`${at} repeats a URL already listed`);
    urls.add(url);
    relays.push(relay);
  });
  return relays;
}
