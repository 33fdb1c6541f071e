import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { ErrorCode } from '../protocol/errors.js';
import { REFUSAL_LOG_LINES_PER_WINDOW, REFUSAL_LOG_WINDOW_MS } from '../protocol/limits.js';

// Refused logins (bad signature, unknown member, revoked, spent ticket, protocol garbage before
// auth) are what a scanner or a misconfigured fleet produces by the thousand. Each refusal is one
// log line, and at most REFUSAL_LOG_LINES_PER_WINDOW of them per REFUSAL_LOG_WINDOW_MS; past that
// they are counted, and one summary line per window says how many of each code were not shown.
// So the journal stays readable and bounded whatever arrives.

export interface Refusal {
  readonly code: ErrorCode;
  readonly reason: string;
  readonly remote: string;
  readonly conn: number;
  readonly identifier?: string;
}

export class RefusalLog {
  #windowStart = -Infinity;
  #shown = 0;
  readonly #suppressed = new Map<ErrorCode, number>();
  #summaryTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly logger: Logger,
    private readonly linesPerWindow = REFUSAL_LOG_LINES_PER_WINDOW,
    private readonly windowMs = REFUSAL_LOG_WINDOW_MS,
  ) {}

  refused(refusal: Refusal): void {
    const now = performance.now();
    if (now - this.#windowStart >= this.windowMs) {
      this.#windowStart = now;
      this.#shown = 0;
    }
    if (this.#shown < this.linesPerWindow) {
      this.#shown++;
      this.logger.info(refusal, 'login refused');
      return;
    }
    this.#suppressed.set(refusal.code, (this.#suppressed.get(refusal.code) ?? 0) + 1);
    if (this.#summaryTimer === undefined) {
      this.#summaryTimer = setTimeout(() => this.#summarize(), this.windowMs - (now - this.#windowStart));
      this.#summaryTimer.unref();
    }
  }

  /** Logs what was held back (also called at shutdown, so nothing counted is lost). */
  flush(): void {
    clearTimeout(this.#summaryTimer);
    this.#summarize();
  }

  #summarize(): void {
    this.#summaryTimer = undefined;
    if (this.#suppressed.size === 0) return;
    const byCode = Object.fromEntries(this.#suppressed);
    const total = [...this.#suppressed.values()].reduce((a, b) => a + b, 0);
    this.#suppressed.clear();
    this.logger.warn({ suppressed: total, byCode, windowMs: this.windowMs }, 'more login refusals than the log shows; counted here');
  }
}
