// Every route the stand-in serves besides deployment-style chat, driven by the official `openai`
// SDK (v4): AzureOpenAI for the deployment and dated Responses routes, the plain OpenAI client
// for the v1 API, each plain and streamed. If the SDK accepts every answer, the stand-in is
// faithful enough to sit behind the outlet's gateway mode. Usage numbers are asserted exactly,
// since gateway tests compare their ledger against them.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AzureOpenAI, BadRequestError, NotFoundError, OpenAI } from 'openai';
import {
  DEFAULT_COMPLETION_MAX_TOKENS,
  OCKHAMS_RAZOR_ANSWER,
  answerPieces,
  countPromptTokens,
  countTextTokens,
  embeddingVector,
  startStandin,
  type RunningStandin,
} from '../../examples/azure-openai-standin/index.js';
import { QUESTION, TEST_API_KEY, rawRequest } from './fixtures.js';

const OCKHAM_PIECES = answerPieces(OCKHAMS_RAZOR_ANSWER).length;
const CHAT_PROMPT_TOKENS = countPromptTokens([{ role: 'user', content: QUESTION }]);

let standin: RunningStandin;

function azure(apiVersion = '2024-10-21', deployment?: string): AzureOpenAI {
  return new AzureOpenAI({
    baseURL: `${standin.url}/openai`,
    apiKey: TEST_API_KEY,
    apiVersion,
    maxRetries: 0,
    ...(deployment ? { deployment } : {}),
  });
}

function v1(): OpenAI {
  return new OpenAI({ baseURL: `${standin.url}/openai/v1`, apiKey: TEST_API_KEY, maxRetries: 0 });
}

beforeAll(async () => {
  standin = await startStandin({ apiKey: TEST_API_KEY });
});

afterAll(async () => {
  await standin?.close();
});

describe('embeddings', () => {
  it('decodes the SDK\'s default base64 answer into the same floats a float answer carries', async () => {
    const sdk = azure();
    const viaBase64 = await sdk.embeddings.create({ model: 'text-embedding-3-small', input: ['hello world', 'good bye'] });
    const viaFloat = await sdk.embeddings.create({ model: 'text-embedding-3-small', input: ['hello world', 'good bye'], encoding_format: 'float' });
    expect(viaBase64.object).toBe('list');
    expect(viaBase64.model).toBe('text-embedding-3-small');
    expect(viaBase64.data.map((d) => d.index)).toEqual([0, 1]);
    expect(viaBase64.data[0]?.embedding).toHaveLength(8);
    expect(viaBase64.data.map((d) => d.embedding)).toEqual(viaFloat.data.map((d) => d.embedding));
    expect(viaFloat.data[0]?.embedding).toEqual(embeddingVector('text:hello world', 8));
    expect(viaBase64.data[0]?.embedding).not.toEqual(viaBase64.data[1]?.embedding);
    expect(viaBase64.usage).toEqual({ prompt_tokens: 4, total_tokens: 4 });
    // The SDK really asked for base64 on the wire.
    const sent = standin.requests.filter((r) => r.path.includes('/embeddings')).map((r) => JSON.parse(r.bodyBytes.toString('utf8')) as { encoding_format: string });
    expect(sent.map((b) => b.encoding_format)).toEqual(['base64', 'float']);
  });

  it('takes token arrays and a dimensions count, on the v1 route too', async () => {
    const result = await v1().embeddings.create({ model: 'text-embedding-3-small', input: [[1, 2, 3], [4]], dimensions: 40, encoding_format: 'float' });
    expect(result.data.map((d) => d.embedding.length)).toEqual([40, 40]);
    expect(result.usage.prompt_tokens).toBe(4);
  });

  it('refuses embeddings on a chat model and chat on an embedding model with OperationNotSupported', async () => {
    const embedOnChat = await azure().embeddings.create({ model: 'gpt-4o-mini', input: 'x' }).catch((err: unknown) => err);
    expect(embedOnChat).toBeInstanceOf(BadRequestError);
    expect((embedOnChat as BadRequestError).code).toBe('OperationNotSupported');
    expect((embedOnChat as BadRequestError).message).toContain('The embeddings operation does not work with the specified model, gpt-4o-mini-2024-07-18.');
    const chatOnEmbed = await azure()
      .chat.completions.create({ model: 'text-embedding-3-small', messages: [{ role: 'user', content: 'x' }] })
      .catch((err: unknown) => err);
    expect((chatOnEmbed as BadRequestError).code).toBe('OperationNotSupported');
  });
});

