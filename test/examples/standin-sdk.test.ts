// The official `openai` SDK's AzureOpenAI client against the stand-in over real HTTPS, trusting
// only the throwaway test CA: if the SDK accepts every answer and maps every error to the class it
// maps Azure's to, the stand-in is faithful enough to play the private endpoint.

import https from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthenticationError, AzureOpenAI, BadRequestError, NotFoundError, RateLimitError } from 'openai';
import { startStandin, OCKHAMS_RAZOR_ANSWER, type RunningStandin } from '../../examples/azure-openai-standin/index.js';
import { QUESTION, TEST_API_KEY, chatUrl, makeTempCa, rawRequest, sseEvents, type TempCa } from './fixtures.js';

const API_VERSION = '2024-10-21';

let ca: TempCa;
let standin: RunningStandin;
let agent: https.Agent;

/** An SDK client that sends no credentials at all (the SDK itself insists on having one). */
class ClientWithoutCredentials extends AzureOpenAI {
  protected override async prepareOptions(): Promise<void> {
    // AzureOpenAI adds the api-key header here; adding nothing sends a request without one.
  }
}

function client(overrides: { apiKey?: string; deployment?: string; baseURL?: string } = {}): AzureOpenAI {
  return new AzureOpenAI({
    baseURL: overrides.baseURL ?? `${standin.url}/openai`,
    apiKey: overrides.apiKey ?? TEST_API_KEY,
    apiVersion: API_VERSION,
    deployment: overrides.deployment ?? 'gpt-4o-mini',
    maxRetries: 0,
    httpAgent: agent,
  });
}

beforeAll(async () => {
  ca = await makeTempCa();
  agent = new https.Agent({ ca: ca.caPem, keepAlive: false });
  standin = await startStandin({ apiKey: TEST_API_KEY, tls: { cert: ca.certPem, key: ca.keyPem } });
});

afterAll(async () => {
  agent?.destroy();
  await standin?.close();
  await ca?.cleanup();
});

