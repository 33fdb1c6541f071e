import type { Identifier } from '../../protocol/identity.js';

/** A well-formed identifier from a small number, for tests that need many distinct ones. */
export function identifierFor(n: number): Identifier {
  return `I${n.toString(16).padStart(64, '0')}` as Identifier;
}
