import { describe, expect, it } from 'vitest';
import { isWicketError } from '../../protocol/errors.js';
import { Identity } from '../../protocol/identity.js';
import { MAX_POLICY_DEPTH, MAX_POLICY_LEN } from '../../protocol/limits.js';
import { parsePolicy } from '../../protocol/policy.js';
import { Secret } from '../../protocol/secret.js';
import { seededRandom } from '../helpers/seeded.js';

function syntaxErrorOf(text: string): string {
  try {
    parsePolicy(text);
  } catch (err) {
    expect(isWicketError(err, 'WICKET_ERR_POLICY_SYNTAX'), String(err)).toBe(true);
    return (err as Error).message;
  }
  return expect.fail(`policy ${JSON.stringify(text.slice(0, 60))} parsed`);
}

const alice = Identity.fromSeed(new Secret(Buffer.alloc(32, 1))).identifier;
const bob = Identity.fromSeed(new Secret(Buffer.alloc(32, 2))).identifier;

type Peer = { identifier: string; attributes: Record<string, string> };
const inlet: Peer = { identifier: alice, attributes: { 'openai-inlet': '', env: 'prod', team: 'ml' } };
const devInlet: Peer = { identifier: bob, attributes: { 'openai-inlet': '', env: 'dev', 'wicket:relays': 'openai,backup' } };
const admin: Peer = { identifier: bob, attributes: { admin: 'true', 'display.name': 'Ada Lovelace', 'a_b-c.d:e': 'x' } };
const nobody: Peer = { identifier: alice, attributes: {} };

describe('policy: grammar', () => {
  // [policy, inlet, devInlet, admin, nobody]
  const table: [string, boolean, boolean, boolean, boolean][] = [
    ['openai-inlet', true, true, false, false],
    ['env=prod', true, false, false, false],
    ['env = prod', true, false, false, false],
    ['env="prod"', true, false, false, false],
    ['env=Prod', false, false, false, false], // values are case-sensitive
    ['openai-inlet=""', true, true, false, false], // present with an empty value
    ['env', true, true, false, false],
    ['not env', false, false, true, true],
    ['openai-inlet and not env=dev', true, false, false, false],
    ['openai-inlet and env=dev or admin', false, true, true, false],
    ['admin or openai-inlet and env=dev', false, true, true, false], // and binds tighter than or
    ['(admin or openai-inlet) and env=dev', false, true, false, false],
    ['not admin and openai-inlet', true, true, false, false], // not binds tighter than and
    ['not (admin or openai-inlet)', false, false, false, true],
    ['not not admin', false, false, true, false],
    ['NOT admin AND openai-inlet Or team=ml', true, true, false, false], // keywords in any case
    [`identifier=${alice}`, true, false, false, true],
    [`identifier = ${bob} and admin=true`, false, false, true, false],
    [`identifier="${alice}" or identifier=${bob}`, true, true, true, true],
    ['display.name="Ada Lovelace"', false, false, true, false],
    ['a_b-c.d:e=x', false, false, true, false],
    ['wicket:relays="openai,backup"', false, true, false, false],
    ['team=ml and env=prod and openai-inlet', true, false, false, false],
    ['x or y or z or team', true, false, false, false],
    ['((((team))))', true, false, false, false],
    ['  admin\n\tor\r\nteam  ', true, false, true, false],
    ['env="a \\"quoted\\" \\\\ value"', false, false, false, false],
    ['constructor or __proto__ or toString or hasOwnProperty', false, false, false, false], // own attributes only
  ];
  for (const [text, ...expected] of table) {
    it(text.replace(/\s+/g, ' '), () => {
      const policy = parsePolicy(text);
      expect(policy.source).toBe(text);
      expect([inlet, devInlet, admin, nobody].map((peer) => policy.allows(peer))).toEqual(expected);
    });
  }

  it('a quoted value with escapes matches the unescaped text', () => {
    const policy = parsePolicy('note="say \\"hi\\" \\\\o/"');
    expect(policy.allows({ identifier: alice, attributes: { note: 'say "hi" \\o/' } })).toBe(true);
  });

  it('a quoted value may hold characters a bare word cannot', () => {
    expect(parsePolicy('name="é ✓ (and) or not"').allows({ identifier: alice, attributes: { name: 'é ✓ (and) or not' } })).toBe(true);
  });

  it('works on null-prototype attribute records, as decodeCredential returns', () => {
    const attributes = Object.assign(Object.create(null) as Record<string, string>, { team: 'ml' });
    expect(parsePolicy('team=ml').allows({ identifier: alice, attributes })).toBe(true);
  });
});

