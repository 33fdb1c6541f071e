import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { createBackendCredential } from '../../../agent/gateway/backend-credential.js';
import { BackendPool } from '../../../agent/gateway/backend-pool.js';
import { ByteBudget } from '../../../agent/gateway/byte-budget.js';
import type { BackendSpec } from '../../../agent/gateway/gateway-spec.js';
import { GatewayLimits } from '../../../agent/gateway/gateway-limits.js';
import { serveGatewayRequest, type GatewayParts } from '../../../agent/gateway/gateway-request.js';
import { UsageLedger } from '../../../agent/gateway/usage-ledger.js';
import type { Policy } from '../../../protocol/policy.js';

// The gateway's request flow in-process: serveGatewayRequest behind a plain node:http server with
// the caller fixed per server (what the outlet's channel proves), a real backend pool, limits and
// ledger in a temp folder. For tests of the flow's decisions without the relay and agents around it.

export interface Caller {
  identifier: string;
  attributes: Record<string, string>;
}

export interface GatewayHarness {
  dir: string;
  ledger: UsageLedger;
  limits: GatewayLimits;
  /** A server whose requests come from `caller`; `parts` override the harness's. */
  serveAs(caller: Caller, parts?: Partial<GatewayParts>): Promise<string>;
  keyFile(key: string): string;
  close(): Promise<void>;
}

export const silent = pino({ level: 'silent' });

export function gatewayHarness(backends: () => BackendSpec[]): GatewayHarness {
  const dir = mkdtempSync(join(tmpdir(), 'wicket-gw-harness-'));
  const ledger = UsageLedger.open(join(dir, 'usage.db'), { retentionDays: 1, logger: silent, flushMs: 10 });
  const limits = GatewayLimits.open(join(dir, 'limits.db'), []);
  const servers: Server[] = [];
  const pools: BackendPool[] = [];
  return {
    dir,
    ledger,
    limits,
    async serveAs(caller, override = {}) {
      const pool = override.pool ?? new BackendPool(backends(), (b) => createBackendCredential(b.auth, { logger: silent }));
      pools.push(pool);
      const parts: GatewayParts = {
        outlet: 'openai', pool, limits, deploymentPolicies: new Map<string, Policy>(), bodyBudget: new ByteBudget(64 * 1024 * 1024),
        ledger, contentLog: undefined, metrics: undefined, logger: silent, ...override,
      };
      const server = createServer((req, res) => void serveGatewayRequest(parts, req, res, caller, new AbortController().signal));
      servers.push(server);
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    },
    keyFile(key) {
      const file = join(dir, `key-${Math.random().toString(36).slice(2)}`);
      writeFileSync(file, key, { mode: 0o600 });
      return file;
    },
    async close() {
      for (const server of servers) {
        server.closeAllConnections();
        server.close();
      }
      await Promise.all(pools.map((p) => p.close()));
      limits.close();
      ledger.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
