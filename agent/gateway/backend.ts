import { readFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { Pool } from 'undici';
import { wicketError } from '../../protocol/errors.js';
import {
  GATEWAY_BACKEND_BODY_TIMEOUT_MS,
  GATEWAY_BACKEND_CONNECT_TIMEOUT_MS,
  GATEWAY_BACKEND_CONNECTIONS,
  GATEWAY_BACKEND_HEADERS_TIMEOUT_MS,
} from '../../protocol/limits.js';
import type { BackendCredential, CredentialStatus } from './backend-credential.js';
import { type BreakerStatus, CircuitBreaker } from './circuit-breaker.js';
import type { BackendSpec } from './gateway-spec.js';

// One backend of a gateway's pool: an Azure OpenAI endpoint (a region, a deployment) with its own
// credential, its breaker, and a kept undici connection pool (keep-alive, TLS verified against the
// system roots or the backend's tlsCa, bounded connect/head/body timeouts).

export interface BackendAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Readable;
}

export interface BackendStatus {
  name: string;
  url: string;
  priority: number;
  weight: number;
  breaker: BreakerStatus;
  credential: CredentialStatus;
  requests: number;
  failures: number;
  throttled: number;
  lastError?: { message: string; at: string };
}

export class Backend {
  readonly spec: BackendSpec;
  readonly breaker: CircuitBreaker;
  readonly credential: BackendCredential;
  readonly #pool: Pool;
  readonly #basePath: string;
  #requests = 0;
  #failures = 0;
  #throttled = 0;
  #lastError: { message: string; at: string } | undefined;

  constructor(spec: BackendSpec, credential: BackendCredential, now: () => number) {
    this.spec = spec;
    this.credential = credential;
    this.breaker = new CircuitBreaker(now);
    const url = new URL(spec.url);
    this.#basePath = url.pathname.replace(/\/+$/, '');
    let ca: Buffer | undefined;
    if (spec.tlsCa !== undefined) {
      try {
        ca = readFileSync(spec.tlsCa);
      } catch (err) {
        throw wicketError('WICKET_ERR_CONFIG', `backend ${spec.name}: tlsCa ${spec.tlsCa} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      }
    }
    this.#pool = new Pool(url.origin, {
      connections: GATEWAY_BACKEND_CONNECTIONS,
      connect: { timeout: GATEWAY_BACKEND_CONNECT_TIMEOUT_MS, ...(ca !== undefined ? { ca } : {}) },
      headersTimeout: GATEWAY_BACKEND_HEADERS_TIMEOUT_MS,
      bodyTimeout: GATEWAY_BACKEND_BODY_TIMEOUT_MS,
    });
  }

  /** Sends one request; a connection failure rejects (the caller fails over), any HTTP answer resolves. */
  async send(method: string, target: string, headers: Record<string, string>, body: Buffer, signal: AbortSignal): Promise<BackendAnswer> {
    this.#requests++;
    const answer = await this.#pool.request({
      method: method as 'POST',
      path: `${this.#basePath}${target}`,
      headers,
      body: body.length > 0 || method === 'POST' || method === 'PUT' || method === 'PATCH' ? body : null,
      signal,
    });
    return { status: answer.statusCode, headers: answer.headers as IncomingHttpHeaders, body: answer.body };
  }

  /** Records what went wrong for `agent status` (never a credential or a body). */
  noteFailure(message: string, kind: 'failure' | 'throttled'): void {
    if (kind === 'failure') this.#failures++;
    else this.#throttled++;
    this.#lastError = { message: message.slice(0, 300), at: new Date().toISOString() };
  }

  status(): BackendStatus {
    const status: BackendStatus = {
      name: this.spec.name,
      url: this.spec.url,
      priority: this.spec.priority,
      weight: this.spec.weight,
      breaker: this.breaker.status(),
      credential: this.credential.status(),
      requests: this.#requests,
      failures: this.#failures,
      throttled: this.#throttled,
    };
    if (this.#lastError !== undefined) status.lastError = this.#lastError;
    return status;
  }

  async close(): Promise<void> {
    this.credential.close();
    await this.#pool.destroy();
  }
}

/** Azure's retry-after-ms (milliseconds) or retry-after (seconds, or an HTTP date), else undefined. */
export function retryAfterMs(headers: IncomingHttpHeaders, now: number = Date.now()): number | undefined {
  const ms = Number(headers['retry-after-ms']);
  if (Number.isFinite(ms) && ms >= 0) return ms;
  const value = headers['retry-after'];
  if (typeof value !== 'string' || value === '') return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(value);
  return Number.isFinite(date) ? Math.max(0, date - now) : undefined;
}
