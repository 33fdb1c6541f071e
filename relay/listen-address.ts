import { isIP } from 'node:net';
import { wicketError } from '../protocol/errors.js';

// Listen addresses (HOST:PORT, [IPv6]:PORT) and the rules that depend on them: plain ws:// is
// allowed only on loopback (or with --insecure), and the URL printed / put in tickets must be
// dialable, so a wildcard listen host becomes a concrete one.

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

export const DEFAULT_LISTEN: ListenAddress = { host: '127.0.0.1', port: 7400 };

export function parseListenAddress(text: string): ListenAddress {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text.trim());
  const host = match?.[1] ?? match?.[2];
  const port = Number(match?.[3]);
  if (host === undefined || !Number.isInteger(port) || port > 65_535) {
    throw wicketError('WICKET_ERR_ARGUMENT', `listen address ${JSON.stringify(text.slice(0, 80))} must be HOST:PORT, e.g. 127.0.0.1:7400 or [::1]:7400`);
  }
  if (match?.[1] !== undefined && isIP(host) !== 6) {
    throw wicketError('WICKET_ERR_ARGUMENT', `${JSON.stringify(host)} in brackets is not an IPv6 address`);
  }
  return { host, port };
}

export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (bare === 'localhost' || bare === '::1') return true;
  if (isIP(bare) === 4) return bare.startsWith('127.');
  return bare.startsWith('::ffff:127.');
}

export function isWildcardHost(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '[::]';
}

/** host:port as it appears in a URL (IPv6 in brackets). */
export function urlHostPort(host: string, port: number): string {
  return `${isIP(host) === 6 ? `[${host}]` : host}:${port}`;
}

/** The hostname of a ws:// or wss:// URL (IPv6 without brackets), for the certificate's SAN. */
export function hostOfUrl(url: string): string {
  return new URL(url).hostname.replace(/^\[|\]$/g, '');
}
