import type { Logger } from 'pino';
import type { WicketError } from '../protocol/errors.js';
import { RELAY_OUTAGE_WARN_INTERVAL_MS } from '../protocol/limits.js';

// What the agent says while the relay is away. It retries every second or two for as long as the
// outage lasts (backoff.ts); one warning per attempt would bury the journal (an hour's outage was
// ~3,000 lines). So: a warning at the first failure (or the drop), then at most one per
// RELAY_OUTAGE_WARN_INTERVAL_MS carrying how many attempts failed since the last one, and an info
// line once connected again saying how long the relay was gone. Every failed attempt is still
// logged at debug. The clock is injected so a test can cover an hour in a moment.

export interface RelayOutageOptions {
  logger: Logger;
  /** The relay being dialled (it changes when the agent moves to another relay of its list). */
  relayUrl: () => string;
  now: () => number;
  warnIntervalMs?: number;
}

export class RelayOutage {
  readonly #log: Logger;
  readonly #relayUrl: () => string;
  readonly #now: () => number;
  readonly #warnIntervalMs: number;
  /** When the current outage began (undefined while connected, or before the first attempt). */
  #since: number | undefined;
  #lastWarningAt = 0;
  /** Failed attempts since the last warning, and in the whole outage. */
  #failedSinceWarning = 0;
  #failedInOutage = 0;

  constructor(o: RelayOutageOptions) {
    this.#log = o.logger;
    this.#relayUrl = o.relayUrl;
    this.#now = o.now;
    this.#warnIntervalMs = o.warnIntervalMs ?? RELAY_OUTAGE_WARN_INTERVAL_MS;
  }

  /** True between the first failure (or drop) and the next successful connection. */
  get ongoing(): boolean {
    return this.#since !== undefined;
  }

  /** An authenticated connection dropped: the outage starts with this warning. */
  dropped(reason: WicketError): void {
    this.#begin();
    this.#log.warn({ code: reason.code, relay: this.#relayUrl() }, `disconnected from the relay: ${reason.message}`);
  }

  /** A dial or authentication failed. */
  attemptFailed(err: WicketError, attempt: number): void {
    const fields = { code: err.code, relay: this.#relayUrl(), attempt };
    if (this.#since === undefined) {
      this.#begin();
      this.#failedInOutage = 1;
      this.#log.warn(fields, `relay connection failed: ${err.message}; retrying (warning again at most every ${Math.round(this.#warnIntervalMs / 1000)} s)`);
      return;
    }
    this.#failedSinceWarning++;
    this.#failedInOutage++;
    const now = this.#now();
    if (now - this.#lastWarningAt < this.#warnIntervalMs) {
      this.#log.debug(fields, `relay connection failed: ${err.message}`);
      return;
    }
    const failedAttempts = this.#failedSinceWarning;
    this.#lastWarningAt = now;
    this.#failedSinceWarning = 0;
    this.#log.warn(
      { ...fields, failedAttempts, downForMs: now - this.#since },
      `relay still unreachable after ${seconds(now - this.#since)} (${failedAttempts} failed attempts since the last warning): ${err.message}`,
    );
  }

  /** Connected (again): closes the outage with one info line. */
  connected(): void {
    if (this.#since === undefined) return;
    const downForMs = this.#now() - this.#since;
    this.#log.info({ relay: this.#relayUrl(), downForMs, failedAttempts: this.#failedInOutage }, `reconnected to the relay after ${seconds(downForMs)} away`);
    this.#since = undefined;
    this.#failedSinceWarning = 0;
    this.#failedInOutage = 0;
  }

  #begin(): void {
    this.#since = this.#now();
    this.#lastWarningAt = this.#since;
    this.#failedSinceWarning = 0;
  }
}

function seconds(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`;
}
