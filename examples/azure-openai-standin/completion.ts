// What the stand-in "model" says, and the chat.completion / chat.completion.chunk objects that
// carry it, shaped as Azure OpenAI sends them (api-version 2024-10-21): Azure adds
// `prompt_filter_results` to the response and `content_filter_results` to each choice, and when
// streaming it first sends a chunk with empty `choices`, empty `id`/`model`/`object` and
// `created: 0` that carries only the prompt filter results.
//
// The answer is deterministic (same question, same words) so a test can compare a streamed answer
// with a non-streamed one. Token counts are a deterministic approximation: one streamed piece
// (a word with its leading space) is one completion token.

import { randomBytes } from 'node:crypto';

export const OCKHAMS_RAZOR_ANSWER =
  "Ockham's Razor is the principle of parsimony: among competing explanations that account for " +
  'the facts equally well, prefer the one that makes the fewest assumptions. It is named after ' +
  'the fourteenth-century English friar and logician William of Ockham, and is often summed up as ' +
  '"entities should not be multiplied beyond necessity". The razor is a rule of thumb, not a proof: ' +
  'the simpler explanation is not guaranteed to be true, but it is easier to test, and it should ' +
  'be preferred until the evidence demands something more complex.';

/** The fingerprint of the "backend configuration"; constant, as for one model deployment. */
export const SYSTEM_FINGERPRINT = 'fp_5d1b3a8c7e';

const MAX_ECHOED_QUESTION_CHARS = 200;

export interface ChatMessage {
  readonly role: string;
  readonly content: unknown;
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number; audio_tokens: number };
  completion_tokens_details: {
    reasoning_tokens: number;
    audio_tokens: number;
    accepted_prediction_tokens: number;
    rejected_prediction_tokens: number;
  };
}

/** Content-part types that carry text: chat's `text`, the Responses API's input and output text. */
const TEXT_PART_TYPES: ReadonlySet<unknown> = new Set(['text', 'input_text', 'output_text']);

/** The text of a message's content: a string, or the text parts of a content-part array. */
export function messageText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content
    .map((part: unknown) =>
      typeof part === 'object' && part !== null && TEXT_PART_TYPES.has((part as { type?: unknown }).type)
        ? String((part as { text?: unknown }).text ?? '')
        : '',
    )
    .join(' ');
}

/** The answer the stand-in gives to the last user message. */
export function answerFor(messages: readonly ChatMessage[], deployment: string): string {
  const lastUser = [...messages].reverse().find((m) => m.role === 'user');
  const question = lastUser ? messageText(lastUser.content).trim() : '';
  const normalized = question.toLowerCase().replace(/[\u2018\u2019]/g, "'");
  if (/\b(ockham|occam)'?s?\b/.test(normalized) && normalized.includes('razor')) {
    return OCKHAMS_RAZOR_ANSWER;
  }
  const echoed =
    question.length > MAX_ECHOED_QUESTION_CHARS ? `${question.slice(0, MAX_ECHOED_QUESTION_CHARS)}…` : question;
  return (
    `This is the Azure OpenAI stand-in, answering on deployment "${deployment}". ` +
    `You asked: "${echoed.replace(/\s+/g, ' ')}". ` +
    'The stand-in gives this same answer every time, so tests can compare what they receive.'
  );
}

/** The answer cut into the pieces a stream sends: each word with its leading whitespace. */
export function answerPieces(answer: string): string[] {
  return answer.match(/\s*\S+/g) ?? [];
}

/** Tokens of a bare text (a legacy prompt, an embeddings input): one per word, as pieces count. */
export function countTextTokens(text: string): number {
  return answerPieces(text).length;
}

/**
 * Tokens of a conversation; chat and the Responses API count the same messages the same way, so
 * a test can predict `prompt_tokens` / `input_tokens` exactly.
 */
export function countPromptTokens(messages: readonly ChatMessage[]): number {
  // ~4 tokens of framing per message plus 3 to prime the reply, as OpenAI's cookbook counts.
  let tokens = 3;
  for (const message of messages) {
    tokens += 4 + answerPieces(messageText(message.content)).length;
  }
  return tokens;
}

export function makeUsage(promptTokens: number, completionTokens: number): Usage {
  return {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
    prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: 0,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  };
}

export function newCompletionId(prefix = 'chatcmpl'): string {
  // Real ids are "chatcmpl-" (legacy: "cmpl-") followed by 29 base62-ish characters.
  return `${prefix}-${randomBytes(22).toString('base64url').replace(/[-_]/g, 'x').slice(0, 29)}`;
}

