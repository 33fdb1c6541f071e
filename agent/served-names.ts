import type { WicketError } from '../protocol/errors.js';

// The relay names an agent serves, and where each stands with the relay: wanted (registered again
// after every reconnect), acknowledged on the current connection, or refused (the credential does
// not allow it; forgotten, not retried). Outlets show this as their state in `agent status`.

export type NameState = 'registering' | 'registered' | 'refused';

export class ServedNames {
  readonly #wanted = new Set<string>();
  readonly #acknowledged = new Set<string>();
  /** Only names that were wanted when refused, and only until wanted again or forgotten. */
  readonly #refused = new Map<string, { error: WicketError; at: number }>();

  want(name: string): void {
    this.#wanted.add(name);
    this.#refused.delete(name);
  }

  /** Returns whether the name was wanted. */
  forget(name: string): boolean {
    this.#acknowledged.delete(name);
    this.#refused.delete(name);
    return this.#wanted.delete(name);
  }

  acknowledged(name: string): void {
    if (this.#wanted.has(name)) this.#acknowledged.add(name);
  }

  refused(name: string, error: WicketError, at: number): void {
    if (!this.#wanted.delete(name)) return;
    this.#acknowledged.delete(name);
    this.#refused.set(name, { error, at });
  }

  /** The connection dropped: every name must be registered again. */
  disconnected(): void {
    this.#acknowledged.clear();
  }

  wanted(): IterableIterator<string> {
    return this.#wanted.values();
  }

  state(name: string): NameState | undefined {
    if (this.#refused.has(name)) return 'refused';
    if (!this.#wanted.has(name)) return undefined;
    return this.#acknowledged.has(name) ? 'registered' : 'registering';
  }

  /** The relay's refusal of `name` and when it came (ms since the epoch). */
  refusal(name: string): { error: WicketError; at: number } | undefined {
    return this.#refused.get(name);
  }
}
