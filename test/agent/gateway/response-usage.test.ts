import { describe, expect, it } from 'vitest';
import { normaliseUsage, usageInTail, usageOfAnswer } from '../../../agent/gateway/response-usage.js';
import { GATEWAY_USAGE_PARSE_BYTES } from '../../../protocol/limits.js';
import { seededBytes, seededRandom } from '../../helpers/seeded.js';

// The backend's own usage is what the caller is charged: both shapes it comes in are read, and
// anything that is not a sound count (negative, fractional, huge, a string) is refused rather
// than charged. Answers are read whole up to GATEWAY_USAGE_PARSE_BYTES, else from their tail.

describe('normaliseUsage', () => {
  it('reads the chat/completions/embeddings shape', () => {
    expect(normaliseUsage({ prompt_tokens: 11, completion_tokens: 4, total_tokens: 15, prompt_tokens_details: { cached_tokens: 3 } })).toEqual({
      promptTokens: 11,
      completionTokens: 4,
      totalTokens: 15,
    });
    // Embeddings: no completion tokens.
    expect(normaliseUsage({ prompt_tokens: 8, total_tokens: 8 })).toEqual({ promptTokens: 8, completionTokens: 0, totalTokens: 8 });
  });

  it('reads the responses API shape', () => {
    expect(normaliseUsage({ input_tokens: 7, output_tokens: 2, total_tokens: 9, output_tokens_details: { reasoning_tokens: 0 } })).toEqual({
      promptTokens: 7,
      completionTokens: 2,
      totalTokens: 9,
    });
  });

  it('fills a missing total from its parts, and zero for missing completion tokens', () => {
    expect(normaliseUsage({ prompt_tokens: 5, completion_tokens: 6 })).toEqual({ promptTokens: 5, completionTokens: 6, totalTokens: 11 });
    expect(normaliseUsage({ input_tokens: 5 })).toEqual({ promptTokens: 5, completionTokens: 0, totalTokens: 5 });
    expect(normaliseUsage({ prompt_tokens: 0, total_tokens: 0 })).toEqual({ promptTokens: 0, completionTokens: 0, totalTokens: 0 });
  });

  it.each([
    ['null', null],
    ['undefined', undefined],
    ['a number', 15],
    ['a string', '{"prompt_tokens":1}'],
    ['an empty object', {}],
    ['no prompt count', { completion_tokens: 4, total_tokens: 4 }],
    ['a negative prompt', { prompt_tokens: -1, total_tokens: 5 }],
    ['NaN', { prompt_tokens: Number.NaN, total_tokens: 5 }],
    ['Infinity', { prompt_tokens: Number.POSITIVE_INFINITY }],
    ['a fraction', { prompt_tokens: 1.5, total_tokens: 2 }],
    ['past 2^53', { prompt_tokens: 2 ** 53, total_tokens: 2 ** 53 }],
    ['a numeric string', { prompt_tokens: '5', total_tokens: '5' }],
    ['an array', [5, 5]],
  ])('refuses %s', (_what, usage) => {
    expect(normaliseUsage(usage)).toBeUndefined();
  });

  it('ignores a bad part rather than charging it', () => {
    // A bad completion count is taken as absent; a bad total is recomputed.
    expect(normaliseUsage({ prompt_tokens: 3, completion_tokens: -7, total_tokens: 3 })).toEqual({ promptTokens: 3, completionTokens: 0, totalTokens: 3 });
    expect(normaliseUsage({ prompt_tokens: 3, completion_tokens: 2, total_tokens: Number.NaN })).toEqual({ promptTokens: 3, completionTokens: 2, totalTokens: 5 });
    expect(normaliseUsage({ prompt_tokens: -3, input_tokens: 4 })).toEqual({ promptTokens: 4, completionTokens: 0, totalTokens: 4 });
  });
});