function safe(): { filtered: false; severity: 'safe' } {
  return { filtered: false, severity: 'safe' };
}

/** One entry per prompt (legacy completions take several; chat has one). */
export function promptFilterResults(prompts = 1): unknown[] {
  return Array.from({ length: prompts }, (_unused, index) => ({
    prompt_index: index,
    content_filter_results: {
      hate: safe(),
      jailbreak: { filtered: false, detected: false },
      self_harm: safe(),
      sexual: safe(),
      violence: safe(),
    },
  }));
}

export function choiceFilterResults(): Record<string, unknown> {
  return {
    hate: safe(),
    protected_material_code: { filtered: false, detected: false },
    protected_material_text: { filtered: false, detected: false },
    self_harm: safe(),
    sexual: safe(),
    violence: safe(),
  };
}

export interface CompletionPlan {
  readonly id: string;
  readonly created: number;
  readonly model: string;
  /** The pieces actually sent (already cut to max_tokens). */
  readonly pieces: readonly string[];
  readonly finishReason: 'stop' | 'length';
  readonly usage: Usage;
}

/** Decides the whole reply up front, so streamed and non-streamed replies carry the same words. */
export function planCompletion(
  messages: readonly ChatMessage[],
  deployment: string,
  model: string,
  maxTokens: number | undefined,
  nowMs: number,
): CompletionPlan {
  const { pieces, finishReason } = cutAnswer(answerFor(messages, deployment), maxTokens);
  return {
    id: newCompletionId(),
    created: Math.floor(nowMs / 1000),
    model,
    pieces,
    finishReason,
    usage: makeUsage(countPromptTokens(messages), pieces.length),
  };
}

/** The answer's pieces, cut to `maxTokens` (one piece is one completion token). */
export function cutAnswer(answer: string, maxTokens: number | undefined): { pieces: string[]; finishReason: 'stop' | 'length' } {
  const all = answerPieces(answer);
  const cut = maxTokens !== undefined && maxTokens < all.length;
  return { pieces: cut ? all.slice(0, maxTokens) : all, finishReason: cut ? 'length' : 'stop' };
}

export function chatCompletion(plan: CompletionPlan): Record<string, unknown> {
  return {
    choices: [
      {
        content_filter_results: choiceFilterResults(),
        finish_reason: plan.finishReason,
        index: 0,
        logprobs: null,
        message: { content: plan.pieces.join(''), refusal: null, role: 'assistant' },
      },
    ],
    created: plan.created,
    id: plan.id,
    model: plan.model,
    object: 'chat.completion',
    prompt_filter_results: promptFilterResults(),
    system_fingerprint: SYSTEM_FINGERPRINT,
    usage: plan.usage,
  };
}

/**
 * Every chunk of a streamed reply, in order, without the final `[DONE]`. With
 * `includeUsage`, every chunk carries `usage: null` and one last chunk with empty `choices`
 * carries the usage, as the OpenAI API documents for `stream_options.include_usage`.
 */
export function chatCompletionChunks(plan: CompletionPlan, includeUsage: boolean): Record<string, unknown>[] {
  const usageField = includeUsage ? { usage: null } : {};
  const chunk = (choice: Record<string, unknown>): Record<string, unknown> => ({
    choices: [{ ...choice, index: 0, logprobs: null }],
    created: plan.created,
    id: plan.id,
    model: plan.model,
    object: 'chat.completion.chunk',
    system_fingerprint: SYSTEM_FINGERPRINT,
    ...usageField,
  });
  const chunks: Record<string, unknown>[] = [
    // Azure's first event: prompt filter results only.
    { choices: [], created: 0, id: '', model: '', object: '', prompt_filter_results: promptFilterResults() },
    chunk({ content_filter_results: {}, delta: { content: '', refusal: null, role: 'assistant' }, finish_reason: null }),
  ];
  for (const piece of plan.pieces) {
    chunks.push(chunk({ content_filter_results: choiceFilterResults(), delta: { content: piece }, finish_reason: null }));
  }
  chunks.push(chunk({ content_filter_results: {}, delta: {}, finish_reason: plan.finishReason }));
  if (includeUsage) {
    chunks.push({
      choices: [],
      created: plan.created,
      id: plan.id,
      model: plan.model,
      object: 'chat.completion.chunk',
      system_fingerprint: SYSTEM_FINGERPRINT,
      usage: plan.usage,
    });
  }
  return chunks;
}
