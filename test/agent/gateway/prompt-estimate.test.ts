import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { contentText, estimateTokens, loadTokenizer } from '../../../agent/gateway/prompt-estimate.js';
import { GATEWAY_OPERATIONS } from '../../../agent/gateway/usage-row.js';
import { GATEWAY_TOKENIZE_MAX_CHARS } from '../../../protocol/limits.js';
import { seededRandom } from '../../helpers/seeded.js';

// The estimate decides who is refused before a request goes out, so it must be close to the real
// count, and a hostile body (any JSON the app can send, up to 8 MB) must never throw and never
// make the tokenizer read more than GATEWAY_TOKENIZE_MAX_CHARS per request.

interface Tokenizer {
  countTokens: (text: string) => number;
  encodeChat: (chat: { role: string; content: string }[], model: string) => number[];
}
const require = createRequire(import.meta.url);
const tokenizer = require('gpt-tokenizer/cjs/encoding/o200k_base') as Tokenizer;
const countTokens = tokenizer.countTokens;
// The gateway's module takes the tokenizer's countTokens on first use: wrapped before that, every
// character it reads is counted here (this bounds the work by count, not by a clock).
let charsRead = 0;
tokenizer.countTokens = (text: string): number => {
  charsRead += text.length;
  return countTokens(text);
};

function reads(fn: () => number): { tokens: number; chars: number } {
  const before = charsRead;
  const tokens = fn();
  return { tokens, chars: charsRead - before };
}

const MESSAGES = [
  { role: 'system', content: 'You are a helpful assistant.' },
  { role: 'user', content: "What is Ockham's razor? Answer in 日本語 🙂." },
  { role: 'assistant', content: 'It is a principle of parsimony.' },
];

describe('estimateTokens against gpt-tokenizer', () => {
  it('counts chat messages as the o200k chat encoding does (3 per message, 3 for the reply)', () => {
    loadTokenizer();
    expect(estimateTokens('chat', { messages: MESSAGES })).toBe(tokenizer.encodeChat(MESSAGES, 'gpt-4o').length);
    expect(estimateTokens('chat', { messages: MESSAGES.slice(0, 1) })).toBe(3 + 3 + countTokens('system') + countTokens(MESSAGES[0]!.content));
    expect(estimateTokens('chat', { messages: [] })).toBe(3);
  });

  it('adds a name and its separator token', () => {
    const base = estimateTokens('chat', { messages: [{ role: 'user', content: 'hi' }] });
    expect(estimateTokens('chat', { messages: [{ role: 'user', content: 'hi', name: 'alice' }] })).toBe(base + countTokens('alice') + 1);
  });

  it('counts the text parts of a parts array, not images or junk parts', () => {
    const content = [{ type: 'text', text: 'Describe ' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } }, 'this', { text: 42 }, null, 7];
    expect(contentText(content)).toBe('Describe this');
    expect(estimateTokens('chat', { messages: [{ role: 'user', content }] })).toBe(6 + countTokens('user') + countTokens('Describe this'));
  });

  it('counts completions prompts and embeddings inputs: strings, string lists, token arrays', () => {
    const text = 'The quick brown fox jumps over the lazy dog.';
    expect(estimateTokens('completions', { prompt: text })).toBe(countTokens(text));
    expect(estimateTokens('embeddings', { input: [text, 'é'] })).toBe(countTokens(text) + countTokens('é'));
    expect(estimateTokens('embeddings', { input: [1, 2, 3, 4] })).toBe(4);
    expect(estimateTokens('embeddings', { input: [[1, 2], [3], []] })).toBe(3);
    expect(estimateTokens('completions', { prompt: ['a b', [5, 6, 7]] })).toBe(countTokens('a b') + 3);
  });

  it('counts responses input (string or messages) and instructions', () => {
    expect(estimateTokens('responses', { input: 'Hello there', instructions: 'Be brief.' })).toBe(countTokens('Hello there') + countTokens('Be brief.'));
    const one = estimateTokens('responses', { input: [{ role: 'user', content: [{ type: 'input_text', text: 'Hi' }] }] });
    expect(one).toBe(6 + countTokens('user') + countTokens('Hi'));
  });

  it('adds the output the request may ask for: max_completion_tokens, else max_tokens, else max_output_tokens', () => {
    const prompt = estimateTokens('chat', { messages: MESSAGES });
    expect(estimateTokens('chat', { messages: MESSAGES, max_tokens: 100 })).toBe(prompt + 100);
    expect(estimateTokens('chat', { messages: MESSAGES, max_completion_tokens: 50, max_tokens: 100 })).toBe(prompt + 50);
    expect(estimateTokens('completions', { prompt: 'x', max_tokens: 16 })).toBe(countTokens('x') + 16);
    expect(estimateTokens('responses', { input: 'x', max_output_tokens: 1_000 })).toBe(countTokens('x') + 1_000);
    // Embeddings produce no output tokens; nonsense limits add nothing.
    expect(estimateTokens('embeddings', { input: 'x', max_tokens: 100 })).toBe(countTokens('x'));
    for (const bad of [-1, 0, 1.5, '100', null, 1e300, Number.NaN, [100], { n: 1 }]) {
      expect(estimateTokens('chat', { messages: MESSAGES, max_tokens: bad }), String(bad)).toBe(prompt);
    }
  });

  it('estimates nothing for other operations or a body that is not JSON', () => {
    expect(estimateTokens('other', { messages: MESSAGES, max_tokens: 10 })).toBe(0);
    for (const operation of GATEWAY_OPERATIONS) expect(estimateTokens(operation, undefined)).toBe(0);
  });
});