describe('the official AzureOpenAI SDK against the stand-in over HTTPS', () => {
  it('gets the Ockham answer with usage, Azure filter results and an x-request-id', async () => {
    const { data, response } = await client()
      .chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: QUESTION }] })
      .withResponse();
    expect(data.object).toBe('chat.completion');
    expect(data.id).toMatch(/^chatcmpl-/);
    expect(data.model).toBe('gpt-4o-mini-2024-07-18');
    expect(data.system_fingerprint).toMatch(/^fp_/);
    expect(data.choices).toHaveLength(1);
    expect(data.choices[0]?.message).toMatchObject({ role: 'assistant', content: OCKHAMS_RAZOR_ANSWER });
    expect(data.choices[0]?.finish_reason).toBe('stop');
    expect(data.usage?.completion_tokens).toBeGreaterThan(0);
    expect(data.usage?.total_tokens).toBe((data.usage?.prompt_tokens ?? 0) + (data.usage?.completion_tokens ?? 0));
    const azureFields = data as unknown as { prompt_filter_results: unknown[]; choices: { content_filter_results: object }[] };
    expect(azureFields.prompt_filter_results[0]).toMatchObject({ prompt_index: 0 });
    expect(azureFields.choices[0]?.content_filter_results).toHaveProperty('hate');
    expect(response.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    expect(response.headers.get('apim-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    expect(response.headers.get('content-type')).toBe('application/json');
  });

  it('streams the same answer in several chunks, skipping Azure\'s empty first chunk, with usage last', async () => {
    const stream = await client().chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: QUESTION }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let contentChunks = 0;
    let emptyChoiceChunks = 0;
    let usage: { total_tokens: number } | null | undefined;
    for await (const chunk of stream) {
      if (chunk.choices.length === 0) emptyChoiceChunks += 1;
      if (chunk.usage) usage = chunk.usage;
      const piece = chunk.choices[0]?.delta?.content;
      if (piece) {
        text += piece;
        contentChunks += 1;
      }
    }
    expect(text).toBe(OCKHAMS_RAZOR_ANSWER);
    expect(contentChunks).toBeGreaterThan(5);
    expect(emptyChoiceChunks).toBe(2); // the prompt-filter chunk first, the usage chunk last
    expect(usage?.total_tokens).toBeGreaterThan(0);
  });

  it('ends the event stream with data: [DONE], first event carrying only prompt_filter_results', async () => {
    const res = await rawRequest(chatUrl(standin.url), {
      ca: ca.caPem,
      headers: { 'api-key': TEST_API_KEY },
      body: JSON.stringify({ messages: [{ role: 'user', content: QUESTION }], stream: true }),
    });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/event-stream/);
    expect(res.headers['x-request-id']).toBeTruthy();
    const events = sseEvents(res.body);
    expect(events.at(-1)).toBe('[DONE]');
    const first = JSON.parse(events[0] ?? '{}') as Record<string, unknown>;
    expect(first).toMatchObject({ choices: [], id: '', model: '', object: '', created: 0 });
    expect(first.prompt_filter_results).toBeInstanceOf(Array);
    const chunks = events.slice(1, -1).map((e) => JSON.parse(e) as { object: string; usage?: unknown });
    expect(chunks.every((c) => c.object === 'chat.completion.chunk')).toBe(true);
    // Without stream_options.include_usage no chunk carries a usage field.
    expect(chunks.some((c) => 'usage' in c)).toBe(false);
  });

  it('accepts the key as Authorization: Bearer too', async () => {
    const res = await rawRequest(chatUrl(standin.url), {
      ca: ca.caPem,
      headers: { authorization: `Bearer ${TEST_API_KEY}` },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'hello' }] }),
    });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ object: 'chat.completion' });
  });

  it('maps a wrong key to AuthenticationError with Azure\'s 401 body', async () => {
    const error = await client({ apiKey: 'wrong-key' })
      .chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: QUESTION }] })
      .catch((err: unknown) => err);
    expect(error).toBeInstanceOf(AuthenticationError);
    expect((error as AuthenticationError).status).toBe(401);
    expect((error as AuthenticationError).code).toBe('401');
    expect((error as AuthenticationError).message).toContain('Access denied due to invalid subscription key or wrong API endpoint.');
  });

  it('maps a request without any key to AuthenticationError', async () => {
    const noKey = new ClientWithoutCredentials({
      baseURL: `${standin.url}/openai`,
      // The right key: were it sent anyway, the request would succeed and the test would fail.
      apiKey: TEST_API_KEY,
      apiVersion: API_VERSION,
      maxRetries: 0,
      httpAgent: agent,
    });
    const error = await noKey.chat.completions
      .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: QUESTION }] })
      .catch((err: unknown) => err);
    expect(error).toBeInstanceOf(AuthenticationError);
    expect((error as AuthenticationError).code).toBe('401');
  });

  it('maps an unknown deployment to NotFoundError with code DeploymentNotFound', async () => {
    const error = await client({ deployment: 'no-such-deployment' })
      .chat.completions.create({ model: 'no-such-deployment', messages: [{ role: 'user', content: QUESTION }] })
      .catch((err: unknown) => err);
    expect(error).toBeInstanceOf(NotFoundError);
    expect((error as NotFoundError).code).toBe('DeploymentNotFound');
    expect((error as NotFoundError).message).toContain('The API deployment for this resource does not exist.');
  });

  it('answers a request without api-version with 404 Resource not found, as Azure does', async () => {
    const res = await rawRequest(chatUrl(standin.url, 'gpt-4o-mini', null), {
      ca: ca.caPem,
      headers: { 'api-key': TEST_API_KEY },
      body: JSON.stringify({ messages: [{ role: 'user', content: QUESTION }] }),
    });
    expect(res.status).toBe(404);
    expect(JSON.parse(res.body)).toEqual({ error: { code: '404', message: 'Resource not found' } });
    expect(res.headers['apim-request-id']).toBeTruthy();
  });

  it('answers an unknown api-version with 400 API version not supported (BadRequestError)', async () => {
    const sdk = new AzureOpenAI({
      baseURL: `${standin.url}/openai`,
      apiKey: TEST_API_KEY,
      apiVersion: '1999-01-01',
      maxRetries: 0,
      httpAgent: agent,
    });
    const error = await sdk.chat.completions
      .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: QUESTION }] })
      .catch((err: unknown) => err);
    expect(error).toBeInstanceOf(BadRequestError);
    expect((error as BadRequestError).code).toBe('BadRequest');
  });

  it('answers a body that is not JSON with 400 invalid_request_error', async () => {
    const res = await rawRequest(chatUrl(standin.url), { ca: ca.caPem, headers: { 'api-key': TEST_API_KEY }, body: '{"messages": [' });
    expect(res.status).toBe(400);
    const body = JSON.parse(res.body) as { error: { type: string; message: string; code: unknown } };
    expect(body.error.type).toBe('invalid_request_error');
    expect(body.error.message).toMatch(/^We could not parse the JSON body of your request/);
    expect(body.error.code).toBeNull();
  });

  it('maps a missing messages field to BadRequestError naming the parameter', async () => {
    const error = await client()
      .chat.completions.create({ model: 'gpt-4o-mini' } as unknown as Parameters<AzureOpenAI['chat']['completions']['create']>[0])
      .catch((err: unknown) => err);
    expect(error).toBeInstanceOf(BadRequestError);
    expect((error as BadRequestError).param).toBe('messages');
  });
});

describe('the stand-in with a rate limit', () => {
  it('answers 429 with retry-after past the limit, which the SDK maps to RateLimitError', async () => {
    const limited = await startStandin({
      apiKey: TEST_API_KEY,
      tls: { cert: ca.certPem, key: ca.keyPem },
      rateLimit: { requests: 1, windowMs: 60_000 },
    });
    try {
      const sdk = client({ baseURL: `${limited.url}/openai` });
      const ask = () => sdk.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: QUESTION }] });
      await expect(ask()).resolves.toMatchObject({ object: 'chat.completion' });
      const error = await ask().catch((err: unknown) => err);
      expect(error).toBeInstanceOf(RateLimitError);
      const rateError = error as RateLimitError;
      expect(rateError.code).toBe('429');
      expect(rateError.message).toContain('have exceeded call rate limit');
      const retryAfter = Number(rateError.headers?.['retry-after']);
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(60);
    } finally {
      await limited.close();
    }
  });
});
