import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeTestCa } from '../../../examples/test-ca.js';
import { ArmStandInServer, type RunCommandHandler } from './server.js';
import { DEFAULT_DEMO_ANSWER, wicketVmEmulator, type VmEmulatorState } from './vm-emulator.js';

// A local HTTPS stand-in of Azure Resource Manager that the real Azure SDK clients talk to (see
// server.ts for the semantics). Its certificate comes from a throwaway CA; a child process trusts
// it through NODE_EXTRA_CA_CERTS (read at process start), which `env()` sets.
//
//   const arm = await startArmStandIn();
//   spawn('scripts/run.sh', ['up'], { env: arm.env({ AZURE_SUBSCRIPTION_ID: arm.subscriptionId }) });

export interface ArmStandInOptions {
  /** InProgress answers per operation before it ends (default 1). */
  pollsPerOperation?: number;
  /** Replaces the Wicket VM emulator. */
  runCommand?: RunCommandHandler;
  /** Put an `oid` claim in the bearer token (default true); false gives an opaque token. */
  tokenWithOid?: boolean;
}

export interface ArmStandIn {
  url: string;
  token: string;
  /** The oid claim in `token`, when it has one. */
  principalId: string | undefined;
  subscriptionId: string;
  caCertPath: string;
  arm: ArmStandInServer;
  vms: VmEmulatorState;
  /** Environment for a child process that runs the real SDK against the stand-in. */
  env(extra?: Record<string, string>): NodeJS.ProcessEnv;
  close(): Promise<void>;
}

function jwtShapedToken(oid: string | undefined): string {
  const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const claims = { aud: 'https://management.azure.com/', iss: 'https://standin.invalid/', ...(oid ? { oid } : {}) };
  return `${part({ alg: 'none', typ: 'JWT' })}.${part(claims)}.${Buffer.from('stand-in, not signed').toString('base64url')}`;
}

export async function startArmStandIn(options: ArmStandInOptions = {}): Promise<ArmStandIn> {
  const dir = await mkdtemp(join(tmpdir(), 'wicket-arm-standin-'));
  const ca = await makeTestCa(join(dir, 'tls'), { serverNames: ['127.0.0.1', 'localhost'] });
  const principalId = options.tokenWithOid === false ? undefined : randomUUID();
  const token = options.tokenWithOid === false ? `opaque-${randomUUID()}` : jwtShapedToken(principalId);
  const vms: VmEmulatorState = { minted: [], adminTicket: undefined, demoAnswer: DEFAULT_DEMO_ANSWER, failedBootstrap: new Set() };
  const arm = new ArmStandInServer(token, options.runCommand ?? wicketVmEmulator(vms), options.pollsPerOperation ?? 1);
  const server: Server = createServer({ cert: readFileSync(ca.certPath), key: readFileSync(ca.keyPath) }, (req, res) => arm.handle(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  arm.baseUrl = url;
  const subscriptionId = randomUUID();
  return {
    url,
    token,
    principalId,
    subscriptionId,
    caCertPath: ca.caCertPath,
    arm,
    vms,
    env(extra = {}) {
      return {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: dir,
        AZURE_ARM_ENDPOINT: url,
        AZURE_ACCESS_TOKEN: token,
        AZURE_SUBSCRIPTION_ID: subscriptionId,
        NODE_EXTRA_CA_CERTS: ca.caCertPath,
        WICKET_AZURE_POLL_MS: '5',
        WICKET_AZURE_STATE_DIR: join(dir, 'state'),
        ...extra,
      };
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
