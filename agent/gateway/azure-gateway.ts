import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { GATEWAY_MAX_BUFFERED_BODY_BYTES } from '../../protocol/limits.js';
import type { MuxStream } from '../../protocol/mux/index.js';
import type { ChannelPeer } from '../../protocol/secure-channel/index.js';
import type { BackendStatus } from './backend.js';
import { createBackendCredential } from './backend-credential.js';
import { BackendPool } from './backend-pool.js';
import { ByteBudget } from './byte-budget.js';
import { ContentLog } from './content-log.js';
import { deploymentPolicies } from './deployment-policies.js';
import type { Caller } from './gateway-limits.js';
import { GatewayLimits } from './gateway-limits.js';
import { GatewayMetrics } from './gateway-metrics.js';
import { serveGatewayRequest } from './gateway-request.js';
import type { GatewaySpec } from './gateway-spec.js';
import { HttpFront } from './http-front.js';
import { loadTokenizer } from './prompt-estimate.js';
import type { UsageLedger } from './usage-ledger.js';

// An outlet in gateway mode (DESIGN.md "The Azure OpenAI gateway"): each stream of an admitted
// peer is an HTTP/1.1 connection from the app; each request is answered by the backend pool with
// the outlet's credential, held to the caller's limits, and recorded in the node's usage ledger
// under the caller's verified identity — never under a header the app could set.

/** The file of limit counters in the agent home, unless gateway.sharedCounters names another. */
export const LIMITS_FILE = 'limits.db';

/** What a gateway needs from its node. */
export interface GatewayHost {
  home: string;
  /** The node's usage ledger (opened on first use, shared by its gateway outlets). */
  ledger(retentionDays: number): UsageLedger;
  registry: Registry | undefined;
  logger: Logger;
}

/** What an outlet needs of its gateway (the outlet imports no gateway module: see AgentNode). */
export interface GatewayServer {
  serve(stream: MuxStream, peer: ChannelPeer): void;
  status(): GatewayStatus;
  close(): Promise<void>;
}

export interface GatewayStatus {
  kind: 'azure-openai';
  connections: number;
  backends: BackendStatus[];
  limits: number;
  contentLog: boolean;
}

export class AzureGateway implements GatewayServer {
  readonly #outlet: string;
  readonly #pool: BackendPool;
  readonly #limits: GatewayLimits;
  readonly #contentLog: ContentLog | undefined;
  readonly #metrics: GatewayMetrics | undefined;
  readonly #front: HttpFront<Caller>;
  readonly #rules: number;

  private constructor(outlet: string, parts: { pool: BackendPool; limits: GatewayLimits; contentLog: ContentLog | undefined; metrics: GatewayMetrics | undefined; front: HttpFront<Caller>; rules: number }) {
    this.#outlet = outlet;
    this.#pool = parts.pool;
    this.#limits = parts.limits;
    this.#contentLog = parts.contentLog;
    this.#metrics = parts.metrics;
    this.#front = parts.front;
    this.#rules = parts.rules;
  }

  /** Opens the gateway's parts; a bad api-key file, CA or counters file fails here, at outlet creation. */
  static open(outlet: string, spec: GatewaySpec, host: GatewayHost): AzureGateway {
    const logger = host.logger.child({ gateway: outlet });
    const pool = new BackendPool(spec.backends, (backend) => createBackendCredential(backend.auth, { logger: logger.child({ backend: backend.name }) }));
    let limits: GatewayLimits | undefined;
    let contentLog: ContentLog | undefined;
    try {
      limits = GatewayLimits.open(spec.sharedCounters ?? join(host.home, LIMITS_FILE), spec.limits);
      contentLog = ContentLog.open(spec.contentLog, { logger });
      const ledger = host.ledger(spec.ledger.retentionDays);
      const metrics = host.registry === undefined ? undefined : new GatewayMetrics(host.registry);
      // The backend-state gauge reads the live pool at each scrape, not a snapshot from `status`.
      metrics?.watchBackends(outlet, () => pool.status());
      const parts = { outlet, pool, limits, deploymentPolicies: deploymentPolicies(spec), bodyBudget: new ByteBudget(GATEWAY_MAX_BUFFERED_BODY_BYTES), ledger, contentLog, metrics, logger };
      const front = new HttpFront<Caller>({
        logger,
        onRequest: (req, res, caller, deadline) =>
          serveGatewayRequest(parts, req, res, caller, deadline).catch((err: unknown) => {
            // serveGatewayRequest answers its own failures; this is the last net under a bug, so
            // the process never dies of an unhandled rejection.
            logger.error({ code: 'WICKET_ERR_INTERNAL', reason: err instanceof Error ? err.message : String(err) }, 'gateway request handler failed');
            res.destroy();
          }),
      });
      loadTokenizer();
      logger.info({ backends: spec.backends.map((b) => b.name), limits: spec.limits.length, contentLog: contentLog !== undefined }, 'Azure OpenAI gateway ready');
      return new AzureGateway(outlet, { pool, limits, contentLog, metrics, front, rules: spec.limits.length });
    } catch (err) {
      void pool.close();
      limits?.close();
      void contentLog?.close();
      throw err;
    }
  }

  /** Serves one stream of a peer the outlet admitted (its identity and attributes proven by the channel). */
  serve(stream: MuxStream, peer: ChannelPeer): void {
    this.#front.serve(stream, { identifier: peer.identifier, attributes: peer.attributes });
  }

  status(): GatewayStatus {
    const backends = this.#pool.status();
    return { kind: 'azure-openai', connections: this.#front.connections, backends, limits: this.#rules, contentLog: this.#contentLog !== undefined };
  }

  async close(): Promise<void> {
    this.#metrics?.unwatchBackends(this.#outlet);
    this.#front.close();
    this.#limits.close();
    await Promise.all([this.#pool.close(), this.#contentLog?.close()]);
  }
}
