// What the stand-in offers the gateway-mode tests that put the outlet in front of it: Entra
// bearer tokens and keyless resources, the record of what reached the backend, an outage switch
// for failover, per-status counters, the region header, and the deliberate faults on every
// streamed route. Driven by the official `openai` SDK where it can send the request.

import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APIError, AuthenticationError, AzureOpenAI, InternalServerError, OpenAI, PermissionDeniedError, RateLimitError } from 'openai';
import {
  ABORT_AFTER_BYTES_HEADER,
  CHUNK_DELAY_HEADER,
  DEFAULT_REGION,
  FIRST_TOKEN_DELAY_HEADER,
  MAX_RECORDED_REQUESTS,
  OCKHAMS_RAZOR_ANSWER,
  startStandin,
  type RunningStandin,
} from '../../examples/azure-openai-standin/index.js';
import { ASK, QUESTION, TEST_API_KEY, chatUrl, rawRequest } from './fixtures.js';

const ENTRA_TOKEN = 'eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.standin-managed-identity.sig';

let standin: RunningStandin;

function azure(options: { url?: string; apiKey?: string; token?: string; apiVersion?: string } = {}): AzureOpenAI {
  return new AzureOpenAI({
    baseURL: `${options.url ?? standin.url}/openai`,
    apiVersion: options.apiVersion ?? '2024-10-21',
    maxRetries: 0,
    ...(options.token !== undefined ? { azureADTokenProvider: async () => options.token ?? '' } : { apiKey: options.apiKey ?? TEST_API_KEY }),
  });
}

const ask = (sdk: AzureOpenAI) => sdk.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: QUESTION }] });

beforeAll(async () => {
  standin = await startStandin({ apiKey: TEST_API_KEY, acceptBearer: (token) => token === ENTRA_TOKEN });
});

afterAll(async () => {
  await standin?.close();
});

describe('authentication', () => {
  it('accepts an Entra token that acceptBearer accepts, on deployment and v1 routes', async () => {
    await expect(ask(azure({ token: ENTRA_TOKEN }))).resolves.toMatchObject({ object: 'chat.completion' });
    const v1 = new OpenAI({ baseURL: `${standin.url}/openai/v1`, apiKey: ENTRA_TOKEN, maxRetries: 0 });
    await expect(v1.embeddings.create({ model: 'text-embedding-3-small', input: 'x' })).resolves.toMatchObject({ object: 'list' });
    expect(standin.requests.at(-1)?.headers.authorization).toBe(`Bearer ${ENTRA_TOKEN}`);
  });

  it('answers a token acceptBearer refuses with 401 and the Entra message', async () => {
    const error = await ask(azure({ token: 'expired-token' })).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(AuthenticationError);
    expect((error as AuthenticationError).message).toContain('Access token is missing, invalid, audience is incorrect');
  });

  it('without an apiKey, refuses api-key auth with 403 AuthenticationTypeDisabled, even a throwing check is a 401', async () => {
    const keyless = await startStandin({
      acceptBearer: (token) => {
        if (token === 'boom') throw new Error('checker bug');
        return token === ENTRA_TOKEN;
      },
    });
    try {
      const byKey = await ask(azure({ url: keyless.url, apiKey: TEST_API_KEY })).catch((err: unknown) => err);
      expect(byKey).toBeInstanceOf(PermissionDeniedError);
      expect((byKey as PermissionDeniedError).error).toEqual({ code: 'AuthenticationTypeDisabled', message: 'Key based authentication is disabled for this resource.' });
      await expect(ask(azure({ url: keyless.url, token: ENTRA_TOKEN }))).resolves.toMatchObject({ object: 'chat.completion' });
      expect(await ask(azure({ url: keyless.url, token: 'boom' })).catch((err: unknown) => err)).toBeInstanceOf(AuthenticationError);
    } finally {
      await keyless.close();
    }
    await expect(startStandin({})).rejects.toThrow(/apiKey, an acceptBearer/);
  });
});