describe('usageOfAnswer', () => {
  it('reads usage and model of a chat answer and of a responses answer', () => {
    const chat = { id: 'x', model: 'gpt-4o-2024-08-06', choices: [{ message: { content: 'hi' } }], usage: { prompt_tokens: 9, completion_tokens: 1, total_tokens: 10 } };
    expect(usageOfAnswer(Buffer.from(JSON.stringify(chat)))).toEqual({ usage: { promptTokens: 9, completionTokens: 1, totalTokens: 10 }, model: 'gpt-4o-2024-08-06' });
    const response = { object: 'response', model: 'gpt-4.1', output: [], usage: { input_tokens: 3, output_tokens: 4, total_tokens: 7 } };
    expect(usageOfAnswer(Buffer.from(JSON.stringify(response)))).toEqual({ usage: { promptTokens: 3, completionTokens: 4, totalTokens: 7 }, model: 'gpt-4.1' });
  });

  it('reads an Azure error answer as no usage', () => {
    expect(usageOfAnswer(Buffer.from('{"error":{"code":"429","message":"Rate limit"}}'))).toEqual({ usage: undefined, model: null });
  });

  it.each([
    ['empty', ''],
    ['not JSON', '{"usage": {"prompt_tokens": 1'],
    ['null', 'null'],
    ['an array', '[{"usage":{"prompt_tokens":1,"total_tokens":1}}]'],
    ['a string', '"usage"'],
    ['a model that is not a string', '{"model":{"x":1},"usage":"lots"}'],
    ['HTML', '<html><body>502 Bad Gateway</body></html>'],
  ])('never throws on %s', (_what, text) => {
    const read = usageOfAnswer(Buffer.from(text));
    expect(read.usage).toBeUndefined();
    expect(read.model).toBeNull();
  });

  it('never throws on seeded random bytes', () => {
    for (let seed = 1; seed <= 50; seed++) expect(() => usageOfAnswer(seededBytes(seed, 1 + seed * 37))).not.toThrow();
  });

  it('reads only the tail of an answer past GATEWAY_USAGE_PARSE_BYTES (model unknown)', () => {
    const data = Array.from({ length: Math.ceil(GATEWAY_USAGE_PARSE_BYTES / 40) }, (_, i) => ({ object: 'embedding', index: i, embedding: [0.125, -0.5] }));
    const body = Buffer.from(JSON.stringify({ object: 'list', model: 'text-embedding-3-small', data, usage: { prompt_tokens: 1234, total_tokens: 1234 } }));
    expect(body.length).toBeGreaterThan(GATEWAY_USAGE_PARSE_BYTES);
    expect(usageOfAnswer(body)).toEqual({ usage: { promptTokens: 1234, completionTokens: 0, totalTokens: 1234 }, model: null });
  });
});

describe('usageInTail', () => {
  const tail = (text: string): ReturnType<typeof usageInTail> => usageInTail(Buffer.from(text));

  it('reads the last usage object, nested details and whitespace included', () => {
    expect(tail('{"data":[{"usage":{"prompt_tokens":1,"total_tokens":1}}],"usage" : {\n "prompt_tokens": 5, "prompt_tokens_details": {"cached_tokens": {"x": 1}}, "total_tokens": 5}}')).toEqual({
      promptTokens: 5,
      completionTokens: 0,
      totalTokens: 5,
    });
  });

  it('reads usage sitting in the last 4096 bytes of a large body, and nothing before them', () => {
    const pad = 'x'.repeat(100_000);
    expect(usageInTail(Buffer.from(`{"a":"${pad}","usage":{"prompt_tokens":2,"total_tokens":2}}`))?.totalTokens).toBe(2);
    expect(usageInTail(Buffer.from(`{"usage":{"prompt_tokens":2,"total_tokens":2},"a":"${pad}"}`))).toBeUndefined();
  });

  it('does not read a later object as the usage after "usage": null', () => {
    expect(tail('{"usage":null,"other":{"prompt_tokens":9,"total_tokens":9}}')).toBeUndefined();
    expect(tail('{"usage":"none","x":{"prompt_tokens":9}}')).toBeUndefined();
    expect(tail('{"text":"the \\"usage\\" word","usage":{"prompt_tokens":1,"total_tokens":1}}')?.totalTokens).toBe(1);
  });

  it.each([
    ['no usage', '{"data":[]}'],
    ['an unclosed usage', '{"usage":{"prompt_tokens":1,"total_tokens":1'],
    ['bad JSON inside', '{"usage":{"prompt_tokens":1,,}}'],
    ['negative counts', '{"usage":{"prompt_tokens":-5,"total_tokens":-5}}'],
    ['a bare key', '"usage"'],
    ['empty', ''],
  ])('gives no usage for %s', (_what, text) => {
    expect(tail(text)).toBeUndefined();
  });

  it('never throws on seeded random tails that mention usage', () => {
    const random = seededRandom(0x7a1);
    const pieces = ['"usage"', ':', '{', '}', '"prompt_tokens"', '1', ',', ' ', '"', '\\', '\u00e9', '\ud83d'];
    for (let n = 0; n < 2_000; n++) {
      let text = '';
      for (let i = Math.floor(random() * 40); i > 0; i--) text += pieces[Math.floor(random() * pieces.length)];
      expect(() => tail(text)).not.toThrow();
    }
  });
});
