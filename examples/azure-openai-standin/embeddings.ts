// Embeddings (`POST …/embeddings`): `{object: "list", data: [{object: "embedding", index,
// embedding}], model, usage: {prompt_tokens, total_tokens}}`, as OpenAI and Azure send them.
//
// Vectors are small (8 dimensions unless `dimensions` asks otherwise) and derived from a hash of
// the input alone, so the same text gets the same vector from every deployment and region (a
// failover test can compare answers). Each component is (byte - 128) / 128: exactly representable
// as float32, so a float answer and a base64 answer decode to identical numbers.
//
// `encoding_format: "base64"` sends each vector as the base64 of its little-endian float32 bytes,
// as OpenAI does; the official `openai` SDK (v4.x) asks for base64 unless told otherwise and
// decodes it itself.

import { createHash } from 'node:crypto';
import * as azure from './azure-errors.js';
import { countTextTokens } from './completion.js';
import type { OperationContext, Reply } from './reply.js';
import { isRefusal, type Checked, type JsonObject } from './request-body.js';

export const DEFAULT_EMBEDDING_DIMENSIONS = 8;
/** The largest vector any OpenAI embedding model gives (text-embedding-3-large). */
export const MAX_EMBEDDING_DIMENSIONS = 3072;
/** Azure's limit on inputs per request. */
export const MAX_EMBEDDING_INPUTS = 2048;

// OpenAI's own answer to an input it cannot use (an empty string, a wrong type).
const INVALID_INPUT = "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.";

interface EmbeddingInput {
  /** What the vector is derived from: the text, or the token ids. */
  readonly key: string;
  readonly tokens: number;
}

function isTokenArray(value: unknown): value is number[] {
  return Array.isArray(value) && value.length > 0 && value.every((t) => Number.isInteger(t) && (t as number) >= 0);
}

function asInput(item: unknown): EmbeddingInput | undefined {
  if (typeof item === 'string') return item.length > 0 ? { key: `text:${item}`, tokens: countTextTokens(item) } : undefined;
  if (isTokenArray(item)) return { key: `tokens:${item.join(',')}`, tokens: item.length };
  return undefined;
}

function parseInputs(value: unknown): Checked<{ inputs: EmbeddingInput[] }> {
  if (value === undefined || value === null) return { error: azure.invalidRequest("Missing required parameter: 'input'.", 'input') };
  const single = asInput(value);
  if (single) return { inputs: [single] };
  if (!Array.isArray(value) || value.length === 0) return { error: azure.invalidRequest(INVALID_INPUT) };
  if (value.length > MAX_EMBEDDING_INPUTS) {
    return { error: azure.invalidRequest(`Too many inputs. The max number of inputs is ${MAX_EMBEDDING_INPUTS}.`, 'input') };
  }
  const inputs: EmbeddingInput[] = [];
  for (const item of value) {
    const input = asInput(item);
    if (!input) return { error: azure.invalidRequest(INVALID_INPUT) };
    inputs.push(input);
  }
  return { inputs };
}

/** The deterministic vector for `key`: `dimensions` components in [-1, 1). */
export function embeddingVector(key: string, dimensions: number): number[] {
  const bytes: number[] = [];
  for (let block = 0; bytes.length < dimensions; block += 1) {
    bytes.push(...createHash('sha256').update(`${block}\0${key}`, 'utf8').digest());
  }
  return bytes.slice(0, dimensions).map((byte) => (byte - 128) / 128);
}

/** The vector as OpenAI's base64 encoding: little-endian float32 bytes. */
export function toBase64Float32(vector: readonly number[]): string {
  const bytes = Buffer.alloc(vector.length * 4);
  vector.forEach((value, index) => bytes.writeFloatLE(value, index * 4));
  return bytes.toString('base64');
}

export function answerEmbeddings(fields: JsonObject, context: OperationContext): Checked<Reply> {
  const parsed = parseInputs(fields.input);
  if (isRefusal(parsed)) return parsed;
  const format = fields.encoding_format ?? 'float';
  if (format !== 'float' && format !== 'base64') {
    return { error: azure.invalidRequest("Invalid value for 'encoding_format': expected one of 'float' or 'base64'.", 'encoding_format', 'invalid_value') };
  }
  const dimensions = fields.dimensions ?? DEFAULT_EMBEDDING_DIMENSIONS;
  if (typeof dimensions !== 'number' || !Number.isInteger(dimensions) || dimensions < 1 || dimensions > MAX_EMBEDDING_DIMENSIONS) {
    return { error: azure.invalidRequest(`Invalid 'dimensions': expected an integer from 1 to ${MAX_EMBEDDING_DIMENSIONS}.`, 'dimensions') };
  }
  const tokens = parsed.inputs.reduce((sum, input) => sum + input.tokens, 0);
  return {
    kind: 'json',
    body: {
      data: parsed.inputs.map((input, index) => {
        const vector = embeddingVector(input.key, dimensions);
        return { embedding: format === 'base64' ? toBase64Float32(vector) : vector, index, object: 'embedding' };
      }),
      model: context.model,
      object: 'list',
      usage: { prompt_tokens: tokens, total_tokens: tokens },
    },
  };
}
