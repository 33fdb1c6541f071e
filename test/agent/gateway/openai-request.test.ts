import { describe, expect, it } from 'vitest';
import { backendRequest, canonicalTarget, classifyRequest, type OpenAiRoute, prepareBody } from '../../../agent/gateway/openai-request.js';
import { seededBytes, seededRandom } from '../../helpers/seeded.js';

// What the gateway understands of an app's request decides which policy, estimate and usage apply:
// a path the backend serves as a chat completion for deployment D must never be classified as
// anything else, and the backend must receive exactly the target that was classified.

const Q = '?api-version=2024-10-21';

function route(method: string, target: string): Pick<OpenAiRoute, 'operation' | 'deploymentIn' | 'pathDeployment'> {
  const { operation, deploymentIn, pathDeployment } = classifyRequest(method, target);
  return { operation, deploymentIn, pathDeployment };
}

const body = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));

describe('classifyRequest', () => {
  it.each([
    ['/openai/deployments/gpt-4o/chat/completions', 'chat'],
    ['/openai/deployments/gpt-4o/completions', 'completions'],
    ['/openai/deployments/gpt-4o/embeddings', 'embeddings'],
  ] as const)('deployment style %s → %s', (path, operation) => {
    const r = classifyRequest('POST', `${path}${Q}`);
    expect(r).toMatchObject({ operation, deploymentIn: 'path', pathDeployment: 'gpt-4o', target: `${path}${Q}` });
    expect(r.pathRest).toBe(path.slice('/openai/deployments/gpt-4o'.length));
  });

  it.each([
    '/openai/deployments/gpt-4o/images/generations',
    '/openai/deployments/gpt-4o/audio/transcriptions',
    '/openai/deployments/gpt-4o/extensions/chat/completions',
    '/openai/deployments/gpt-4o/chat/completions/extra',
  ])('other deployment operation %s → other, deployment still named (its policy applies)', (path) => {
    expect(route('POST', `${path}${Q}`)).toEqual({ operation: 'other', deploymentIn: 'path', pathDeployment: 'gpt-4o' });
  });

  it.each([
    ['/openai/v1/chat/completions', 'chat'],
    ['/openai/v1/completions', 'completions'],
    ['/openai/v1/embeddings', 'embeddings'],
    ['/openai/v1/responses', 'responses'],
    ['/openai/responses', 'responses'],
  ] as const)('v1 / preview style %s → %s, deployment in the body', (path, operation) => {
    expect(route('POST', `${path}${Q}`)).toEqual({ operation, deploymentIn: 'body', pathDeployment: null });
  });

  it('names the body model for any other v1 operation, so its deployment policy applies', () => {
    expect(route('POST', '/openai/v1/images/generations')).toEqual({ operation: 'other', deploymentIn: 'body', pathDeployment: null });
  });

  it.each(['/openai/chat/completions', '/openai/embeddings', '/openai/deployments', '/openai/deployments/gpt-4o', '/', '/healthz', '/openai', '/openaiv1/chat/completions'])(
    'POST %s → other, no deployment',
    (path) => {
      expect(route('POST', path)).toEqual({ operation: 'other', deploymentIn: 'none', pathDeployment: null });
    },
  );

  it.each(['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', undefined])('%s on a completions path → other', (method) => {
    expect(classifyRequest(method, `/openai/deployments/gpt-4o/chat/completions${Q}`).operation).toBe('other');
    expect(classifyRequest(method, '/openai/v1/chat/completions').operation).toBe('other');
    expect(classifyRequest(method, '/openai/responses').operation).toBe('other');
  });

  it('decodes a percent-encoded deployment name; a malformed one names no deployment', () => {
    expect(route('POST', '/openai/deployments/gpt%2D4o%20mini/chat/completions')).toEqual({ operation: 'chat', deploymentIn: 'path', pathDeployment: 'gpt-4o mini' });
    expect(route('POST', '/openai/deployments/%E6%97%A5/embeddings').pathDeployment).toBe('日');
    for (const bad of ['%', '%zz', 'a%E6%97', '%C0%AF', '%ED%A0%80']) {
      expect(route('POST', `/openai/deployments/${bad}/chat/completions`), bad).toEqual({ operation: 'chat', deploymentIn: 'none', pathDeployment: null });
    }
  });

  it('keeps the query out of the path and in the target', () => {
    const r = classifyRequest('POST', '/openai/deployments/d/chat/completions?api-version=1&x=/openai/deployments/e/chat/completions');
    expect(r).toMatchObject({ operation: 'chat', pathDeployment: 'd', pathRest: '/chat/completions' });
    expect(r.target).toBe('/openai/deployments/d/chat/completions?api-version=1&x=/openai/deployments/e/chat/completions');
    expect(route('POST', '/openai/v1/chat/completions?x=1')).toMatchObject({ operation: 'chat' });
  });

  // Each of these reaches the backend as a chat completion for gpt-4o (dot segments resolved,
  // slashes merged, an absolute-form target, case and a trailing slash ignored): it must be
  // classified so, never as 'other' for another deployment, and the backend gets the canonical path.
  it.each([
    '/openai/deployments/free/../gpt-4o/chat/completions',
    '/openai/deployments/free/%2e%2e/gpt-4o/chat/completions',
    '/openai/deployments/free/%2E./gpt-4o/chat/completions',
    '/openai/./deployments/gpt-4o/./chat/completions',
    '/openai//deployments/gpt-4o//chat/completions',
    '//openai/deployments/gpt-4o/chat/completions',
    '/openai\\deployments\\gpt-4o\\chat\\completions',
    'http://evil.example/openai/deployments/gpt-4o/chat/completions',
    'HTTPS://evil.example:1/openai/deployments/gpt-4o/chat/completions',
    '/OpenAI/Deployments/gpt-4o/Chat/Completions',
    '/openai/deployments/gpt-4o/chat/completions/',
    '/x/../../openai/deployments/gpt-4o/chat/completions',
  ])('sees through %s', (target) => {
    const r = classifyRequest('POST', `${target}${Q}`);
    expect(r).toMatchObject({ operation: 'chat', deploymentIn: 'path', pathDeployment: 'gpt-4o' });
    expect(r.target.toLowerCase().replace(/\/\?/, '?')).toBe(`/openai/deployments/gpt-4o/chat/completions${Q}`);
  });

  it('sends a traversal that leaves the deployments as it resolves, not as it was written', () => {
    expect(classifyRequest('POST', '/openai/deployments/../x')).toMatchObject({ operation: 'other', deploymentIn: 'none', target: '/openai/x' });
    expect(classifyRequest('POST', '/openai/deployments/../../../etc/passwd').target).toBe('/etc/passwd');
    expect(classifyRequest('POST', '/openai/v1/../deployments/gpt-4o/embeddings')).toMatchObject({ operation: 'embeddings', pathDeployment: 'gpt-4o' });
  });

  it.each(['*', '', 'gpt-4o', 'http://[bad/x', 'mailto:x@y', '/\u0000\u00ff\ud800', '#frag', '?only=query'])('gives a path target to the backend for %j', (target) => {
    const r = classifyRequest('OPTIONS', target);
    expect(r.operation).toBe('other');
    expect(r.target.startsWith('/')).toBe(true);
    expect(r.target).not.toContain('#');
  });

  it('never throws on seeded random targets, and always yields a path', () => {
    const random = seededRandom(0x0a1);
    const alphabet = '/.%2eEAaopenidymtschul?#\\:@x0123456789F ';
    for (let n = 0; n < 2_000; n++) {
      let target = '';
      const length = Math.floor(random() * 60);
      for (let i = 0; i < length; i++) target += alphabet[Math.floor(random() * alphabet.length)];
      const r = classifyRequest(random() < 0.5 ? 'POST' : 'GET', target);
      expect(r.target.startsWith('/'), JSON.stringify(target)).toBe(true);
      expect(classifyRequest('POST', r.target).target, JSON.stringify(target)).toBe(r.target);
    }
  });

  it('leaves an ordinary target exactly as it was', () => {
    for (const target of [`/openai/deployments/gpt-4o/chat/completions${Q}`, '/openai/v1/responses', '/openai/deployments/a_b.c-d/embeddings?api-version=2024-02-01&x=%2F']) {
      expect(canonicalTarget(target)).toBe(target);
    }
  });
});

