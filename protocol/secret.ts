import { inspect } from 'node:util';

const REDACTED = '[REDACTED]';

/**
 * Wraps secret material (ticket secrets, private keys, API keys) so it cannot leak by accident:
 * `String(s)`, template literals, `JSON.stringify` and `util.inspect` (so console.log and pino)
 * all print `[REDACTED]`. The value is reachable only through `reveal()`, which makes every use
 * greppable.
 */
export class Secret<T = Buffer> {
  readonly #value: T;

  constructor(value: T) {
    this.#value = value;
  }

  reveal(): T {
    return this.#value;
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return REDACTED;
  }

  [Symbol.toPrimitive](): string {
    return REDACTED;
  }
}