describe('recording', () => {
  it('keeps each request as received: method, path with query, lowercased headers, body, time', async () => {
    const before = Date.now();
    await ask(azure());
    const last = standin.requests.at(-1);
    expect(last?.method).toBe('POST');
    expect(last?.path).toBe('/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21');
    expect(last?.headers['api-key']).toBe(TEST_API_KEY);
    expect(last?.headers['content-type']).toBe('application/json');
    expect(JSON.parse(last?.bodyBytes.toString('utf8') ?? '{}')).toMatchObject({ messages: [{ role: 'user', content: QUESTION }] });
    expect(last?.at).toBeGreaterThanOrEqual(before);
    expect(last?.at).toBeLessThanOrEqual(Date.now());
  });

  it('keeps repeated headers as arrays, and refused requests too', async () => {
    await new Promise<void>((resolve, reject) => {
      const req = http.request(`${standin.url}/nowhere?x=1`, { method: 'GET', headers: { 'X-Forwarded-For': ['10.0.0.1', '10.0.0.2'] } }, (res) => {
        res.resume().on('end', resolve);
      });
      req.on('error', reject).end();
    });
    const last = standin.requests.at(-1);
    expect(last).toMatchObject({ method: 'GET', path: '/nowhere?x=1', headers: { 'x-forwarded-for': ['10.0.0.1', '10.0.0.2'] } });
    expect(last?.bodyBytes.length).toBe(0);
  });

  it(`keeps only the last ${MAX_RECORDED_REQUESTS}`, async () => {
    const fresh = await startStandin({ apiKey: TEST_API_KEY });
    try {
      const total = MAX_RECORDED_REQUESTS + 5;
      for (let start = 0; start < total; start += 50) {
        await Promise.all(
          Array.from({ length: Math.min(50, total - start) }, (_unused, i) =>
            rawRequest(`${fresh.url}/n/${start + i}`, { method: 'GET' }),
          ),
        );
      }
      const paths = new Set(fresh.requests.map((r) => r.path));
      expect(paths.size).toBe(MAX_RECORDED_REQUESTS);
      expect(fresh.answered).toEqual({ 404: total });
    } finally {
      await fresh.close();
    }
  });
});

describe('outages, counters and region', () => {
  it('answers 429 with retry-after rounded up and retry-after-ms, then 5xx, then recovers', async () => {
    const backend = await startStandin({ apiKey: TEST_API_KEY, region: 'Sweden Central' });
    try {
      const sdk = azure({ url: backend.url });
      await ask(sdk);
      backend.setOutage({ kind: 'rate-limited', retryAfterMs: 1500 });
      const limited = await ask(sdk).catch((err: unknown) => err);
      expect(limited).toBeInstanceOf(RateLimitError);
      const rate = limited as RateLimitError;
      expect(rate.headers?.['retry-after']).toBe('2');
      expect(rate.headers?.['retry-after-ms']).toBe('1500');
      expect(rate.headers?.['x-ms-region']).toBe('Sweden Central');
      expect(rate.code).toBe('429');
      expect(rate.message).toContain('Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21');
      expect(rate.message).toContain('Please retry after 2 seconds.');
      const embedLimited = await sdk.embeddings.create({ model: 'text-embedding-3-small', input: 'x' }).catch((err: unknown) => err);
      expect((embedLimited as RateLimitError).message).toContain('Embeddings_Create');

      backend.setOutage({ kind: 'failing', status: 500 });
      const failing = await ask(sdk).catch((err: unknown) => err);
      expect(failing).toBeInstanceOf(InternalServerError);
      const failure = failing as InternalServerError;
      expect(failure.status).toBe(500);
      expect(failure.type).toBe('server_error');
      expect(failure.message).toContain('The server had an error while processing your request. Sorry about that!');
      expect(failure.message).toContain(failure.headers?.['x-request-id'] ?? 'no request id');
      for (const status of [502, 503] as const) {
        backend.setOutage({ kind: 'failing', status });
        const err = await ask(sdk).catch((e: unknown) => e);
        expect((err as APIError).status).toBe(status);
      }

      // A bad key and an unknown path are still answered as such during an outage.
      expect((await ask(azure({ url: backend.url, apiKey: 'wrong' })).catch((e: unknown) => e)) as APIError).toMatchObject({ status: 401 });
      expect((await rawRequest(`${backend.url}/elsewhere`, { body: ASK })).status).toBe(404);

      backend.setOutage({ kind: 'none' });
      const { response } = await ask(sdk).withResponse();
      expect(response.headers.get('x-ms-region')).toBe('Sweden Central');
      expect(backend.answered).toEqual({ 200: 2, 401: 1, 404: 1, 429: 2, 500: 1, 502: 1, 503: 1 });
      expect(() => backend.setOutage({ kind: 'failing', status: 504 as 503 })).toThrow(RangeError);
      expect(() => backend.setOutage({ kind: 'rate-limited', retryAfterMs: -1 })).toThrow(RangeError);
    } finally {
      await backend.close();
    }
  });

  it('says the default region when given none', async () => {
    const res = await rawRequest(chatUrl(standin.url), { headers: { 'api-key': TEST_API_KEY }, body: ASK });
    expect(res.headers['x-ms-region']).toBe(DEFAULT_REGION);
  });
});

