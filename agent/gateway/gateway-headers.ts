import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

// Which headers cross the gateway. Towards the backend: never the caller's credentials (`api-key`,
// `Authorization`: the caller is its Wicket identity, and the backend credential is the outlet's),
// never hop-by-hop headers (RFC 9110 §7.6.1, plus those the request's own Connection names), and
// a length the gateway sets itself (it may have rewritten the body). Towards the app: the backend's
// headers less hop-by-hop ones, and less Content-Length when the body was rewritten.

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'proxy-authenticate', 'proxy-authorization']);
const NEVER_FORWARDED = new Set([...HOP_BY_HOP, 'host', 'api-key', 'authorization', 'content-length', 'expect']);

function connectionTokens(headers: IncomingHttpHeaders): Set<string> {
  const value = headers.connection;
  const text = Array.isArray(value) ? value.join(',') : (value ?? '');
  return new Set(text.split(',').map((t) => t.trim().toLowerCase()).filter((t) => t !== ''));
}

/** The app's headers as the backend may see them (the credential and Content-Length are added by the caller). */
export function backendRequestHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const named = connectionTokens(headers);
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || NEVER_FORWARDED.has(name) || named.has(name)) continue;
    out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  // The gateway reads every answer for its usage: it must come uncompressed. The app's
  // `Accept-Encoding: gzip` (the OpenAI SDKs send it) let a compressing backend hide the usage
  // (unknown usage: only the estimate charged) and the streamed usage chunk the app did not ask for.
  out['accept-encoding'] = 'identity';
  return out;
}

/** The backend's headers as the app may see them. */
export function appResponseHeaders(headers: IncomingHttpHeaders, bodyRewritten: boolean): OutgoingHttpHeaders {
  const named = connectionTokens(headers);
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || named.has(name)) continue;
    if (bodyRewritten && name === 'content-length') continue;
    out[name] = value;
  }
  return out;
}
