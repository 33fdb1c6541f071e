import { GATEWAY_USAGE_PARSE_BYTES } from '../../protocol/limits.js';

/** The end of a large answer kept to find its usage in (answer-relay.ts keeps this much). */
export const USAGE_TAIL_BYTES = 64 * 1024;

// Token usage as the backend reports it. Chat, completions and embeddings say
// `usage: {prompt_tokens, completion_tokens?, total_tokens}`; the responses API says
// `usage: {input_tokens, output_tokens, total_tokens}`. Both become one shape.

export interface TokenUsage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
}

function count(value: unknown): number | undefined {
  return Number.isSafeInteger(value) && (value as number) >= 0 ? (value as number) : undefined;
}

/** Normalises a `usage` object; undefined when it carries no token counts. */
export function normaliseUsage(usage: unknown): TokenUsage | undefined {
  if (typeof usage !== 'object' || usage === null) return undefined;
  const u = usage as Record<string, unknown>;
  const prompt = count(u.prompt_tokens) ?? count(u.input_tokens);
  const completion = count(u.completion_tokens) ?? count(u.output_tokens) ?? 0;
  const total = count(u.total_tokens) ?? (prompt !== undefined ? prompt + completion : undefined);
  if (prompt === undefined || total === undefined) return undefined;
  return { promptTokens: prompt, completionTokens: completion, totalTokens: total };
}

/** The usage and model of a whole (non-streamed) JSON answer. */
export function usageOfAnswer(body: Buffer): { usage: TokenUsage | undefined; model: string | null } {
  if (body.length <= GATEWAY_USAGE_PARSE_BYTES) {
    try {
      const json = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
      // The responses API nests nothing here: its non-streamed answer is the response object itself.
      return { usage: normaliseUsage(json.usage), model: typeof json.model === 'string' ? json.model : null };
    } catch {
      return { usage: undefined, model: null };
    }
  }
  return { usage: usageInTail(body), model: null };
}

/**
 * A very large answer (thousands of embeddings) is not parsed whole: OpenAI and Azure put `usage`
 * at the end (the responses API follows it with `user` and `metadata`, a few KB at most), so the
 * object after the last `"usage":` in the tail (USAGE_TAIL_BYTES) is read.
 */
export function usageInTail(body: Buffer): TokenUsage | undefined {
  const tail = body.subarray(Math.max(0, body.length - USAGE_TAIL_BYTES)).toString('utf8');
  const at = tail.lastIndexOf('"usage"');
  if (at === -1) return undefined;
  // Only `"usage": {`: after `"usage": null` the next object (whatever it is) used to be read as the usage.
  const key = /^"usage"\s*:\s*\{/.exec(tail.slice(at));
  if (key === null) return undefined;
  const open = at + key[0].length - 1;
  let depth = 0;
  for (let i = open; i < tail.length; i++) {
    if (tail[i] === '{') depth++;
    else if (tail[i] === '}' && --depth === 0) {
      try {
        return normaliseUsage(JSON.parse(tail.slice(open, i + 1)));
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}
