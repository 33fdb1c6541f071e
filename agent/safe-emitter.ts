import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { asWicketError } from '../protocol/errors.js';

/**
 * An EventEmitter whose listeners cannot break the emitter: a throwing listener is a bug in the
 * listener, logged, and the connection or lifecycle that emitted goes on.
 */
export class SafeEmitter extends EventEmitter {
  readonly #emitLog: Logger;
  readonly #what: string;

  constructor(logger: Logger, what: string) {
    super();
    this.#emitLog = logger;
    this.#what = what;
  }

  protected emitSafely(event: string, ...args: unknown[]): void {
    try {
      this.emit(event, ...args);
    } catch (err) {
      this.#emitLog.error({ event, err: asWicketError(err).message }, `a ${this.#what} listener threw`);
    }
  }

  /** emitSafely for the data path (circuit, payload): no rest-argument array on every frame. */
  protected emitFrameSafely(event: string, a: unknown, b: unknown): void {
    try {
      this.emit(event, a, b);
    } catch (err) {
      this.#emitLog.error({ event, err: asWicketError(err).message }, `a ${this.#what} listener threw`);
    }
  }
}
