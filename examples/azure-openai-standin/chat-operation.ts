// Chat completions: the request checks (in the OpenAI backend's wording) and the reply, plain or
// streamed. The chat.completion objects themselves are in completion.ts.

import * as azure from './azure-errors.js';
import { chatCompletion, chatCompletionChunks, planCompletion, type ChatMessage } from './completion.js';
import { dataFrames, type OperationContext, type Reply } from './reply.js';
import { isRefusal, parseJsonObject, streamFields, tokenLimit, type Checked, type JsonObject } from './request-body.js';

const VALID_ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool', 'function']);

export interface ChatRequest {
  readonly messages: ChatMessage[];
  readonly stream: boolean;
  readonly includeUsage: boolean;
  readonly maxTokens: number | undefined;
}

/** Validates the fields the stand-in uses; messages mirror the OpenAI backend's wording. */
export function parseChatRequest(raw: Buffer): ChatRequest | { error: azure.AzureErrorAnswer } {
  const body = parseJsonObject(raw);
  return isRefusal(body) ? body : checkChatFields(body.fields);
}

export function checkChatFields(fields: JsonObject): Checked<ChatRequest> {
  if (fields.messages === undefined) {
    return { error: azure.invalidRequest("Missing required parameter: 'messages'.", 'messages') };
  }
  if (!Array.isArray(fields.messages) || fields.messages.length === 0) {
    return { error: azure.invalidRequest("Invalid 'messages': expected a non-empty array.", 'messages') };
  }
  const messages: ChatMessage[] = [];
  for (const [index, message] of (fields.messages as unknown[]).entries()) {
    const role = typeof message === 'object' && message !== null ? (message as { role?: unknown }).role : undefined;
    if (typeof role !== 'string' || !VALID_ROLES.has(role)) {
      return { error: azure.invalidRequest(`Invalid value for 'messages[${index}].role'.`, `messages[${index}].role`) };
    }
    messages.push({ role, content: (message as { content?: unknown }).content });
  }
  const stream = streamFields(fields);
  if (isRefusal(stream)) return stream;
  // Newer clients send max_completion_tokens; it wins over the older name, as on the service.
  const limitName = fields.max_completion_tokens !== undefined && fields.max_completion_tokens !== null ? 'max_completion_tokens' : 'max_tokens';
  const limit = tokenLimit(fields[limitName], limitName);
  if (isRefusal(limit)) return limit;
  return { messages, stream: stream.stream, includeUsage: stream.includeUsage, maxTokens: limit.limit };
}

export function answerChat(fields: JsonObject, context: OperationContext): Checked<Reply> {
  const request = checkChatFields(fields);
  if (isRefusal(request)) return request;
  const plan = planCompletion(request.messages, context.deployment, context.model, request.maxTokens, context.nowMs);
  return request.stream
    ? { kind: 'sse', frames: dataFrames(chatCompletionChunks(plan, request.includeUsage)) }
    : { kind: 'json', body: chatCompletion(plan) };
}
