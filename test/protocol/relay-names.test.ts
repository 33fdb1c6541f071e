import { describe, expect, it } from 'vitest';
import { MAX_RELAY_NAME_LEN } from '../../protocol/limits.js';
import { isRelayName, RELAYS_ATTRIBUTE, RESERVED_ATTRIBUTE_PREFIX } from '../../protocol/relay-names.js';

describe('relay names (one rule for CLI, node.json and the authority)', () => {
  it('accepts letters, digits, dot, underscore and dash, starting with a letter or digit, up to the cap', () => {
    for (const name of ['openai', 'db-1', 'a.b_c', '9lives', 'x'.repeat(MAX_RELAY_NAME_LEN)]) expect(isRelayName(name), name).toBe(true);
  });

  it('refuses empty, oversize, a leading symbol, commas (the relays attribute joins on them), spaces and non-strings', () => {
    for (const name of ['', 'x'.repeat(MAX_RELAY_NAME_LEN + 1), '-db', '.db', 'a,b', 'a b', 'ä', undefined, 7, null]) {
      expect(isRelayName(name), String(name)).toBe(false);
    }
  });

  it('the relays attribute is itself reserved, so no ticket can grant it by --attribute', () => {
    expect(RELAYS_ATTRIBUTE.startsWith(RESERVED_ATTRIBUTE_PREFIX)).toBe(true);
  });
});
