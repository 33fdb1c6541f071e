// What the gateway records per HTTP request in the usage ledger (agent/gateway/usage-ledger.ts) and
// what `agent usage` sums (agent/gateway/usage-report.ts). A row carries counts and names only,
// never prompt or answer text and never a credential: the ledger is kept for months and read by
// people who must not see either.

/** The ledger's file name in the agent home (the node writes it, `agent usage` reads it). */
export const USAGE_LEDGER_FILE = 'usage.db';

export type GatewayOperation = 'chat' | 'completions' | 'embeddings' | 'responses' | 'other';

export const GATEWAY_OPERATIONS: readonly GatewayOperation[] = ['chat', 'completions', 'embeddings', 'responses', 'other'];

export interface UsageRow {
  /** ms since the epoch, when the request started. */
  at: number;
  /** The outlet (resource name) that served it; several outlets of one node share a ledger. */
  outlet: string;
  /** The caller's verified Wicket identifier, "I" + 64 hex. */
  identity: string;
  /** The caller's credential attributes. */
  attributes: Record<string, string>;
  /** The deployment (deployment-style URL) or the body's model field (v1-style URL). */
  deployment: string | null;
  /** The model the backend reported, else null. */
  model: string | null;
  operation: GatewayOperation;
  stream: boolean;
  /** The HTTP status the app got. */
  status: number;
  /** WICKET_ERR_* when the gateway answered the error itself. */
  code: string | null;
  promptTokens: number | null;
  completionTokens: number | null;
  totalTokens: number | null;
  /** Until the last byte reached the app. */
  latencyMs: number;
  /** Time to the first token (streams) or the first body byte. */
  ttftMs: number | null;
  /** The backend (pool name) that answered. */
  backend: string | null;
  /** The backend's x-request-id / apim-request-id, to find the request in Azure's logs. */
  requestId: string | null;
}
