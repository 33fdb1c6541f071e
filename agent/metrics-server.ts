import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { collectDefaultMetrics, type Registry } from 'prom-client';
import { wicketError } from '../protocol/errors.js';
import { formatHostPort, type HostPort } from './node-config.js';

// The agent's metrics address (`agent node start --metrics 127.0.0.1:9464`): Prometheus text at
// GET /metrics from the node's prom-client registry (with the process's default metrics), GET
// /healthz (200 while the process serves) and GET /readyz (200 when the node is ready for
// traffic, else 503 and one line why: node-readiness.ts). Nothing else is served; it binds where
// the operator says (loopback by default in every example), never a wildcard by itself.

export class MetricsServer {
  readonly #server: Server;
  readonly address: string;

  private constructor(server: Server, address: string) {
    this.#server = server;
    this.address = address;
  }

  /** `unreadiness`: why the node is not ready, or undefined when it is. */
  static async listen(at: HostPort, registry: Registry, unreadiness: () => string | undefined): Promise<MetricsServer> {
    collectDefaultMetrics({ register: registry });
    const server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
        return;
      }
      if (path === '/healthz') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
        return;
      }
      if (path === '/readyz') {
        const reason = unreadiness();
        res.writeHead(reason === undefined ? 200 : 503, { 'content-type': 'text/plain' }).end(reason === undefined ? 'ready\n' : `not ready: ${reason}\n`);
        return;
      }
      if (path !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics, /healthz or /readyz\n');
        return;
      }
      registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
        () => res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics failed\n'),
      );
    });
    server.headersTimeout = 10_000;
    server.requestTimeout = 10_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) =>
        reject(wicketError(err.code === 'EADDRINUSE' ? 'WICKET_ERR_ADDRESS_IN_USE' : 'WICKET_ERR_ARGUMENT', `--metrics ${formatHostPort(at)}: ${err.code ?? err.message}`)),
      );
      server.listen(at.port, at.host, () => resolve());
    });
    const bound = server.address() as AddressInfo;
    return new MetricsServer(server, formatHostPort({ host: bound.address, port: bound.port }));
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }
}
