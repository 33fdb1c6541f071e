import { wicketError } from './errors.js';
import { parseIdentifier } from './identity.js';
import { MAX_POLICY_DEPTH, MAX_POLICY_LEN } from './limits.js';

// Access policies decide which peer an outlet serves and which outlet an inlet trusts
// (protocol/README.md, "Access policy"). Grammar, loosest binding first:
//
//   policy  = or EOF
//   or      = and ("or" and)*
//   and     = unary ("and" unary)*
//   unary   = "not" unary | "(" or ")" | term
//   term    = "identifier" "=" IDENTIFIER        the peer's identifier is exactly this one
//           | NAME "=" value                      the attribute exists and equals the value
//           | NAME                                the attribute exists (any value)
//   value   = NAME-like bare word | "double-quoted" (escapes: \" and \\)
//   NAME    = [A-Za-z0-9_.:-]+, not one of the keywords and / or / not (any case) / identifier
//
// Parsing is a recursive descent whose depth ("(" and "not") is capped by MAX_POLICY_DEPTH after
// the text is capped by MAX_POLICY_LEN, so no input can exhaust the stack. And/or nodes are flat
// lists, so the evaluation depth is bounded by the same cap. Evaluation never throws: anything odd
// about the peer denies.

export interface Policy {
  readonly source: string;
  allows(peer: { identifier: string; attributes: Readonly<Record<string, string>> }): boolean;
}

type Node =
  | { kind: 'has'; name: string }
  | { kind: 'equals'; name: string; value: string }
  | { kind: 'identifier'; identifier: string }
  | { kind: 'not'; operand: Node }
  | { kind: 'and'; operands: Node[] }
  | { kind: 'or'; operands: Node[] };

type Token =
  | { kind: 'word'; text: string; position: number }
  | { kind: 'string'; text: string; position: number }
  | { kind: '(' | ')' | '=' | 'end'; position: number };

const WORD_CHAR = /[A-Za-z0-9_.:-]/;
const KEYWORDS = new Set(['and', 'or', 'not']);
const IDENTIFIER_NAME = 'identifier';

/** Positions in messages are 1-based character offsets into the policy text. */
function syntaxError(position: number, detail: string): never {
  throw wicketError('WICKET_ERR_POLICY_SYNTAX', `policy position ${position}: ${detail}`);
}

