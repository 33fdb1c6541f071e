import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { APIConnectionError, APIError, AzureOpenAI } from 'openai';
import { enrollAgent, startNodeProcess, startRelayProcess, stopAll, tempDir, type AgentHome, type NodeProcess, type RelayProcess } from '../../scripts/lib/local-processes.js';
import type { UsageRow } from '../../agent/gateway/usage-row.js';

// A whole gateway portal from real processes: a relay, an outlet node whose outlet carries the
// given `gateway` block (started with `agent node start --config`), and one inlet node per caller,
// each enrolled with its own ticket and attributes — so each caller is its own Wicket identity.
// The app is the official openai SDK, pointed at the caller's inlet on localhost.

export const API_VERSION = '2024-10-21';
/** What the app sends as its key: any placeholder; the gateway drops it. */
export const CALLER_PLACEHOLDER_KEY = 'caller-placeholder-key-never-forwarded';

export interface Caller {
  home: AgentHome;
  node: NodeProcess;
  /** "127.0.0.1:PORT" of this caller's inlet. */
  address: string;
  /** The official SDK, talking to this caller's inlet. */
  client(options?: { maxRetries?: number; deployment?: string }): AzureOpenAI;
}

export interface GatewayPortal {
  relay: RelayProcess;
  outletHome: AgentHome;
  outlet: NodeProcess;
  callers: Caller[];
}

export function writeKeyFile(key: string): string {
  const file = join(tempDir('wicket-gw-key-'), 'backend.key');
  writeFileSync(file, `${key}\n`, { mode: 0o600 });
  return file;
}

/** A gateway block with one backend, 'eastus' at `url`, holding `key` in a 0600 file; `more` adds e.g. limits. */
export function apiKeyGateway(url: string, key: string, more: Record<string, unknown> = {}): Record<string, unknown> {
  return { kind: 'azure-openai', backends: [{ name: 'eastus', url, auth: { kind: 'api-key', file: writeKeyFile(key) } }], ...more };
}

/**
 * After a file's tests: every relay and agent process, then the in-process servers (stand-ins),
 * in order. A server is undefined when beforeAll failed before starting it.
 */
export async function stopPortal(...servers: ({ close(): Promise<unknown> } | undefined)[]): Promise<void> {
  await stopAll();
  for (const server of servers) await server?.close();
}

/**
 * The APIError a refused request raises. A gateway refusal is an HTTP answer with a status, so a
 * connection error (an APIError too) is not one: it is rethrown, as is any other error.
 */
export async function refusal(request: Promise<unknown>): Promise<APIError> {
  try {
    await request;
  } catch (err) {
    if (err instanceof APIError && !(err instanceof APIConnectionError)) return err;
    throw err;
  }
  throw new Error('the request was not refused');
}

/**
 * The host's Azure identity settings, unset: AZURE_* (service principal, workload identity,
 * AZURE_TOKEN_CREDENTIALS, logging) and every variable MSAL reads to pick a managed identity
 * source (App Service, Service Fabric, Arc, Cloud Shell / ML). The outlet then sees only what a
 * test gives it, e.g. a managed identity stand-in's IDENTITY_ENDPOINT / IDENTITY_HEADER.
 * (spawn drops variables whose value is undefined.)
 */
export function withoutHostAzureIdentity(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const unset: NodeJS.ProcessEnv = {};
  for (const name of Object.keys(process.env)) {
    if (/^(AZURE_|MSI_|IDENTITY_|IMDS_)/i.test(name)) unset[name] = undefined;
  }
  return { ...unset, ...extra };
}

export async function startGatewayPortal(o: {
  gateway: Record<string, unknown>;
  callers: string[][];
  outletEnv?: NodeJS.ProcessEnv;
  /** Arguments for the outlet's `agent node start`, e.g. ['--metrics', '127.0.0.1:0']. */
  outletArgs?: string[];
  /** Flags for the outlet's node itself, e.g. an `--import` that watches its connections. */
  outletNodeArgs?: string[];
}): Promise<GatewayPortal> {
  const relay = await startRelayProcess({});
  const outletHome = await enrollAgent(relay, { attributes: ['openai-outlet'], relayNames: ['openai'] });
  const outlet = await startNodeProcess(
    outletHome,
    { outlets: [{ name: 'openai', relay: 'openai', allow: 'openai-inlet', gateway: o.gateway }] },
    {
      env: withoutHostAzureIdentity(o.outletEnv),
      ...(o.outletArgs !== undefined ? { args: o.outletArgs } : {}),
      ...(o.outletNodeArgs !== undefined ? { nodeArgs: o.outletNodeArgs } : {}),
    },
  );
  const callers: Caller[] = [];
  for (const attributes of o.callers) {
    const home = await enrollAgent(relay, { attributes: ['openai-inlet', ...attributes] });
    const node = await startNodeProcess(home, { inlets: [{ name: 'openai', from: '127.0.0.1:0', via: 'openai', allow: 'openai-outlet' }] });
    const address = node.inlets.openai!;
    callers.push({
      home,
      node,
      address,
      client: (options = {}) =>
        new AzureOpenAI({
          endpoint: `http://${address}`,
          apiKey: CALLER_PLACEHOLDER_KEY,
          apiVersion: API_VERSION,
          maxRetries: options.maxRetries ?? 0,
          timeout: 30_000,
          ...(options.deployment !== undefined ? { deployment: options.deployment } : {}),
        }),
    });
  }
  return { relay, outletHome, outlet, callers };
}

/** The outlet's ledger rows, once `count` are written (rows are batched: this waits for the flush). */
export async function ledgerRows(outletHome: AgentHome, count: number, timeoutMs = 5_000): Promise<UsageRow[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rows = readLedger(outletHome);
    if (rows.length >= count || Date.now() > deadline) return rows;
    await new Promise((r) => setTimeout(r, 100));
  }
}

function readLedger(outletHome: AgentHome): UsageRow[] {
  let db: Database.Database;
  try {
    db = new Database(join(outletHome.home, 'usage.db'), { readonly: true, fileMustExist: true });
  } catch {
    return [];
  }
  try {
    const raw = db.prepare('SELECT * FROM usage ORDER BY id').all() as Record<string, unknown>[];
    return raw.map((r) => ({
      at: Number(r.at), outlet: String(r.outlet), identity: String(r.identity), attributes: JSON.parse(String(r.attributes)) as Record<string, string>,
      deployment: r.deployment as string | null, model: r.model as string | null, operation: r.operation as UsageRow['operation'],
      stream: r.stream === 1, status: Number(r.status), code: r.code as string | null,
      promptTokens: r.prompt_tokens as number | null, completionTokens: r.completion_tokens as number | null, totalTokens: r.total_tokens as number | null,
      latencyMs: Number(r.latency_ms), ttftMs: r.ttft_ms as number | null, backend: r.backend as string | null, requestId: r.request_id as string | null,
    }));
  } finally {
    db.close();
  }
}
