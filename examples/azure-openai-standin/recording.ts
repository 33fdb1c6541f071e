// What the stand-in saw and what it answered, for tests that look at a gateway from behind:
// the last requests exactly as they arrived (a test asserts a caller's `api-key` never reached
// the backend, or that the gateway asked for `stream_options.include_usage`), and how many
// answers of each status went out (which backend of a pool took the traffic, how many 429s it
// gave before the breaker opened).

import type { IncomingMessage } from 'node:http';

/** How many requests `RunningStandin.requests` keeps; older ones are dropped first. */
export const MAX_RECORDED_REQUESTS = 1_000;

export interface RecordedRequest {
  readonly method: string;
  /** The request target as sent: path and query. */
  readonly path: string;
  /** Lowercased names; a header sent more than once keeps every value, in order. */
  readonly headers: Readonly<Record<string, string | string[]>>;
  /** The body as received (empty until it has been read, or when it was refused unread). */
  readonly bodyBytes: Buffer;
  /** Arrival time, from the stand-in's clock (ms since the epoch by default). */
  readonly at: number;
}

interface MutableRecord {
  method: string;
  path: string;
  headers: Record<string, string | string[]>;
  bodyBytes: Buffer;
  at: number;
}

export class RequestLog {
  readonly #entries: MutableRecord[] = [];

  /** Records a request on arrival; call `setBody` on the returned handle once it was read. */
  record(req: IncomingMessage, at: number): { setBody(body: Buffer): void } {
    const entry: MutableRecord = {
      method: req.method ?? '',
      path: req.url ?? '',
      headers: headersAsReceived(req.rawHeaders),
      bodyBytes: Buffer.alloc(0),
      at,
    };
    this.#entries.push(entry);
    if (this.#entries.length > MAX_RECORDED_REQUESTS) this.#entries.shift();
    return {
      setBody: (body: Buffer) => {
        entry.bodyBytes = body;
      },
    };
  }

  /** A copy, oldest first, so a test can hold it while more requests arrive. */
  snapshot(): readonly RecordedRequest[] {
    return this.#entries.map((entry) => ({ ...entry, headers: { ...entry.headers } }));
  }
}

export class StatusCounter {
  readonly #counts = new Map<number, number>();

  count(status: number): void {
    this.#counts.set(status, (this.#counts.get(status) ?? 0) + 1);
  }

  snapshot(): Readonly<Record<number, number>> {
    return Object.fromEntries([...this.#counts].sort(([a], [b]) => a - b));
  }
}

/**
 * Node folds repeated headers into one string (or drops duplicates of some); rawHeaders keeps
 * them as sent, which is what a test about forwarding wants to see.
 */
function headersAsReceived(rawHeaders: readonly string[]): Record<string, string | string[]> {
  const headers: Record<string, string | string[]> = Object.create(null) as Record<string, string | string[]>;
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = (rawHeaders[i] ?? '').toLowerCase();
    const value = rawHeaders[i + 1] ?? '';
    const previous = headers[name];
    if (previous === undefined) headers[name] = value;
    else headers[name] = Array.isArray(previous) ? [...previous, value] : [previous, value];
  }
  return headers;
}