describe('prepareBody', () => {
  const chat = classifyRequest('POST', `/openai/deployments/gpt-4o/chat/completions${Q}`);
  const completions = classifyRequest('POST', `/openai/deployments/gpt-4o/completions${Q}`);
  const embeddings = classifyRequest('POST', `/openai/deployments/gpt-4o/embeddings${Q}`);
  const v1 = classifyRequest('POST', '/openai/v1/chat/completions');
  const responses = classifyRequest('POST', '/openai/v1/responses');
  const other = classifyRequest('POST', `/openai/deployments/gpt-4o/images/generations${Q}`);

  it('asks for streamed usage on a streamed chat or completions request that did not', () => {
    for (const r of [chat, completions]) {
      const p = prepareBody(r, body({ messages: [], stream: true }));
      expect(p).toMatchObject({ stream: true, usageInjected: true, deployment: 'gpt-4o' });
      expect(p.json?.stream_options).toEqual({ include_usage: true });
    }
  });

  it('keeps the other stream_options keys, and turns include_usage: false into ours to hide', () => {
    const p = prepareBody(chat, body({ stream: true, stream_options: { include_obfuscation: false, include_usage: false } }));
    expect(p.usageInjected).toBe(true);
    expect(p.json?.stream_options).toEqual({ include_obfuscation: false, include_usage: true });
  });

  it('leaves a request that asked for usage, is not streamed, or is another operation alone', () => {
    expect(prepareBody(chat, body({ stream: true, stream_options: { include_usage: true } })).usageInjected).toBe(false);
    for (const stream of [false, 'true', 1, null, undefined]) {
      const p = prepareBody(chat, body({ stream }));
      expect(p.usageInjected).toBe(false);
      expect(p.stream).toBe(false);
      expect(p.json && 'stream_options' in p.json).toBe(false);
    }
    for (const r of [embeddings, responses, other]) {
      const p = prepareBody(r, body({ model: 'm', stream: true }));
      expect(p.usageInjected).toBe(false);
      expect(p.json?.stream_options).toBeUndefined();
    }
  });

  it('takes the deployment from the path (deployment style) or from body.model (v1 style)', () => {
    expect(prepareBody(chat, body({ model: 'ignored' })).deployment).toBe('gpt-4o');
    expect(prepareBody(v1, body({ model: 'gpt-4o-mini' })).deployment).toBe('gpt-4o-mini');
    expect(prepareBody(v1, body({ model: 42 })).deployment).toBeNull();
    expect(prepareBody(classifyRequest('POST', '/openai/v1/images/generations'), body({ model: 'dall-e-3' })).deployment).toBe('dall-e-3');
    expect(prepareBody(classifyRequest('POST', '/healthz'), body({ model: 'gpt-4o' })).deployment).toBeNull();
  });

  it('reads a body with a UTF-8 byte order mark, as the backend does', () => {
    const raw = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), body({ model: 'gpt-4o', stream: true })]);
    expect(prepareBody(v1, raw)).toMatchObject({ deployment: 'gpt-4o', stream: true, usageInjected: true });
  });

  it.each([
    ['empty', Buffer.alloc(0)],
    ['not JSON', Buffer.from('{"stream": true,')],
    ['an array', body([{ stream: true }])],
    ['a string', body('stream')],
    ['null', Buffer.from('null')],
    ['a number', Buffer.from('1e400')],
    ['deep nesting', Buffer.from('['.repeat(100_000) + ']'.repeat(100_000))],
    ['random bytes', seededBytes(7, 10_000)],
  ])('leaves a body that is %s alone', (_what, raw) => {
    const p = prepareBody(v1, raw);
    expect(p).toEqual({ json: undefined, deployment: null, stream: false, usageInjected: false });
    const out = backendRequest(v1, p, raw, { 'gpt-4o': 'other' });
    expect(out.body).toBe(raw);
  });

  it('handles a large body (a few MB of messages) and still asks for usage', () => {
    const messages = Array.from({ length: 2_000 }, (_, i) => ({ role: 'user', content: `${i} ${'x'.repeat(1_000)}` }));
    const raw = body({ messages, stream: true });
    const p = prepareBody(chat, raw);
    expect(p.usageInjected).toBe(true);
    expect((p.json?.messages as unknown[]).length).toBe(2_000);
  });

  it('does not let a __proto__ key set stream or stream_options', () => {
    const raw = Buffer.from('{"__proto__":{"stream":true,"stream_options":{"include_usage":true}},"messages":[]}');
    const p = prepareBody(chat, raw);
    expect(p.stream).toBe(false);
    expect(backendRequest(chat, p, raw, undefined).body).toBe(raw);
  });
});

