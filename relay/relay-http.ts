import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import { RELAY_HTTP_MAX_HEADER_BYTES } from '../protocol/limits.js';
import { METRICS_FROM_OPTION, type MetricsAccess } from './metrics-access.js';

// The plain HTTP the relay answers on its own port, before (and instead of) a WebSocket upgrade:
//
//   GET /healthz  200 "ok" while the process serves
//   GET /readyz   200 "ready" when the store answers and the server listens; 503 and one line why
//   GET /metrics  Prometheus text, to the addresses --metrics-from allows (loopback by default)
//   GET /         426: the WebSocket endpoint agents dial
//
// Anything else is 404 (listing the routes) or 405 (not GET/HEAD). Upgrades never reach this
// handler: the WebSocket server takes them as before. Each answer closes its connection, and the
// server's header and request timeouts bound what a slow or hostile client can hold.

export interface RelayHttpRoutes {
  /** undefined when ready, else the reason (one line). */
  readiness(): Promise<string | undefined>;
  /** The registry to scrape (made on the first scrape). */
  registry(): Registry;
  readonly metricsAccess: MetricsAccess;
}

const PLAIN_ROUTES = 'GET /healthz, GET /readyz, GET /metrics';
const ROUTES = `${PLAIN_ROUTES}; agents upgrade to WebSocket on /`;
const TEXT = { 'content-type': 'text/plain; charset=utf-8', connection: 'close' } as const;

function answer(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { ...TEXT, ...headers }).end(`${body}\n`);
}

function metricsRefusal(remote: string | undefined, access: MetricsAccess): string {
  return (
    `metrics are served to ${access.description} only, not to ${remote ?? 'this client'}; ` +
    `start the relay with ${METRICS_FROM_OPTION} CIDR[,CIDR...] (e.g. ${METRICS_FROM_OPTION} 10.0.0.0/8) or ${METRICS_FROM_OPTION} any`
  );
}

export function relayHttpHandler(routes: RelayHttpRoutes): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return answer(res, 405, `method not allowed; routes: ${ROUTES}`, { allow: 'GET, HEAD' });
    switch (path) {
      case '/healthz':
        return answer(res, 200, 'ok');
      case '/readyz':
        routes.readiness().then(
          (reason) => (reason === undefined ? answer(res, 200, 'ready') : answer(res, 503, `not ready: ${reason}`)),
          (err: Error) => answer(res, 503, `not ready: ${err.message.split('\n')[0]}`),
        );
        return;
      case '/metrics': {
        const remote = req.socket.remoteAddress;
        if (!routes.metricsAccess.allows(remote)) return answer(res, 403, metricsRefusal(remote, routes.metricsAccess));
        const registry = routes.registry();
        registry.metrics().then(
          (text) => res.writeHead(200, { 'content-type': registry.contentType, connection: 'close' }).end(text),
          () => answer(res, 500, 'metrics failed'),
        );
        return;
      }
      case '/':
        return answer(res, 426, `wicket relay: agents connect here with a WebSocket upgrade; plain routes: ${PLAIN_ROUTES}`, { upgrade: 'websocket' });
      default:
        return answer(res, 404, `not found; routes: ${ROUTES}`);
    }
  };
}

/**
 * Server options that bound a plain HTTP client: the head's size (431 past it), and how often
 * the timeouts below are checked (node's default, 30 s, would let a silent client stay 3x longer).
 */
export function plainHttpOptions(timeoutMs: number): { maxHeaderSize: number; connectionsCheckingInterval: number } {
  return { maxHeaderSize: RELAY_HTTP_MAX_HEADER_BYTES, connectionsCheckingInterval: Math.max(100, Math.min(1_000, Math.round(timeoutMs / 4))) };
}

/**
 * A client that sends nothing, sends its head slowly or trickles a body is answered 408 and cut
 * after `timeoutMs`; an upgraded WebSocket has left the HTTP server's hands and is not affected.
 */
export function boundPlainHttp(server: Server, timeoutMs: number): void {
  server.headersTimeout = timeoutMs;
  server.requestTimeout = timeoutMs;
  server.keepAliveTimeout = Math.min(timeoutMs, 1_000);
}
