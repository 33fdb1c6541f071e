// Reading a request body with a size limit, and the checks every operation shares (a JSON object,
// `stream`, `stream_options`, a token limit), answered in the OpenAI backend's wording that Azure
// passes through.

import type { IncomingMessage } from 'node:http';
import * as azure from './azure-errors.js';

export type JsonObject = Readonly<Record<string, unknown>>;
export type Checked<T> = T | { readonly error: azure.AzureErrorAnswer };

export function isRefusal<T>(value: Checked<T>): value is { readonly error: azure.AzureErrorAnswer } {
  return typeof value === 'object' && value !== null && 'error' in value;
}

export function readBody(req: IncomingMessage, limit: number): Promise<Buffer | 'too-large' | 'aborted'> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();
    return Promise.resolve('too-large');
  }
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    let size = 0;
    let settled = false;
    const settle = (value: Buffer | 'too-large' | 'aborted'): void => {
      if (!settled) {
        settled = true;
        resolve(value);
      }
    };
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.pause();
        settle('too-large');
        return;
      }
      parts.push(chunk);
    });
    req.on('end', () => settle(Buffer.concat(parts, size)));
    req.on('error', () => settle('aborted'));
    req.on('close', () => settle('aborted'));
  });
}

export function parseJsonObject(raw: Buffer): Checked<{ fields: JsonObject }> {
  let body: unknown;
  try {
    body = JSON.parse(raw.toString('utf8'));
  } catch {
    return { error: azure.unparsableJsonBody() };
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return { error: azure.invalidRequest('Invalid type for request body: expected an object.') };
  }
  return { fields: body as JsonObject };
}

/** The body's `model`, which names the deployment on the v1 and Responses routes. */
export function modelField(fields: JsonObject): Checked<{ model: string }> {
  if (fields.model === undefined || fields.model === null) {
    return { error: azure.invalidRequest("Missing required parameter: 'model'.", 'model') };
  }
  if (typeof fields.model !== 'string' || fields.model.length === 0) {
    return { error: azure.invalidRequest("Invalid type for 'model': expected a non-empty string.", 'model') };
  }
  return { model: fields.model };
}

export interface StreamChoice {
  readonly stream: boolean;
  /** `stream_options.include_usage`: a last chunk with empty choices carries the usage. */
  readonly includeUsage: boolean;
}

/** `stream` and `stream_options` as chat and legacy completions take them. */
export function streamFields(fields: JsonObject): Checked<StreamChoice> {
  if (fields.stream !== undefined && fields.stream !== null && typeof fields.stream !== 'boolean') {
    return { error: azure.invalidRequest("Invalid type for 'stream': expected a boolean.", 'stream') };
  }
  const stream = fields.stream === true;
  const streamOptions = fields.stream_options;
  if (streamOptions !== undefined && streamOptions !== null && !stream) {
    return { error: azure.invalidRequest("The 'stream_options' parameter is only allowed when 'stream' is enabled.", 'stream_options') };
  }
  if (streamOptions !== undefined && streamOptions !== null && (typeof streamOptions !== 'object' || Array.isArray(streamOptions))) {
    return { error: azure.invalidRequest("Invalid type for 'stream_options': expected an object.", 'stream_options') };
  }
  const includeUsage = typeof streamOptions === 'object' && streamOptions !== null && (streamOptions as { include_usage?: unknown }).include_usage === true;
  return { stream, includeUsage };
}

/** An optional integer limit of at least `min`; `name` is the field quoted in the refusal. */
export function tokenLimit(value: unknown, name: string, min = 1): Checked<{ limit: number | undefined }> {
  if (value === undefined || value === null) return { limit: undefined };
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    return { error: azure.invalidRequest(`Invalid type for '${name}': expected an integer.`, name, 'invalid_type') };
  }
  if (value < min) {
    return {
      error: azure.invalidRequest(
        `Invalid '${name}': integer below minimum value. Expected a value >= ${min}, but got ${value} instead.`,
        name,
        'integer_below_min_value',
      ),
    };
  }
  return { limit: value };
}
