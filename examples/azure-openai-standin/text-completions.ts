// Legacy completions (`POST …/completions` with a `prompt`), shaped as Azure sends them: a
// `text_completion` object with `prompt_filter_results` and per-choice `content_filter_results`;
// streamed, Azure's first event again carries only the prompt filter results, then one chunk per
// piece, a chunk with the finish reason, and with `stream_options.include_usage` a last chunk
// with empty `choices` and the usage (every earlier chunk then has `usage: null`).
//
// `prompt` may be a string, an array of strings, an array of token ids or an array of token-id
// arrays; each prompt gets its own choice (`index` = its position). A token-id prompt is "read"
// as its ids joined by spaces. As on the service, `max_tokens` defaults to 16, so an answer
// longer than that ends with finish_reason `length` unless the caller asks for more.

import * as azure from './azure-errors.js';
import { answerFor, choiceFilterResults, countTextTokens, cutAnswer, newCompletionId, promptFilterResults } from './completion.js';
import { dataFrames, type OperationContext, type Reply } from './reply.js';
import { isRefusal, streamFields, tokenLimit, type Checked, type JsonObject } from './request-body.js';

/** The service's default `max_tokens` for legacy completions. */
export const DEFAULT_COMPLETION_MAX_TOKENS = 16;

interface Prompt {
  readonly text: string;
  readonly tokens: number;
}

interface TextChoice {
  readonly index: number;
  readonly pieces: readonly string[];
  readonly finishReason: 'stop' | 'length';
}

export interface TextUsage {
  readonly prompt_tokens: number;
  readonly completion_tokens: number;
  readonly total_tokens: number;
}

const INVALID_PROMPT = "Invalid 'prompt': expected a string, an array of strings, an array of tokens, or an array of token arrays.";

function isTokenArray(value: unknown): value is number[] {
  return Array.isArray(value) && value.length > 0 && value.every((t) => Number.isInteger(t) && (t as number) >= 0);
}

function parsePrompts(value: unknown): Checked<{ prompts: Prompt[] }> {
  if (value === undefined || value === null) return { error: azure.invalidRequest("Missing required parameter: 'prompt'.", 'prompt') };
  const asPrompt = (item: unknown): Prompt | undefined => {
    if (typeof item === 'string') return { text: item, tokens: countTextTokens(item) };
    if (isTokenArray(item)) return { text: item.join(' '), tokens: item.length };
    return undefined;
  };
  const single = asPrompt(value);
  if (single) return { prompts: [single] };
  if (!Array.isArray(value) || value.length === 0) return { error: azure.invalidRequest(INVALID_PROMPT, 'prompt') };
  const prompts: Prompt[] = [];
  for (const item of value) {
    const prompt = asPrompt(item);
    if (!prompt) return { error: azure.invalidRequest(INVALID_PROMPT, 'prompt') };
    prompts.push(prompt);
  }
  return { prompts };
}

export function answerTextCompletion(fields: JsonObject, context: OperationContext): Checked<Reply> {
  const parsed = parsePrompts(fields.prompt);
  if (isRefusal(parsed)) return parsed;
  const stream = streamFields(fields);
  if (isRefusal(stream)) return stream;
  const limit = tokenLimit(fields.max_tokens, 'max_tokens');
  if (isRefusal(limit)) return limit;
  const maxTokens = limit.limit ?? DEFAULT_COMPLETION_MAX_TOKENS;

  const choices: TextChoice[] = parsed.prompts.map((prompt, index) => ({
    index,
    ...cutAnswer(answerFor([{ role: 'user', content: prompt.text }], context.deployment), maxTokens),
  }));
  const promptTokens = parsed.prompts.reduce((sum, prompt) => sum + prompt.tokens, 0);
  const completionTokens = choices.reduce((sum, choice) => sum + choice.pieces.length, 0);
  const usage: TextUsage = { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens };
  const head = { id: newCompletionId('cmpl'), created: Math.floor(context.nowMs / 1000), model: context.model };

  if (!stream.stream) {
    return {
      kind: 'json',
      body: {
        choices: choices.map((choice) => ({
          content_filter_results: choiceFilterResults(),
          finish_reason: choice.finishReason,
          index: choice.index,
          logprobs: null,
          text: choice.pieces.join(''),
        })),
        created: head.created,
        id: head.id,
        model: head.model,
        object: 'text_completion',
        prompt_filter_results: promptFilterResults(parsed.prompts.length),
        usage,
      },
    };
  }
  return { kind: 'sse', frames: dataFrames(textCompletionChunks(head, choices, parsed.prompts.length, stream.includeUsage ? usage : undefined)) };
}

function textCompletionChunks(
  head: { readonly id: string; readonly created: number; readonly model: string },
  choices: readonly TextChoice[],
  promptCount: number,
  usage: TextUsage | undefined,
): Record<string, unknown>[] {
  const usageField = usage ? { usage: null } : {};
  const chunk = (choice: Record<string, unknown>): Record<string, unknown> => ({
    choices: [{ ...choice, logprobs: null }],
    created: head.created,
    id: head.id,
    model: head.model,
    object: 'text_completion',
    ...usageField,
  });
  const chunks: Record<string, unknown>[] = [
    // Azure's first event: prompt filter results only.
    { choices: [], created: 0, id: '', model: '', object: '', prompt_filter_results: promptFilterResults(promptCount) },
  ];
  for (const choice of choices) {
    for (const piece of choice.pieces) {
      chunks.push(chunk({ content_filter_results: choiceFilterResults(), finish_reason: null, index: choice.index, text: piece }));
    }
    chunks.push(chunk({ content_filter_results: {}, finish_reason: choice.finishReason, index: choice.index, text: '' }));
  }
  if (usage) chunks.push({ choices: [], created: head.created, id: head.id, model: head.model, object: 'text_completion', usage });
  return chunks;
}