describe('legacy completions', () => {
  it('answers a prompt with a text_completion cut to the default 16 tokens, usage exact', async () => {
    const result = await azure().completions.create({ model: 'gpt-4o-mini', prompt: QUESTION });
    expect(result.object).toBe('text_completion');
    expect(result.id).toMatch(/^cmpl-/);
    expect(result.choices[0]?.finish_reason).toBe('length');
    expect(OCKHAMS_RAZOR_ANSWER.startsWith(result.choices[0]?.text ?? 'x')).toBe(true);
    expect(result.usage).toEqual({ prompt_tokens: countTextTokens(QUESTION), completion_tokens: DEFAULT_COMPLETION_MAX_TOKENS, total_tokens: countTextTokens(QUESTION) + DEFAULT_COMPLETION_MAX_TOKENS });
  });

  it('streams the whole answer with usage null on every chunk and a last usage chunk', async () => {
    const stream = await azure().completions.create({
      model: 'gpt-4o-mini',
      prompt: QUESTION,
      max_tokens: 1000,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    const usages: unknown[] = [];
    let finish: string | null | undefined;
    for await (const chunk of stream) {
      usages.push(chunk.usage);
      text += chunk.choices[0]?.text ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(text).toBe(OCKHAMS_RAZOR_ANSWER);
    expect(finish).toBe('stop');
    // Azure's prompt-filter chunk has no usage field; the others null, the last the usage.
    expect(usages.slice(1, -1).every((u) => u === null)).toBe(true);
    expect(usages.at(-1)).toEqual({ prompt_tokens: 4, completion_tokens: OCKHAM_PIECES, total_tokens: 4 + OCKHAM_PIECES });
  });

  it('gives one choice per prompt on the v1 route', async () => {
    const result = await v1().completions.create({ model: 'gpt-4o-mini', prompt: ['one two', 'three'], max_tokens: 5 });
    expect(result.choices.map((c) => c.index)).toEqual([0, 1]);
    expect(result.usage).toEqual({ prompt_tokens: 3, completion_tokens: 10, total_tokens: 13 });
  });
});

describe('the v1 API', () => {
  it('serves chat with the deployment in the body, plain and streamed, with the same usage', async () => {
    const plain = await v1().chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: QUESTION }] });
    expect(plain.model).toBe('gpt-4o-2024-08-06');
    expect(plain.choices[0]?.message.content).toBe(OCKHAMS_RAZOR_ANSWER);
    expect(plain.usage).toMatchObject({ prompt_tokens: CHAT_PROMPT_TOKENS, completion_tokens: OCKHAM_PIECES });
    const stream = await v1().chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: QUESTION }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let last: unknown;
    for await (const chunk of stream) last = chunk;
    expect((last as { choices: unknown[]; usage: unknown }).choices).toEqual([]);
    expect((last as { usage: unknown }).usage).toEqual(plain.usage);
  });

  it('takes api-version preview or latest, and nothing else', async () => {
    for (const version of ['preview', 'latest']) {
      const res = await rawRequest(`${standin.url}/openai/v1/chat/completions?api-version=${version}`, {
        headers: { 'api-key': TEST_API_KEY },
        body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
      });
      expect(res.status, version).toBe(200);
    }
    const dated = await rawRequest(`${standin.url}/openai/v1/chat/completions?api-version=2024-10-21`, {
      headers: { 'api-key': TEST_API_KEY },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(dated.status).toBe(400);
    expect(JSON.parse(dated.body)).toEqual({ error: { code: 'BadRequest', message: 'API version not supported' } });
  });

  it('answers an unknown model with DeploymentNotFound and a missing one with a 400 naming model', async () => {
    const unknown = await v1().chat.completions.create({ model: 'gpt-5', messages: [{ role: 'user', content: 'x' }] }).catch((err: unknown) => err);
    expect(unknown).toBeInstanceOf(NotFoundError);
    expect((unknown as NotFoundError).code).toBe('DeploymentNotFound');
    const res = await rawRequest(`${standin.url}/openai/v1/chat/completions`, { headers: { 'api-key': TEST_API_KEY }, body: '{"messages":[]}' });
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body)).toMatchObject({ error: { type: 'invalid_request_error', param: 'model' } });
  });
});