describe('estimateTokens on hostile bodies', () => {
  it.each([
    ['messages as a number', { messages: 5 }],
    ['messages of nulls and numbers', { messages: [null, 1, 'x', true, [], { role: 7, content: { text: 'x' }, name: null }] }],
    ['content of nested junk', { messages: [{ role: 'user', content: [[['deep']], { text: { text: 'x' } }, { type: 'text' }] }] }],
    ['prompt as an object', { prompt: { text: 'x' } }],
    ['input of mixed junk', { input: [null, 1, 'a', [1, 'b', null], [[[2]]], { role: 'user' }, true] }],
    ['instructions as an array', { input: 'x', instructions: ['a'] }],
  ])('%s never throws', (_what, body) => {
    for (const operation of GATEWAY_OPERATIONS) {
      const tokens = estimateTokens(operation, body as Record<string, unknown>);
      expect(Number.isSafeInteger(tokens) && tokens >= 0).toBe(true);
    }
  });

  it('does not recurse into arrays nested as deep as the body allows', () => {
    const deep = JSON.parse('['.repeat(200_000) + '"x"' + ']'.repeat(200_000)) as unknown;
    for (const operation of GATEWAY_OPERATIONS) {
      expect(() => estimateTokens(operation, { prompt: deep, input: deep, messages: deep })).not.toThrow();
    }
    expect(estimateTokens('embeddings', { input: [deep] })).toBe(0);
  });

  it('never throws on seeded random JSON shapes', () => {
    const random = seededRandom(0xe57);
    const value = (depth: number): unknown => {
      const pick = Math.floor(random() * (depth > 4 ? 6 : 8));
      switch (pick) {
        case 0: return null;
        case 1: return Math.floor(random() * 2_000) - 1_000;
        case 2: return random() < 0.5;
        case 3: return 'tok '.repeat(Math.floor(random() * 20));
        case 4: return random() * 1e300;
        case 5: return ['user', 'system', 'text', 'max_tokens'][Math.floor(random() * 4)];
        case 6: return Array.from({ length: Math.floor(random() * 5) }, () => value(depth + 1));
        default: {
          const keys = ['role', 'content', 'name', 'text', 'type', 'messages', 'input', 'prompt'];
          return Object.fromEntries(Array.from({ length: Math.floor(random() * 4) }, () => [keys[Math.floor(random() * keys.length)]!, value(depth + 1)]));
        }
      }
    };
    for (let n = 0; n < 500; n++) {
      const body = { messages: value(0), prompt: value(0), input: value(0), instructions: value(0), max_tokens: value(0), max_completion_tokens: value(0) };
      for (const operation of GATEWAY_OPERATIONS) {
        const tokens = estimateTokens(operation, body);
        expect(Number.isSafeInteger(tokens) && tokens >= 0).toBe(true);
      }
    }
  });
});

describe('estimateTokens on huge prompts', () => {
  const chunk = 'Ockham was a friar. 日本語 text and numbers 12345. ';
  const big = (chars: number): string => chunk.repeat(Math.ceil(chars / chunk.length)).slice(0, chars);

  it('tokenizes at most GATEWAY_TOKENIZE_MAX_CHARS of one string and counts the rest at 4 characters a token', () => {
    const text = big(GATEWAY_TOKENIZE_MAX_CHARS + 40_001);
    const { tokens, chars } = reads(() => estimateTokens('completions', { prompt: text }));
    expect(chars).toBe(GATEWAY_TOKENIZE_MAX_CHARS);
    expect(tokens).toBe(countTokens(text.slice(0, GATEWAY_TOKENIZE_MAX_CHARS)) + Math.ceil(40_001 / 4));
  });

  it('tokenizes at most GATEWAY_TOKENIZE_MAX_CHARS per request, however many strings carry it', () => {
    const part = big(GATEWAY_TOKENIZE_MAX_CHARS / 2 + 1);
    const messages = Array.from({ length: 30 }, () => ({ role: 'user', content: part }));
    const { tokens, chars } = reads(() => estimateTokens('chat', { messages }));
    expect(chars).toBeLessThanOrEqual(GATEWAY_TOKENIZE_MAX_CHARS);
    // Still plausible: within 50 % of the exact count (the exact count is done here, not by the gateway).
    const exact = 3 + messages.length * (3 + countTokens('user') + countTokens(part));
    expect(tokens).toBeGreaterThan(exact * 0.5);
    expect(tokens).toBeLessThan(exact * 1.5);
    for (const input of [Array.from({ length: 30 }, () => part), part.repeat(30)]) {
      expect(reads(() => estimateTokens('embeddings', { input })).chars).toBeLessThanOrEqual(GATEWAY_TOKENIZE_MAX_CHARS);
    }
  });

  it('gives every request its own budget', () => {
    const text = big(GATEWAY_TOKENIZE_MAX_CHARS);
    const first = reads(() => estimateTokens('completions', { prompt: text }));
    const second = reads(() => estimateTokens('completions', { prompt: text }));
    expect(second).toEqual(first);
    expect(first.tokens).toBe(countTokens(text));
  });
});