describe('deliberate faults on every streamed route', () => {
  /** 'completed', or what the reading threw. */
  const outcomeOf = (read: () => Promise<void>): Promise<unknown> => read().then(() => 'completed', (err: unknown) => err);

  it('cuts a Responses stream and a completions stream mid-answer so the SDK fails', async () => {
    const cut = { headers: { [ABORT_AFTER_BYTES_HEADER]: '1500' } };
    const v1 = new OpenAI({ baseURL: `${standin.url}/openai/v1`, apiKey: TEST_API_KEY, maxRetries: 0 });
    let responsesText = '';
    const responses = await outcomeOf(async () => {
      const stream = await v1.responses.create({ model: 'gpt-4o-mini', input: QUESTION, stream: true }, cut);
      for await (const event of stream) if (event.type === 'response.output_text.delta') responsesText += event.delta;
    });
    expect(responses).toBeInstanceOf(Error);
    expect(OCKHAMS_RAZOR_ANSWER.startsWith(responsesText)).toBe(true);
    expect(responsesText.length).toBeLessThan(OCKHAMS_RAZOR_ANSWER.length);

    let completionText = '';
    const completions = await outcomeOf(async () => {
      const stream = await azure().completions.create({ model: 'gpt-4o-mini', prompt: QUESTION, max_tokens: 500, stream: true }, cut);
      for await (const chunk of stream) completionText += chunk.choices[0]?.text ?? '';
    });
    expect(completions).toBeInstanceOf(Error);
    expect(completionText.length).toBeGreaterThan(0);
    expect(completionText.length).toBeLessThan(OCKHAMS_RAZOR_ANSWER.length);
  });

  it('streams slowly on request, and delays the first byte by firstTokenDelayMs', async () => {
    const res = await rawRequest(`${standin.url}/openai/v1/responses`, {
      headers: { 'api-key': TEST_API_KEY, [CHUNK_DELAY_HEADER]: '1' },
      body: JSON.stringify({ model: 'gpt-4o-mini', input: QUESTION, stream: true }),
    });
    expect(res.body.trimEnd().split('\n\n').at(-1)).toMatch(/^event: response\.completed\ndata: /);

    const slow = await startStandin({ apiKey: TEST_API_KEY, firstTokenDelayMs: 150 });
    try {
      const started = Date.now();
      const stream = await azure({ url: slow.url }).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], stream: true });
      expect(Date.now() - started).toBeGreaterThanOrEqual(140);
      for await (const chunk of stream) void chunk;
      const headerStarted = Date.now();
      const viaHeader = await rawRequest(chatUrl(standin.url), { headers: { 'api-key': TEST_API_KEY, [FIRST_TOKEN_DELAY_HEADER]: '100' }, body: ASK });
      expect(viaHeader.status).toBe(200);
      expect(Date.now() - headerStarted).toBeGreaterThanOrEqual(90);
    } finally {
      await slow.close();
    }
  });
});

