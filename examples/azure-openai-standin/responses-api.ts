// The Responses API (`POST /openai/v1/responses`, `/openai/responses?api-version=…-preview`):
// `input` is a string or a list of messages, the answer a `response` object whose `output` holds
// one assistant message with one `output_text` part. Streamed, it is a sequence of named events,
// each with a `type` and a rising `sequence_number`:
//
//   response.created, response.in_progress         the response so far (no output, no usage)
//   response.output_item.added                      the message item, content []
//   response.content_part.added                     the output_text part, text ""
//   response.output_text.delta × pieces             one piece each
//   response.output_text.done, response.content_part.done, response.output_item.done
//   response.completed                              the full response, usage included
//
// which is what the official SDK's stream helper accumulates. With `max_output_tokens` shorter
// than the answer, the status is `incomplete` (reason `max_output_tokens`) and the last event is
// `response.incomplete`. Token counts match chat: the same messages give the same input tokens.

import { randomBytes } from 'node:crypto';
import * as azure from './azure-errors.js';
import { answerFor, countPromptTokens, cutAnswer, type ChatMessage } from './completion.js';
import { namedFrame, type OperationContext, type Reply } from './reply.js';
import { isRefusal, tokenLimit, type Checked, type JsonObject } from './request-body.js';

/** OpenAI refuses a smaller `max_output_tokens`. */
export const MIN_MAX_OUTPUT_TOKENS = 16;

const INPUT_ROLES = new Set(['user', 'assistant', 'system', 'developer']);

function newId(prefix: string): string {
  // Real ids are the prefix, an underscore and 50 hex digits.
  return `${prefix}_${randomBytes(25).toString('hex')}`;
}

function parseInput(fields: JsonObject): Checked<{ messages: ChatMessage[] }> {
  const messages: ChatMessage[] = [];
  if (fields.instructions !== undefined && fields.instructions !== null) {
    if (typeof fields.instructions !== 'string') {
      return { error: azure.invalidRequest("Invalid type for 'instructions': expected a string.", 'instructions', 'invalid_type') };
    }
    messages.push({ role: 'developer', content: fields.instructions });
  }
  const input = fields.input;
  if (input === undefined || input === null) return { error: azure.invalidRequest("Missing required parameter: 'input'.", 'input') };
  if (typeof input === 'string') return { messages: [...messages, { role: 'user', content: input }] };
  if (!Array.isArray(input) || input.length === 0) {
    return { error: azure.invalidRequest("Invalid type for 'input': expected a string or a non-empty array of input items.", 'input', 'invalid_type') };
  }
  for (const [index, item] of (input as unknown[]).entries()) {
    const entry = typeof item === 'object' && item !== null ? (item as { type?: unknown; role?: unknown; content?: unknown }) : undefined;
    const role = entry?.role;
    if (!entry || (entry.type !== undefined && entry.type !== 'message') || typeof role !== 'string' || !INPUT_ROLES.has(role)) {
      return { error: azure.invalidRequest(`Invalid value for 'input[${index}]': expected a message with role user, assistant, system or developer.`, `input[${index}]`, 'invalid_value') };
    }
    if (typeof entry.content !== 'string' && !Array.isArray(entry.content)) {
      return { error: azure.invalidRequest(`Invalid type for 'input[${index}].content': expected a string or an array of content parts.`, `input[${index}].content`, 'invalid_type') };
    }
    messages.push({ role, content: entry.content });
  }
  return { messages };
}

export function answerResponses(fields: JsonObject, context: OperationContext): Checked<Reply> {
  const parsed = parseInput(fields);
  if (isRefusal(parsed)) return parsed;
  if (fields.stream !== undefined && fields.stream !== null && typeof fields.stream !== 'boolean') {
    return { error: azure.invalidRequest("Invalid type for 'stream': expected a boolean.", 'stream', 'invalid_type') };
  }
  const limit = tokenLimit(fields.max_output_tokens, 'max_output_tokens', MIN_MAX_OUTPUT_TOKENS);
  if (isRefusal(limit)) return limit;

  const { pieces, finishReason } = cutAnswer(answerFor(parsed.messages, context.deployment), limit.limit);
  const inputTokens = countPromptTokens(parsed.messages);
  const complete = finishReason === 'stop';
  const text = pieces.join('');
  const responseId = newId('resp');
  const itemId = newId('msg');
  const createdAt = Math.floor(context.nowMs / 1000);
  const status = complete ? 'completed' : 'incomplete';
  const part = (partText: string): Record<string, unknown> => ({ type: 'output_text', annotations: [], text: partText });
  const item = (itemStatus: string, content: unknown[]): Record<string, unknown> => ({
    id: itemId,
    type: 'message',
    role: 'assistant',
    status: itemStatus,
    content,
  });
  const response = (responseStatus: string, output: unknown[], withUsage: boolean): Record<string, unknown> => ({
    id: responseId,
    object: 'response',
    created_at: createdAt,
    status: responseStatus,
    error: null,
    incomplete_details: responseStatus === 'incomplete' ? { reason: 'max_output_tokens' } : null,
    instructions: typeof fields.instructions === 'string' ? fields.instructions : null,
    max_output_tokens: limit.limit ?? null,
    model: context.model,
    output,
    parallel_tool_calls: true,
    previous_response_id: null,
    reasoning: { effort: null, summary: null },
    store: true,
    temperature: 1,
    text: { format: { type: 'text' } },
    tool_choice: 'auto',
    tools: [],
    top_p: 1,
    truncation: 'disabled',
    usage: withUsage
      ? {
          input_tokens: inputTokens,
          input_tokens_details: { cached_tokens: 0 },
          output_tokens: pieces.length,
          output_tokens_details: { reasoning_tokens: 0 },
          total_tokens: inputTokens + pieces.length,
        }
      : null,
    user: null,
    metadata: {},
  });
  const finalResponse = response(status, [item(status, [part(text)])], true);
  if (fields.stream !== true) return { kind: 'json', body: finalResponse };

  let sequence = 0;
  const frames: string[] = [];
  const emit = (type: string, data: Record<string, unknown>): void => {
    frames.push(namedFrame(type, { type, sequence_number: sequence, ...data }));
    sequence += 1;
  };
  const at = { item_id: itemId, output_index: 0, content_index: 0 };
  emit('response.created', { response: response('in_progress', [], false) });
  emit('response.in_progress', { response: response('in_progress', [], false) });
  emit('response.output_item.added', { output_index: 0, item: item('in_progress', []) });
  emit('response.content_part.added', { ...at, part: part('') });
  for (const piece of pieces) emit('response.output_text.delta', { ...at, delta: piece });
  emit('response.output_text.done', { ...at, text });
  emit('response.content_part.done', { ...at, part: part(text) });
  emit('response.output_item.done', { output_index: 0, item: item(status, [part(text)]) });
  emit(complete ? 'response.completed' : 'response.incomplete', { response: finalResponse });
  return { kind: 'sse', frames };
}