describe('backendRequest', () => {
  const chat = classifyRequest('POST', `/openai/deployments/gpt-4o/chat/completions${Q}&x=1`);
  const v1 = classifyRequest('POST', '/openai/v1/chat/completions');

  it('maps a path deployment, keeping the rest of the path and the query, and the body as it was', () => {
    const raw = body({ messages: [] });
    const out = backendRequest(chat, prepareBody(chat, raw), raw, { 'gpt-4o': 'gpt-4o-sweden' });
    expect(out.target).toBe(`/openai/deployments/gpt-4o-sweden/chat/completions${Q}&x=1`);
    expect(out.body).toBe(raw);
  });

  it('percent-encodes a mapped deployment name', () => {
    const raw = body({});
    const out = backendRequest(chat, prepareBody(chat, raw), raw, { 'gpt-4o': 'a/b c?d' });
    expect(out.target).toBe(`/openai/deployments/a%2Fb%20c%3Fd/chat/completions${Q}&x=1`);
  });

  it('passes the same Buffer when nothing changed (deployment in the path, no map hit, no injection)', () => {
    const raw = body({ model: 'gpt-4o', messages: [] });
    for (const map of [undefined, {}, { other: 'x' }] as (Record<string, string> | undefined)[]) {
      expect(backendRequest(chat, prepareBody(chat, raw), raw, map)).toEqual({ target: chat.target, body: raw });
      expect(backendRequest(chat, prepareBody(chat, raw), raw, map).body).toBe(raw);
    }
  });

  it('always re-serialises a body that names its deployment, so two "model" keys cannot route past the checked one', () => {
    const raw = Buffer.from('{"model":"gpt-4o-reserved","messages":[],"model":"gpt-4o"}', 'utf8');
    const prepared = prepareBody(v1, raw);
    expect(prepared.deployment).toBe('gpt-4o');
    const out = backendRequest(v1, prepared, raw, undefined);
    expect(out.body.toString('utf8')).toBe('{"model":"gpt-4o","messages":[]}');
  });

  it('maps body.model (v1 style) and re-serialises only then', () => {
    const raw = body({ model: 'gpt-4o', messages: [{ role: 'user', content: 'é' }] });
    const out = backendRequest(v1, prepareBody(v1, raw), raw, { 'gpt-4o': 'gpt-4o-2' });
    expect(out.target).toBe('/openai/v1/chat/completions');
    expect(JSON.parse(out.body.toString('utf8'))).toEqual({ model: 'gpt-4o-2', messages: [{ role: 'user', content: 'é' }] });
  });

  it('re-serialises with the injected stream_options, and with the map too', () => {
    const raw = body({ model: 'gpt-4o', stream: true });
    const out = backendRequest(v1, prepareBody(v1, raw), raw, { 'gpt-4o': 'b' });
    expect(JSON.parse(out.body.toString('utf8'))).toEqual({ model: 'b', stream: true, stream_options: { include_usage: true } });
    const plain = backendRequest(chat, prepareBody(chat, raw), raw, undefined);
    expect(JSON.parse(plain.body.toString('utf8'))).toEqual({ model: 'gpt-4o', stream: true, stream_options: { include_usage: true } });
  });

  it('does not find inherited names in the map (constructor, __proto__, toString)', () => {
    for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
      const raw = body({ model: name, stream: false });
      const out = backendRequest(v1, prepareBody(v1, raw), raw, { 'gpt-4o': 'x' });
      expect(JSON.parse(out.body.toString('utf8')).model, name).toBe(name);
      const path = classifyRequest('POST', `/openai/deployments/${name}/chat/completions`);
      expect(backendRequest(path, prepareBody(path, raw), raw, { 'gpt-4o': 'x' }).target).toBe(`/openai/deployments/${name}/chat/completions`);
    }
  });

  it('sends the canonical target, so the backend serves what was classified', () => {
    const sneaky = classifyRequest('POST', '/openai/deployments/free/../gpt-4o/chat/completions');
    const raw = body({});
    expect(backendRequest(sneaky, prepareBody(sneaky, raw), raw, undefined).target).toBe('/openai/deployments/gpt-4o/chat/completions');
  });
});
