import { createRequire } from 'node:module';
import { GATEWAY_TOKENIZE_MAX_CHARS } from '../../protocol/limits.js';
import type { GatewayOperation } from './usage-row.js';

// Before a request goes out, its tokens are estimated so a caller over its budget is refused
// early (Azure does the same: the estimate is the prompt's tokens plus the completion tokens the
// request may ask for). Afterwards the backend's own usage is charged instead.
//
// The tokenizer is gpt-tokenizer's o200k_base (the gpt-4o / o-series / gpt-4.1 encoding); for older
// models it is a close estimate, which is all an estimate needs to be. It is loaded on the first
// gateway request (≈ 250 ms, ≈ 50 MB), never by a plain TCP outlet.

const require = createRequire(import.meta.url);
let countTokens: ((text: string) => number) | undefined;
/**
 * Characters the tokenizer may still read for the estimate under way. The cap is per request, as
 * GATEWAY_TOKENIZE_MAX_CHARS says: per string, 32 messages of 256 K characters each were all
 * tokenized (8 MB, the event loop held for about a second per request).
 */
let budget = GATEWAY_TOKENIZE_MAX_CHARS;

function tokenCount(text: string): number {
  countTokens ??= (require('gpt-tokenizer/cjs/encoding/o200k_base') as { countTokens: (text: string) => number }).countTokens;
  const exact = Math.min(text.length, budget);
  budget -= exact;
  if (exact === text.length) return countTokens(text);
  return (exact > 0 ? countTokens(text.slice(0, exact)) : 0) + Math.ceil((text.length - exact) / 4);
}

/** Framing tokens per chat message and per reply, as OpenAI's cookbook counts them. */
const TOKENS_PER_MESSAGE = 3;
const TOKENS_PER_REPLY = 3;

/** The text of a message's content: a string, or an array of parts whose text parts count. */
export function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  let text = '';
  for (const part of content) {
    if (typeof part === 'string') text += part;
    else if (typeof part === 'object' && part !== null) {
      const value = (part as { text?: unknown }).text;
      if (typeof value === 'string') text += value;
    }
  }
  return text;
}

function messagesTokens(messages: unknown): number {
  if (!Array.isArray(messages)) return 0;
  let tokens = TOKENS_PER_REPLY;
  for (const message of messages) {
    if (typeof message !== 'object' || message === null) continue;
    const m = message as { role?: unknown; content?: unknown; name?: unknown };
    tokens += TOKENS_PER_MESSAGE + tokenCount(contentText(m.content));
    if (typeof m.role === 'string') tokens += tokenCount(m.role);
    if (typeof m.name === 'string') tokens += tokenCount(m.name) + 1;
  }
  return tokens;
}

/** A prompt, an input: a string, an array of strings, or token arrays (counted as they are). */
function inputTokens(input: unknown): number {
  if (typeof input === 'string') return tokenCount(input);
  if (!Array.isArray(input)) return 0;
  if (input.every((x) => typeof x === 'number')) return input.length;
  let tokens = 0;
  for (const item of input) {
    if (typeof item === 'string') tokens += tokenCount(item);
    // One level only (a list of token arrays): recursing into whatever nesting the caller sent
    // overflowed the stack on `[[[[…]]]]`.
    else if (Array.isArray(item)) tokens += item.every((x) => typeof x === 'number') ? item.length : 0;
    else if (typeof item === 'object' && item !== null) tokens += messagesTokens([item]);
  }
  return tokens;
}

function requestedOutput(body: Record<string, unknown>): number {
  for (const key of ['max_completion_tokens', 'max_tokens', 'max_output_tokens']) {
    const value = body[key];
    if (Number.isSafeInteger(value) && (value as number) > 0) return value as number;
  }
  return 0;
}

/** Estimated tokens of one request: its prompt plus the output it asks to be allowed. */
export function estimateTokens(operation: GatewayOperation, body: Record<string, unknown> | undefined): number {
  if (body === undefined) return 0;
  budget = GATEWAY_TOKENIZE_MAX_CHARS;
  switch (operation) {
    case 'chat':
      return messagesTokens(body.messages) + requestedOutput(body);
    case 'completions':
      return inputTokens(body.prompt) + requestedOutput(body);
    case 'embeddings':
      return inputTokens(body.input);
    case 'responses':
      return inputTokens(body.input) + (typeof body.instructions === 'string' ? tokenCount(body.instructions) : 0) + requestedOutput(body);
    case 'other':
      return 0;
  }
}

/** Loads the tokenizer now (the gateway calls this at start, so no request pays for it). */
export function loadTokenizer(): void {
  tokenCount('');
}
