import { request as httpRequest, createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { request as httpsRequest, type Agent } from 'node:https';
import type { AddressInfo } from 'node:net';
import { isIP } from 'node:net';
import { pathToFileURL } from 'node:url';
import { wicketError } from '../../../protocol/errors.js';
import { AOAI_IMDS_TIMEOUT_MS, AOAI_TOKEN_REFRESH_BEFORE_EXPIRY_MS, AOAI_UPSTREAM_TIMEOUT_MS } from '../../../protocol/limits.js';

// Runs on AI Corp's VM only (systemd unit aoai-token-proxy.service), listening on loopback. The
// Wicket outlet forwards Health Corp's requests here; this adds an Entra ID token for the VM's
// managed identity (role "Cognitive Services OpenAI User" on the account) and sends the request on
// to the account's endpoint over TLS, through the private endpoint. So no API key exists anywhere
// in the path: the account has local (key) auth disabled, and whatever `api-key` or
// `Authorization` a client sends is dropped here. The token never leaves this VM either.
//
// Environment: AOAI_UPSTREAM (https://<account>.openai.azure.com), PROXY_LISTEN (127.0.0.1:8081),
// IMDS_TOKEN_URL (default: the Azure Instance Metadata Service).

export const IMDS_TOKEN_URL = 'http://169.254.169.254/metadata/identity/oauth2/token';
export const COGNITIVE_SERVICES_RESOURCE = 'https://cognitiveservices.azure.com';
/** Hop-by-hop headers (RFC 9110 §7.6.1) and the credentials we replace. */
const DROPPED_HEADERS = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'host', 'api-key', 'authorization', 'proxy-authorization']);

export interface TokenProxyOptions {
  upstream: string;
  listen: string;
  imdsUrl?: string;
  /** TLS agent for the upstream (tests: trust a test CA). */
  agent?: Agent;
}

export interface RunningProxy {
  port: number;
  close(): Promise<void>;
}

interface CachedToken {
  value: string;
  expiresAtMs: number;
}

function fetchImdsToken(imdsUrl: string): Promise<CachedToken> {
  const url = new URL(imdsUrl);
  url.searchParams.set('api-version', '2018-02-01');
  url.searchParams.set('resource', COGNITIVE_SERVICES_RESOURCE);
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { headers: { Metadata: 'true' }, timeout: AOAI_IMDS_TIMEOUT_MS }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        if (res.statusCode !== 200) {
          reject(wicketError('WICKET_ERR_AZURE_OPERATION', `managed identity token request answered HTTP ${res.statusCode ?? '?'} (is a system-assigned identity enabled on this VM?)`));
          return;
        }
        try {
          const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { access_token?: unknown; expires_on?: unknown };
          const expiresOn = Number(body.expires_on);
          if (typeof body.access_token !== 'string' || !Number.isFinite(expiresOn)) throw new Error('no access_token or expires_on');
          resolve({ value: body.access_token, expiresAtMs: expiresOn * 1000 });
        } catch (err) {
          reject(wicketError('WICKET_ERR_AZURE_OPERATION', `managed identity token answer unreadable: ${(err as Error).message}`));
        }
      });
    });
    req.on('timeout', () => req.destroy(wicketError('WICKET_ERR_AZURE_OPERATION', 'managed identity token request timed out')));
    req.on('error', reject);
    req.end();
  });
}

function forwardedHeaders(headers: IncomingHttpHeaders, upstreamHost: string, token: string): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || DROPPED_HEADERS.has(name)) continue;
    out[name] = value;
  }
  out.host = upstreamHost;
  out.authorization = `Bearer ${token}`;
  return out;
}

function jsonError(res: ServerResponse, status: number, code: string, message: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ error: { code, message } }));
}

