import type { IncomingHttpHeaders } from 'node:http';
import { describe, expect, it } from 'vitest';
import { appResponseHeaders, backendRequestHeaders } from '../../../agent/gateway/gateway-headers.js';

// The caller is its Wicket identity: its own credentials never reach the backend, nor do
// hop-by-hop headers (fixed ones, and any its Connection header names). The app gets the
// backend's headers less hop-by-hop ones, and less Content-Length when the body was rewritten.

const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'proxy-authenticate', 'proxy-authorization'];

describe('backendRequestHeaders', () => {
  const app: IncomingHttpHeaders = {
    host: 'gateway.local:8443',
    'api-key': 'sk-caller-placeholder',
    authorization: 'Bearer caller-token',
    'proxy-authorization': 'Basic Y2FsbGVy',
    'content-length': '123',
    expect: '100-continue',
    connection: 'keep-alive, X-Secret-Hop,  x-other ',
    'keep-alive': 'timeout=5',
    'proxy-connection': 'keep-alive',
    'transfer-encoding': 'chunked',
    upgrade: 'h2c',
    te: 'trailers',
    trailer: 'x-checksum',
    'x-secret-hop': 'must not pass',
    'x-other': 'must not pass either',
    'content-type': 'application/json',
    'user-agent': 'OpenAI/Python 1.50.0',
    'x-ms-client-request-id': 'abc',
    'accept-encoding': 'gzip, deflate, br',
  };

  it('never forwards the caller\'s credentials, host, length, expect or hop-by-hop headers', () => {
    const out = backendRequestHeaders(app);
    for (const name of ['host', 'api-key', 'authorization', 'content-length', 'expect', ...HOP_BY_HOP, 'x-secret-hop', 'x-other']) {
      expect(out, name).not.toHaveProperty(name);
    }
    expect(out).toEqual({
      'content-type': 'application/json',
      'user-agent': 'OpenAI/Python 1.50.0',
      'x-ms-client-request-id': 'abc',
      'accept-encoding': 'identity',
    });
  });

  it('asks the backend for an uncompressed answer (its usage must be readable), whatever the app accepts', () => {
    expect(backendRequestHeaders({ 'accept-encoding': 'gzip' })['accept-encoding']).toBe('identity');
    expect(backendRequestHeaders({})['accept-encoding']).toBe('identity');
  });

  it('joins repeated headers given as arrays', () => {
    const out = backendRequestHeaders({ 'x-tags': ['a', 'b', 'c'], 'x-one': ['only'] } as unknown as IncomingHttpHeaders);
    expect(out['x-tags']).toBe('a, b, c');
    expect(out['x-one']).toBe('only');
  });

  it('reads a Connection header given as an array, and skips undefined values', () => {
    const out = backendRequestHeaders({ connection: ['x-a', 'X-B'], 'x-a': '1', 'x-b': '2', 'x-c': '3', 'x-d': undefined } as unknown as IncomingHttpHeaders);
    expect(out).toEqual({ 'x-c': '3', 'accept-encoding': 'identity' });
  });

  it('cannot be talked into forwarding a credential by a Connection header or odd values', () => {
    for (const connection of ['', ',,,', 'close', 'api-key', 'authorization, api-key', ' , x , ']) {
      const out = backendRequestHeaders({ connection, 'api-key': 'k', authorization: 'Bearer t', 'proxy-authorization': 'p' });
      expect(Object.keys(out).sort()).toEqual(['accept-encoding']);
    }
  });
});

describe('appResponseHeaders', () => {
  const backend: IncomingHttpHeaders = {
    'content-type': 'application/json',
    'content-length': '456',
    connection: 'keep-alive, x-hop',
    'keep-alive': 'timeout=5',
    'transfer-encoding': 'chunked',
    'proxy-authenticate': 'Basic',
    trailer: 'x',
    'x-hop': 'named by connection',
    'x-request-id': 'req-1',
    'apim-request-id': 'apim-1',
    'x-ratelimit-remaining-tokens': '1000',
    'set-cookie': ['a=1', 'b=2'],
  };

  it('strips hop-by-hop and Connection-named headers, keeps the rest and the length', () => {
    expect(appResponseHeaders(backend, false)).toEqual({
      'content-type': 'application/json',
      'content-length': '456',
      'x-request-id': 'req-1',
      'apim-request-id': 'apim-1',
      'x-ratelimit-remaining-tokens': '1000',
      'set-cookie': ['a=1', 'b=2'],
    });
  });

  it('drops Content-Length when the body was rewritten', () => {
    const out = appResponseHeaders(backend, true);
    expect(out).not.toHaveProperty('content-length');
    expect(out['x-request-id']).toBe('req-1');
  });

  it('copies, never aliases, the backend headers', () => {
    const headers: IncomingHttpHeaders = { 'x-a': '1' };
    const out = appResponseHeaders(headers, false);
    out['x-a'] = 'changed';
    expect(headers['x-a']).toBe('1');
  });
});