describe('the Responses API', () => {
  it('answers responses.create on the v1 route with the documented shape and exact usage', async () => {
    const result = await v1().responses.create({ model: 'gpt-4o-mini', input: QUESTION });
    expect(result.id).toMatch(/^resp_[0-9a-f]{50}$/);
    expect(result).toMatchObject({ object: 'response', status: 'completed', model: 'gpt-4o-mini-2024-07-18' });
    expect(result.output).toHaveLength(1);
    expect(result.output[0]).toMatchObject({ type: 'message', role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: OCKHAMS_RAZOR_ANSWER, annotations: [] }] });
    expect(result.output_text).toBe(OCKHAMS_RAZOR_ANSWER);
    // The same question costs the same input tokens as in chat.
    expect(result.usage).toEqual({
      input_tokens: CHAT_PROMPT_TOKENS,
      input_tokens_details: { cached_tokens: 0 },
      output_tokens: OCKHAM_PIECES,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: CHAT_PROMPT_TOKENS + OCKHAM_PIECES,
    });
  });

  it('streams named events the SDK accumulates into the same response', async () => {
    const stream = await v1().responses.create({ model: 'gpt-4o-mini', input: [{ role: 'user', content: QUESTION }], stream: true });
    const types: string[] = [];
    let text = '';
    let completed: { usage?: unknown; output_text?: string } | undefined;
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === 'response.output_text.delta') text += event.delta;
      if (event.type === 'response.completed') completed = event.response;
    }
    expect(types.slice(0, 4)).toEqual(['response.created', 'response.in_progress', 'response.output_item.added', 'response.content_part.added']);
    expect(types.slice(-4)).toEqual(['response.output_text.done', 'response.content_part.done', 'response.output_item.done', 'response.completed']);
    expect(types.filter((t) => t === 'response.output_text.delta')).toHaveLength(OCKHAM_PIECES);
    expect(text).toBe(OCKHAMS_RAZOR_ANSWER);
    expect(completed?.usage).toMatchObject({ input_tokens: CHAT_PROMPT_TOKENS, output_tokens: OCKHAM_PIECES });

    const helper = v1().responses.stream({ model: 'gpt-4o-mini', input: QUESTION });
    const final = await helper.finalResponse();
    // (This SDK version's stream helper does not fill the output_text convenience field.)
    expect(final.output[0]).toMatchObject({ type: 'message', content: [{ type: 'output_text', text: OCKHAMS_RAZOR_ANSWER }] });
    expect(final.usage?.total_tokens).toBe(CHAT_PROMPT_TOKENS + OCKHAM_PIECES);
  });

  it('serves /openai/responses for 2025-03-01-preview and later, through AzureOpenAI', async () => {
    const result = await azure('2025-03-01-preview').responses.create({ model: 'gpt-4o', input: QUESTION, max_output_tokens: 16 });
    expect(result.status).toBe('incomplete');
    expect(result.incomplete_details).toEqual({ reason: 'max_output_tokens' });
    expect(result.usage?.output_tokens).toBe(16);
    expect(standin.requests.at(-1)?.path).toBe('/openai/responses?api-version=2025-03-01-preview');
    const tooOld = await azure('2024-10-21').responses.create({ model: 'gpt-4o', input: QUESTION }).catch((err: unknown) => err);
    expect(tooOld).toBeInstanceOf(BadRequestError);
    expect((tooOld as BadRequestError).message).toContain('Responses API is enabled only for api-version 2025-03-01-preview and later');
  });

  it('ends a cut-short stream with response.incomplete', async () => {
    const stream = await v1().responses.create({ model: 'gpt-4o-mini', input: QUESTION, max_output_tokens: 20, stream: true });
    const types: string[] = [];
    for await (const event of stream) types.push(event.type);
    expect(types.at(-1)).toBe('response.incomplete');
    expect(types.filter((t) => t === 'response.output_text.delta')).toHaveLength(20);
  });
});

describe('routes the stand-in does not serve', () => {
  it('answers 404 Resource not found', async () => {
    for (const path of [
      '/openai/deployments/gpt-4o-mini/responses?api-version=2025-03-01-preview',
      '/openai/v1/images/generations',
      '/openai/v1/models',
      '/openai/v2/chat/completions',
      '/v1/chat/completions',
    ]) {
      const res = await rawRequest(`${standin.url}${path}`, { headers: { 'api-key': TEST_API_KEY }, body: '{"model":"gpt-4o-mini"}' });
      expect(res.status, path).toBe(404);
      expect(JSON.parse(res.body), path).toEqual({ error: { code: '404', message: 'Resource not found' } });
    }
  });
});
