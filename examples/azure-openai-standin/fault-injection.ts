// Deliberate failures, for tests of what happens when the private service misbehaves behind a
// portal. Each one can be set for every request (a stand-in option) or for one request (a header):
//
//   x-standin-abort-after-bytes: N   send only the first N bytes of the response body, then kill
//                                    the connection (TCP RST where the socket allows it). The
//                                    client sees a truncated response, never a clean end.
//   x-standin-chunk-delay-ms: N      wait N ms between streamed events (a slow model).
//   x-standin-first-token-delay-ms: N
//                                    wait N ms before the response head and first byte (a model
//                                    slow to start), for time-to-first-token and timeout tests.
//
// The header wins over the option. The stand-in never honours these headers on its own unless a
// client sends them, so a normal client is unaffected.

import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export const ABORT_AFTER_BYTES_HEADER = 'x-standin-abort-after-bytes';
export const CHUNK_DELAY_HEADER = 'x-standin-chunk-delay-ms';
export const FIRST_TOKEN_DELAY_HEADER = 'x-standin-first-token-delay-ms';
/** Longest pause between events we accept: long enough for any slow-reader test, never a hang. */
export const MAX_CHUNK_DELAY_MS = 10_000;
/** Longer than the pause between events: upstream-timeout tests need a start slower than their limit. */
export const MAX_FIRST_TOKEN_DELAY_MS = 60_000;

export interface Faults {
  readonly abortAfterBytes: number | undefined;
  readonly chunkDelayMs: number;
  readonly firstTokenDelayMs: number;
}

/** Reads the fault headers; returns an error text for a malformed one. */
export function faultsFor(
  headers: Readonly<Record<string, string | string[] | undefined>>,
  defaults: { abortAfterBytes?: number | undefined; chunkDelayMs?: number | undefined; firstTokenDelayMs?: number | undefined },
): Faults | { error: string } {
  const abort = parseCount(headers[ABORT_AFTER_BYTES_HEADER], Number.MAX_SAFE_INTEGER);
  if (abort === 'invalid') return { error: `${ABORT_AFTER_BYTES_HEADER} must be a non-negative integer` };
  const delay = parseCount(headers[CHUNK_DELAY_HEADER], MAX_CHUNK_DELAY_MS);
  if (delay === 'invalid') return { error: `${CHUNK_DELAY_HEADER} must be an integer from 0 to ${MAX_CHUNK_DELAY_MS}` };
  const first = parseCount(headers[FIRST_TOKEN_DELAY_HEADER], MAX_FIRST_TOKEN_DELAY_MS);
  if (first === 'invalid') return { error: `${FIRST_TOKEN_DELAY_HEADER} must be an integer from 0 to ${MAX_FIRST_TOKEN_DELAY_MS}` };
  return {
    abortAfterBytes: abort ?? defaults.abortAfterBytes,
    chunkDelayMs: delay ?? defaults.chunkDelayMs ?? 0,
    firstTokenDelayMs: first ?? defaults.firstTokenDelayMs ?? 0,
  };
}

function parseCount(raw: string | string[] | undefined, max: number): number | undefined | 'invalid' {
  if (raw === undefined) return undefined;
  if (Array.isArray(raw) || !/^\d{1,16}$/.test(raw.trim())) return 'invalid';
  const value = Number(raw.trim());
  return value <= max ? value : 'invalid';
}

/**
 * Writes a response body while counting bytes against the abort budget. Once the budget is
 * spent it writes the allowed prefix and kills the connection, and every later write is a no-op.
 */
export class FaultyBodyWriter {
  readonly #res: ServerResponse;
  readonly #rawSocket: Socket | undefined;
  #budget: number;
  #aborted = false;

  /** `rawSocket` is the TCP socket under TLS (under plain HTTP, the request's own socket). */
  constructor(res: ServerResponse, rawSocket: Socket | undefined, abortAfterBytes: number | undefined) {
    this.#res = res;
    this.#rawSocket = rawSocket;
    this.#budget = abortAfterBytes ?? Number.POSITIVE_INFINITY;
  }

  get aborted(): boolean {
    return this.#aborted;
  }

  /** Writes `text`; resolves false once the connection was (or is being) killed. */
  write(text: string): Promise<boolean> {
    if (this.#aborted || this.#res.destroyed) return Promise.resolve(false);
    const bytes = Buffer.from(text, 'utf8');
    if (bytes.length <= this.#budget) {
      this.#budget -= bytes.length;
      return new Promise((resolve) => {
        if (this.#res.write(bytes)) resolve(!this.#res.destroyed);
        else this.#res.once('drain', () => resolve(!this.#res.destroyed)).once('close', () => resolve(false));
      });
    }
    const prefix = bytes.subarray(0, this.#budget);
    this.#budget = 0;
    this.#aborted = true;
    // Flush the headers and the allowed prefix, then kill the connection once they are out.
    this.#res.write(prefix, () => this.#kill());
    return Promise.resolve(false);
  }

  end(): void {
    if (!this.#aborted && !this.#res.destroyed) this.#res.end();
  }

  /** A pause between events that ends early when the client goes away. */
  async pause(ms: number): Promise<void> {
    if (ms <= 0 || this.#res.destroyed) return;
    const stop = new AbortController();
    const onClose = (): void => stop.abort();
    this.#res.once('close', onClose);
    try {
      await sleep(ms, undefined, { signal: stop.signal });
    } catch {
      // The client went away; the caller sees res.destroyed and stops.
    } finally {
      this.#res.off('close', onClose);
    }
  }

  #kill(): void {
    const raw = this.#rawSocket;
    if (raw && !raw.destroyed && typeof raw.resetAndDestroy === 'function') {
      try {
        raw.resetAndDestroy(); // RST: the peer cannot mistake this for a clean end
        return;
      } catch {
        // Not a TCP handle (e.g. a pipe): fall back to a plain destroy below.
      }
    }
    this.#res.socket?.destroy();
  }
}