function describe(token: Token): string {
  switch (token.kind) {
    case 'end':
      return 'the end of the policy';
    case 'word':
      return `'${token.text.length > 40 ? `${token.text.slice(0, 40)}…` : token.text}'`;
    case 'string':
      return 'a quoted value';
    default:
      return `'${token.kind}'`;
  }
}

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const ch = text[i]!;
    if (ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r') {
      i++;
    } else if (ch === '(' || ch === ')' || ch === '=') {
      tokens.push({ kind: ch, position: i + 1 });
      i++;
    } else if (ch === '"') {
      const start = i;
      let value = '';
      i++;
      for (;;) {
        if (i >= text.length) syntaxError(start + 1, 'unterminated quoted value (expected a closing ")');
        const c = text[i]!;
        if (c === '"') break;
        if (c === '\\') {
          const next = text[i + 1];
          if (next !== '"' && next !== '\\') syntaxError(i + 1, 'expected \\" or \\\\ after a backslash in a quoted value');
          value += next;
          i += 2;
        } else {
          value += c;
          i++;
        }
      }
      i++;
      tokens.push({ kind: 'string', text: value, position: start + 1 });
    } else if (WORD_CHAR.test(ch)) {
      const start = i;
      while (i < text.length && WORD_CHAR.test(text[i]!)) i++;
      tokens.push({ kind: 'word', text: text.slice(start, i), position: start + 1 });
    } else {
      const code = ch.codePointAt(0)!;
      const shown = code >= 0x21 && code <= 0x7e ? `'${ch}'` : `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
      const hint =
        ch === '!' ? " (write 'not attr=value')" : ch === '&' ? " (write 'and')" : ch === '|' ? " (write 'or')" : ch === "'" ? ' (quote values with ")' : '';
      syntaxError(i + 1, `unexpected character ${shown}${hint}`);
    }
  }
  tokens.push({ kind: 'end', position: text.length + 1 });
  return tokens;
}

function isKeyword(token: Token, keyword: string): boolean {
  return token.kind === 'word' && token.text.toLowerCase() === keyword;
}

class Parser {
  #index = 0;
  #depth = 0;

  constructor(private readonly tokens: Token[]) {}

  #peek(): Token {
    return this.tokens[this.#index]!;
  }

  #next(): Token {
    const token = this.tokens[this.#index]!;
    if (token.kind !== 'end') this.#index++;
    return token;
  }

  parse(): Node {
    const node = this.#or();
    const token = this.#peek();
    if (token.kind !== 'end') {
      const expected = token.kind === ')' ? "'and', 'or' or the end (this ')' has no matching '(')" : "'and', 'or' or the end";
      syntaxError(token.position, `expected ${expected}, found ${describe(token)}`);
    }
    return node;
  }

  #or(): Node {
    const operands = [this.#and()];
    while (isKeyword(this.#peek(), 'or')) {
      this.#next();
      operands.push(this.#and());
    }
    return operands.length === 1 ? operands[0]! : { kind: 'or', operands };
  }

  #and(): Node {
    const operands = [this.#unary()];
    while (isKeyword(this.#peek(), 'and')) {
      this.#next();
      operands.push(this.#unary());
    }
    return operands.length === 1 ? operands[0]! : { kind: 'and', operands };
  }

  #enter(token: Token): void {
    if (++this.#depth > MAX_POLICY_DEPTH) syntaxError(token.position, `nested deeper than ${MAX_POLICY_DEPTH} levels of '(' and 'not'`);
  }

  #unary(): Node {
    const token = this.#next();
    if (isKeyword(token, 'not')) {
      this.#enter(token);
      const operand = this.#unary();
      this.#depth--;
      return { kind: 'not', operand };
    }
    if (token.kind === '(') {
      this.#enter(token);
      const inner = this.#or();
      const close = this.#next();
      if (close.kind !== ')') syntaxError(close.position, `expected 'and', 'or' or ')' to close the '(' at position ${token.position}, found ${describe(close)}`);
      this.#depth--;
      return inner;
    }
    if (token.kind !== 'word' || KEYWORDS.has(token.text.toLowerCase())) {
      syntaxError(token.position, `expected an attribute name, 'identifier=I…', 'not' or '(', found ${describe(token)}`);
    }
    return this.#term(token);
  }

  #term(name: Token & { kind: 'word' }): Node {
    const isIdentifier = name.text.toLowerCase() === IDENTIFIER_NAME;
    if (this.#peek().kind !== '=') {
      if (isIdentifier) syntaxError(this.#peek().position, "expected '=' and an identifier after 'identifier'");
      return { kind: 'has', name: name.text };
    }
    this.#next();
    const value = this.#next();
    if (value.kind !== 'word' && value.kind !== 'string') {
      syntaxError(value.position, `expected a value (a bare word or "quoted") after '=', found ${describe(value)}`);
    }
    if (!isIdentifier) return { kind: 'equals', name: name.text, value: value.text };
    try {
      return { kind: 'identifier', identifier: parseIdentifier(value.text) };
    } catch {
      return syntaxError(value.position, 'expected an identifier (I followed by 64 lowercase hex digits) after identifier=');
    }
  }
}

function evaluate(node: Node, identifier: unknown, attributes: object): boolean {
  switch (node.kind) {
    case 'has':
      // Own properties only: a policy naming 'constructor' or '__proto__' must not match every peer.
      return Object.hasOwn(attributes, node.name);
    case 'equals':
      return Object.hasOwn(attributes, node.name) && (attributes as Record<string, unknown>)[node.name] === node.value;
    case 'identifier':
      return identifier === node.identifier;
    case 'not':
      return !evaluate(node.operand, identifier, attributes);
    case 'and':
      return node.operands.every((operand) => evaluate(operand, identifier, attributes));
    case 'or':
      return node.operands.some((operand) => evaluate(operand, identifier, attributes));
  }
}

/**
 * Parses an access policy. Throws WICKET_ERR_POLICY_SYNTAX naming the position (1-based) and what
 * was expected there. The returned policy's `allows` never throws; a malformed peer is denied.
 */
export function parsePolicy(text: string): Policy {
  if (typeof text !== 'string') throw wicketError('WICKET_ERR_POLICY_SYNTAX', `policy must be a string, got ${text === null ? 'null' : typeof text}`);
  if (text.length > MAX_POLICY_LEN) throw wicketError('WICKET_ERR_POLICY_SYNTAX', `policy is ${text.length} characters, cap ${MAX_POLICY_LEN}`);
  const root = new Parser(tokenize(text)).parse();
  const source = text;
  return Object.freeze({
    source,
    allows(peer: { identifier: string; attributes: Readonly<Record<string, string>> }): boolean {
      try {
        if (typeof peer !== 'object' || peer === null) return false;
        const { identifier, attributes } = peer;
        if (typeof attributes !== 'object' || attributes === null) return false;
        return evaluate(root, identifier, attributes);
      } catch {
        return false; // a hostile attributes object (a throwing getter or proxy) is denied
      }
    },
    toString(): string {
      return source;
    },
  });
}