export async function startTokenProxy(options: TokenProxyOptions): Promise<RunningProxy> {
  const upstream = new URL(options.upstream);
  if (upstream.protocol !== 'https:') throw wicketError('WICKET_ERR_AZURE_CONFIG', `AOAI_UPSTREAM must be https://, got ${options.upstream}`);
  const [host, portText] = [options.listen.slice(0, options.listen.lastIndexOf(':')), options.listen.slice(options.listen.lastIndexOf(':') + 1)];
  if (host !== '127.0.0.1' && host !== '::1') throw wicketError('WICKET_ERR_AZURE_CONFIG', `PROXY_LISTEN must be a loopback address (it hands out a token), got ${options.listen}`);
  const port = Number(portText);
  if (portText === '' || !Number.isInteger(port) || port < 0 || port > 65_535 || isIP(host) === 0) {
    throw wicketError('WICKET_ERR_AZURE_CONFIG', `PROXY_LISTEN is not host:port: ${options.listen}`);
  }
  const imdsUrl = options.imdsUrl ?? IMDS_TOKEN_URL;

  let cached: CachedToken | undefined;
  let pending: Promise<CachedToken> | undefined;
  const token = async (): Promise<string> => {
    if (cached && cached.expiresAtMs - Date.now() > AOAI_TOKEN_REFRESH_BEFORE_EXPIRY_MS) return cached.value;
    // One refresh in flight at a time, however many requests arrive meanwhile.
    pending ??= fetchImdsToken(imdsUrl).finally(() => {
      pending = undefined;
    });
    cached = await pending;
    return cached.value;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = req.url ?? '/';
    // Only the Azure OpenAI data plane: the token must not become a key to anything else.
    if (!path.startsWith('/openai/')) {
      req.resume();
      jsonError(res, 404, 'NotFound', 'this proxy only forwards /openai/ paths');
      return;
    }
    let bearer: string;
    try {
      bearer = await token();
    } catch (err) {
      req.resume();
      jsonError(res, 502, 'ManagedIdentityUnavailable', (err as Error).message);
      return;
    }
    const upstreamReq = httpsRequest(
      {
        protocol: 'https:',
        hostname: upstream.hostname,
        port: upstream.port === '' ? 443 : Number(upstream.port),
        servername: upstream.hostname,
        method: req.method,
        path,
        headers: forwardedHeaders(req.headers, upstream.host, bearer),
        timeout: AOAI_UPSTREAM_TIMEOUT_MS,
        ...(options.agent ? { agent: options.agent } : {}),
      },
      (upstreamRes) => {
        const headers = { ...upstreamRes.headers };
        delete headers.connection;
        delete headers['transfer-encoding'];
        res.writeHead(upstreamRes.statusCode ?? 502, headers);
        // Streamed (server-sent events for streaming completions): pipe, no buffering.
        upstreamRes.pipe(res);
        upstreamRes.on('error', () => res.destroy());
      },
    );
    upstreamReq.on('timeout', () => upstreamReq.destroy(wicketError('WICKET_ERR_AZURE_OPERATION', 'Azure OpenAI endpoint did not answer in time')));
    upstreamReq.on('error', (err) => jsonError(res, 502, 'UpstreamUnreachable', `Azure OpenAI endpoint: ${err.message}`));
    req.pipe(upstreamReq);
    console.log(JSON.stringify({ msg: 'forward', method: req.method, path: path.split('?')[0] }));
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => jsonError(res, 500, 'ProxyError', err instanceof Error ? err.message : String(err)));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const upstream = process.env.AOAI_UPSTREAM;
  if (!upstream) {
    console.error('aoai-token-proxy: AOAI_UPSTREAM is not set');
    process.exit(2);
  }
  const listen = process.env.PROXY_LISTEN ?? '127.0.0.1:8081';
  startTokenProxy({ upstream, listen, imdsUrl: process.env.IMDS_TOKEN_URL ?? IMDS_TOKEN_URL }).then(
    (p) => console.log(JSON.stringify({ msg: 'listening', listen: `${listen.slice(0, listen.lastIndexOf(':'))}:${p.port}`, upstream })),
    (err: unknown) => {
      console.error(`aoai-token-proxy: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(1);
    },
  );
}
