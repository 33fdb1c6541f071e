// A runtime switch that makes the whole stand-in misbehave the way a backend of a pool does when
// it is throttled or down, for failover and circuit-breaker tests: flip it with
// `RunningStandin.setOutage()` while traffic flows, flip it back with `{ kind: 'none' }`.
//
// The outage answers every authenticated request to a known route (a caller with a bad key still
// gets its 401 and an unknown path its 404, as a throttled resource still checks those first).

import * as azure from './azure-errors.js';

export type Outage =
  | { readonly kind: 'none' }
  | { readonly kind: 'rate-limited'; readonly retryAfterMs: number }
  | { readonly kind: 'failing'; readonly status: 500 | 502 | 503 };

/** Throws on a malformed outage so a test's typo fails loudly instead of serving normally. */
export function checkOutage(outage: Outage): Outage {
  switch (outage.kind) {
    case 'none':
      return outage;
    case 'rate-limited':
      if (!Number.isFinite(outage.retryAfterMs) || outage.retryAfterMs < 0) {
        throw new RangeError('outage retryAfterMs must be a finite, non-negative number of milliseconds');
      }
      return outage;
    case 'failing':
      if (![500, 502, 503].includes(outage.status)) throw new RangeError('outage status must be 500, 502 or 503');
      return outage;
    default:
      throw new RangeError(`unknown outage kind ${String((outage as { kind?: unknown }).kind)}`);
  }
}

/** The answer under `outage`, or undefined when the stand-in should serve normally. */
export function outageAnswer(
  outage: Outage,
  context: { readonly rateLimitOperation: string | undefined; readonly apiVersion: string; readonly requestId: string },
): azure.AzureErrorAnswer | undefined {
  switch (outage.kind) {
    case 'none':
      return undefined;
    case 'rate-limited':
      return azure.rateLimited(context.rateLimitOperation, context.apiVersion, outage.retryAfterMs);
    case 'failing':
      return azure.serverFailure(outage.status, context.requestId);
  }
}