describe('hostile bodies on the new routes get Azure-shaped 400s', () => {
  it('answers wrong shapes the way the OpenAI backend does', async () => {
    const embeddings = '/openai/deployments/text-embedding-3-small/embeddings?api-version=2024-10-21';
    const completions = '/openai/deployments/gpt-4o-mini/completions?api-version=2024-10-21';
    const cases: [string, string, string | null, string | null][] = [
      [embeddings, '{}', 'input', null],
      [embeddings, '{"input":""}', null, null],
      [embeddings, '{"input":[1.5]}', null, null],
      [embeddings, '{"input":{"text":"x"}}', null, null],
      [embeddings, '{"input":"x","encoding_format":"hex"}', 'encoding_format', 'invalid_value'],
      [embeddings, '{"input":"x","dimensions":0}', 'dimensions', null],
      [completions, '{}', 'prompt', null],
      [completions, '{"prompt":42}', 'prompt', null],
      [completions, '{"prompt":"x","stream":"yes"}', 'stream', null],
      [completions, '{"prompt":"x","max_tokens":-1}', 'max_tokens', 'integer_below_min_value'],
      [completions, '{"prompt":"x","stream_options":{"include_usage":true}}', 'stream_options', null],
      ['/openai/v1/responses', '{"model":"gpt-4o-mini"}', 'input', null],
      ['/openai/v1/responses', '{"model":"gpt-4o-mini","input":5}', 'input', 'invalid_type'],
      ['/openai/v1/responses', '{"model":"gpt-4o-mini","input":[{"role":"wizard","content":"x"}]}', 'input[0]', 'invalid_value'],
      ['/openai/v1/responses', '{"model":"gpt-4o-mini","input":"x","max_output_tokens":5}', 'max_output_tokens', 'integer_below_min_value'],
      ['/openai/v1/responses', '{"model":42,"input":"x"}', 'model', null],
      ['/openai/v1/responses', '[]', null, null],
      ['/openai/v1/embeddings', '{"model":"text-embedding-3-small","input":', null, null],
      ['/openai/v1/chat/completions', '\u0000\u00ff garbage', null, null],
    ];
    for (const [path, body, param, code] of cases) {
      const res = await rawRequest(`${standin.url}${path}`, { headers: { 'api-key': TEST_API_KEY }, body });
      expect(res.status, `${path} ${body}`).toBe(400);
      expect(JSON.parse(res.body), `${path} ${body}`).toEqual({ error: { message: expect.any(String) as string, type: 'invalid_request_error', param, code } });
    }
  });
});

describe('stream_options and the data-plane version', () => {
  it('is refused before api-version 2024-09-01-preview, as Azure does, and taken from then on', async () => {
    const old = await refusalOf(azure({ apiVersion: '2024-06-01' }).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: QUESTION }], stream: true, stream_options: { include_usage: true } }));
    expect(old.status).toBe(400);
    expect(old.message).toMatch(/Unrecognized request argument supplied: stream_options/);
    const stream = await azure({ apiVersion: '2024-10-21' }).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: QUESTION }], stream: true, stream_options: { include_usage: true } });
    let usage: unknown;
    for await (const chunk of stream) if (chunk.usage) usage = chunk.usage;
    expect(usage).toBeDefined();
  });
});

async function refusalOf(promise: Promise<unknown>): Promise<APIError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof APIError) return err;
    throw err;
  }
  throw new Error('not refused');
}
