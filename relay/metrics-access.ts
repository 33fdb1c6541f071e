import { BlockList, isIP } from 'node:net';
import { wicketError } from '../protocol/errors.js';

// Who may read GET /metrics on the relay's port. The port is public (agents dial it from
// anywhere), and the metrics tell a stranger how busy the relay is and how its members fail, so
// by default only loopback is answered; `relay start --metrics-from 10.0.0.0/8,fd00::/8` or
// `--metrics-from any` widens it for a scraper elsewhere. /healthz and /readyz say nothing of
// the kind and are answered to everyone.

export const METRICS_FROM_OPTION = '--metrics-from';

export interface MetricsAccess {
  /** What was allowed, as given (for the 403's message). */
  readonly description: string;
  allows(remoteAddress: string | undefined): boolean;
}

const LOOPBACK_RANGES = ['127.0.0.0/8', '::1/128'];

/** Loopback only: the default. */
export const LOOPBACK_METRICS_ACCESS: MetricsAccess = rangesAccess(LOOPBACK_RANGES, 'loopback');

/** `::ffff:10.1.2.3` (an IPv4 client of a dual-stack listener) is checked as 10.1.2.3. */
function plainAddress(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return mapped === null ? address : mapped[1]!;
}

function rangesAccess(ranges: readonly string[], description: string): MetricsAccess {
  const list = new BlockList();
  for (const range of ranges) {
    const [address, prefix] = range.split('/') as [string, string];
    list.addSubnet(address, Number(prefix), isIP(address) === 6 ? 'ipv6' : 'ipv4');
  }
  return {
    description,
    allows(remoteAddress) {
      if (remoteAddress === undefined) return false;
      const address = plainAddress(remoteAddress);
      const family = isIP(address);
      return family !== 0 && list.check(address, family === 6 ? 'ipv6' : 'ipv4');
    },
  };
}

/** One entry: an address (one host) or ADDRESS/PREFIX with a prefix the family allows; else undefined. */
function parseRange(entry: string): string | undefined {
  const match = /^([0-9A-Fa-f:.]+)(?:\/(\d{1,3}))?$/.exec(entry);
  if (match === null) return undefined;
  const address = match[1]!;
  const family = isIP(address);
  if (family === 0) return undefined;
  const max = family === 6 ? 128 : 32;
  // No leading zeros ("/08"): one spelling per prefix.
  if (match[2] !== undefined && !/^(0|[1-9]\d*)$/.test(match[2])) return undefined;
  const prefix = match[2] === undefined ? max : Number(match[2]);
  return prefix <= max ? `${address}/${prefix}` : undefined;
}

/**
 * `--metrics-from`: `any`, or a comma-separated list of addresses and CIDR ranges (IPv4 or IPv6).
 * The list replaces the loopback default (add 127.0.0.1 to keep it). Anything else is
 * WICKET_ERR_ARGUMENT naming the option and the entry.
 */
export function parseMetricsFrom(text: string): MetricsAccess {
  const trimmed = text.trim();
  if (trimmed.toLowerCase() === 'any') return { description: 'any', allows: () => true };
  const entries = trimmed.split(',').map((entry) => entry.trim());
  const ranges: string[] = [];
  for (const entry of entries) {
    const range = parseRange(entry);
    if (range === undefined) {
      const shown = JSON.stringify(entry.slice(0, 60));
      throw wicketError('WICKET_ERR_ARGUMENT', `${METRICS_FROM_OPTION}: ${shown} is not an address or CIDR range; give e.g. 10.0.0.0/8,fd00::/8,127.0.0.1 or any`);
    }
    ranges.push(range);
  }
  return rangesAccess(ranges, ranges.join(','));
}