describe('policy: syntax errors name the position and what was expected', () => {
  const cases: [string, RegExp][] = [
    ['', /position 1: expected an attribute name.* found the end of the policy/],
    ['   ', /position 4: expected an attribute name/],
    ['admin and', /position 10: expected an attribute name, 'identifier=I…', 'not' or '\(', found the end/],
    ['and admin', /position 1: expected an attribute name.* found 'and'/],
    ['admin team', /position 7: expected 'and', 'or' or the end, found 'team'/],
    ['(admin or team', /position 15: expected 'and', 'or' or '\)' to close the '\(' at position 1, found the end/],
    ['admin)', /position 6: .*no matching '\('/],
    ['()', /position 2: expected an attribute name.* found '\)'/],
    ['env=', /position 5: expected a value .* found the end/],
    ['env==prod', /position 5: expected a value .* found '='/],
    ['=prod', /position 1: expected an attribute name.* found '='/],
    ['env="prod', /position 5: unterminated quoted value/],
    ['env="a\\nb"', /position 7: expected \\" or \\\\ after a backslash/],
    ['env!=dev', /position 4: unexpected character '!' \(write 'not attr=value'\)/],
    ['a && b', /position 3: unexpected character '&' \(write 'and'\)/],
    ['a || b', /position 3: unexpected character '\|' \(write 'or'\)/],
    ["env='dev'", /position 5: unexpected character ''' \(quote values with "\)/],
    ['team=ml\u00a0and x', /position 8: unexpected character U\+00A0/],
    ['identifier', /position 11: expected '=' and an identifier after 'identifier'/],
    ['identifier=admin', /position 12: expected an identifier \(I followed by 64 lowercase hex digits\)/],
    [`identifier=${alice.toUpperCase()}`, /position 12: expected an identifier/],
    ['not', /position 4: expected an attribute name/],
    ['a or or b', /position 6: expected an attribute name.* found 'or'/],
  ];
  for (const [text, message] of cases) {
    it(JSON.stringify(text), () => expect(syntaxErrorOf(text)).toMatch(message));
  }

  it('a value that is not a string is a syntax error, not a crash', () => {
    for (const value of [undefined, null, 42, {}, ['admin']]) syntaxErrorOf(value as unknown as string);
  });
});

describe('policy: hostile input', () => {
  it('a 100k-deep parenthesis bomb is refused without a stack overflow', () => {
    const bomb = `${'('.repeat(100_000)}admin${')'.repeat(100_000)}`;
    expect(syntaxErrorOf(bomb)).toMatch(/cap 2048/);
  });

  it(`nesting deeper than MAX_POLICY_DEPTH (${MAX_POLICY_DEPTH}) is refused even within the length cap`, () => {
    const at = (depth: number) => `${'('.repeat(depth)}admin${')'.repeat(depth)}`;
    expect(parsePolicy(at(MAX_POLICY_DEPTH)).allows(admin)).toBe(true);
    expect(syntaxErrorOf(at(MAX_POLICY_DEPTH + 1))).toMatch(/nested deeper than 32/);
    expect(syntaxErrorOf(`${'not '.repeat(500)}admin`)).toMatch(/nested deeper than 32/);
    expect(syntaxErrorOf(`${'(not '.repeat(300)}admin${')'.repeat(300)}`)).toMatch(/nested deeper than 32/);
  });

  it('a long flat chain within the length cap parses and evaluates (and/or do not deepen the tree)', () => {
    const chain = Array.from({ length: 250 }, (_, i) => `a${i}`).join(' or ');
    expect(chain.length).toBeLessThanOrEqual(MAX_POLICY_LEN);
    expect(parsePolicy(chain).allows({ identifier: alice, attributes: { a249: '' } })).toBe(true);
    expect(parsePolicy(chain).allows(nobody)).toBe(false);
  });

  it(`input over MAX_POLICY_LEN (${MAX_POLICY_LEN}) is refused before tokenizing, whatever it holds`, () => {
    for (const huge of ['a'.repeat(MAX_POLICY_LEN + 1), '"'.repeat(5_000_000), ' '.repeat(MAX_POLICY_LEN + 1)]) {
      expect(syntaxErrorOf(huge)).toMatch(/cap 2048/);
    }
  });

  it('a syntax error message stays short even when the offending word is long', () => {
    expect(syntaxErrorOf(`admin ${'x'.repeat(2000)}`).length).toBeLessThan(200);
  });

  it('seeded fuzz: random garbage only ever throws WICKET_ERR_POLICY_SYNTAX, and parsed policies evaluate without throwing', () => {
    const random = seededRandom(0x9011c7);
    const atoms = ['(', ')', '=', '"', '\\', ' ', 'and', 'or', 'not', 'admin', 'env', 'dev', 'identifier', alice, 'x.y:z', '!', '&', '\u0000', '\u{1f600}', 'é', '\n'];
    const peers: unknown[] = [inlet, devInlet, admin, nobody, null, undefined, {}, { identifier: 1, attributes: null }, { identifier: alice, attributes: 'x' }];
    let parsed = 0;
    for (let i = 0; i < 5000; i++) {
      let text = '';
      const parts = Math.floor(random() * 30);
      for (let j = 0; j < parts; j++) {
        text += random() < 0.1 ? String.fromCharCode(Math.floor(random() * 0x3000)) : atoms[Math.floor(random() * atoms.length)]!;
        if (random() < 0.5) text += ' ';
      }
      let policy;
      try {
        policy = parsePolicy(text);
      } catch (err) {
        expect(isWicketError(err, 'WICKET_ERR_POLICY_SYNTAX'), `${JSON.stringify(text)}: ${String(err)}`).toBe(true);
        continue;
      }
      parsed++;
      for (const peer of peers) expect(typeof policy.allows(peer as never)).toBe('boolean');
    }
    expect(parsed).toBeGreaterThan(50); // the fuzz reaches the evaluator, not only the tokenizer
  });

  it('a peer whose attributes throw when read is denied, never crashes the caller', () => {
    const trap = new Proxy({}, { getOwnPropertyDescriptor: () => { throw new Error('boom'); }, get: () => { throw new Error('boom'); } });
    expect(parsePolicy('admin').allows({ identifier: alice, attributes: trap })).toBe(false);
    expect(parsePolicy('not admin').allows({ identifier: alice, attributes: trap })).toBe(false);
    expect(parsePolicy('not admin').allows(null as never)).toBe(false);
  });

  it('an inherited attribute does not count (prototype pollution cannot grant access)', () => {
    const inherited = Object.create({ admin: 'true' }) as Record<string, string>;
    expect(parsePolicy('admin=true').allows({ identifier: alice, attributes: inherited })).toBe(false);
  });
});
