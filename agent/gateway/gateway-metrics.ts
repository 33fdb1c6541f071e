import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { GATEWAY_METRIC_IDENTITIES } from '../../protocol/limits.js';
import type { BackendStatus } from './backend.js';

// The gateway's Prometheus metrics (served on the agent's --metrics address). Label sets are
// bounded: the first GATEWAY_METRIC_IDENTITIES caller identities (and as many models) get their
// own label value, later ones are counted as "other", so a project with thousands of members
// cannot blow up the scrape.

const BREAKER_STATES = ['closed', 'cooling', 'open', 'half-open'] as const;

type BackendSource = () => readonly BackendStatus[];
/**
 * Per backend-state gauge (one per registry, shared by the outlets' GatewayMetrics): outlet → its
 * pool's live status. A breaker changes state on its own clock (a cooldown ends, a half-open
 * trial) with no event to push, and status() runs only for `agent status`; so the gauge is set
 * from these at every scrape, or a scrape would show the state of the last `agent status`.
 */
const backendSources = new WeakMap<object, Map<string, BackendSource>>();

function setBackendStates(gauge: Gauge<'outlet' | 'backend' | 'state'>, outlet: string, backends: readonly BackendStatus[]): void {
  for (const backend of backends) {
    for (const state of BREAKER_STATES) gauge.set({ outlet, backend: backend.name, state }, backend.breaker.state === state ? 1 : 0);
  }
}

class BoundedLabel {
  readonly #seen = new Set<string>();
  constructor(readonly max: number) {}
  of(value: string | null): string {
    if (value === null) return 'none';
    if (this.#seen.has(value)) return value;
    if (this.#seen.size >= this.max) return 'other';
    this.#seen.add(value);
    return value;
  }
}

export class GatewayMetrics {
  readonly #tokens: Counter<'outlet' | 'identity' | 'model' | 'type'>;
  readonly #requests: Counter<'outlet' | 'operation' | 'status'>;
  readonly #latency: Histogram<'outlet' | 'operation'>;
  readonly #ttft: Histogram<'outlet' | 'operation'>;
  readonly #refusals: Counter<'outlet' | 'code'>;
  readonly #backendState: Gauge<'outlet' | 'backend' | 'state'>;
  readonly #identities = new BoundedLabel(GATEWAY_METRIC_IDENTITIES);
  readonly #models = new BoundedLabel(50);

  constructor(registry: Registry) {
    const registers = [registry];
    // One gateway per outlet shares these: a second outlet reuses what the first registered.
    const existing = <T>(name: string): T | undefined => registry.getSingleMetric(name) as T | undefined;
    this.#tokens =
      existing('wicket_gateway_tokens_total') ??
      new Counter({ name: 'wicket_gateway_tokens_total', help: 'Tokens used through the gateway, by caller identity, model and type (prompt, completion).', labelNames: ['outlet', 'identity', 'model', 'type'], registers });
    this.#requests =
      existing('wicket_gateway_requests_total') ??
      new Counter({ name: 'wicket_gateway_requests_total', help: 'Gateway requests by operation and the HTTP status the app got.', labelNames: ['outlet', 'operation', 'status'], registers });
    this.#latency =
      existing('wicket_gateway_request_seconds') ??
      new Histogram({ name: 'wicket_gateway_request_seconds', help: 'Gateway request latency until the last byte reached the app.', labelNames: ['outlet', 'operation'], buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60], registers });
    this.#ttft =
      existing('wicket_gateway_time_to_first_token_seconds') ??
      new Histogram({ name: 'wicket_gateway_time_to_first_token_seconds', help: 'Time from the request to the first output token (streams) or the first body byte.', labelNames: ['outlet', 'operation'], buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30], registers });
    this.#refusals =
      existing('wicket_gateway_limit_refusals_total') ??
      new Counter({ name: 'wicket_gateway_limit_refusals_total', help: 'Requests the gateway refused by its own limits or policy, by WICKET_ERR_* code.', labelNames: ['outlet', 'code'], registers });
    this.#backendState =
      existing('wicket_gateway_backend_state') ??
      new Gauge({
        name: 'wicket_gateway_backend_state', help: 'Backend breaker state: 1 for the state it is in, 0 for the others.', labelNames: ['outlet', 'backend', 'state'], registers,
        collect() {
          for (const [outlet, source] of backendSources.get(this) ?? []) setBackendStates(this, outlet, source());
        },
      });
  }

  request(outlet: string, r: { operation: string; status: number; identity: string; model: string | null; promptTokens: number | null; completionTokens: number | null; latencyMs: number; ttftMs: number | null }): void {
    this.#requests.inc({ outlet, operation: r.operation, status: String(r.status) });
    this.#latency.observe({ outlet, operation: r.operation }, r.latencyMs / 1000);
    if (r.ttftMs !== null) this.#ttft.observe({ outlet, operation: r.operation }, r.ttftMs / 1000);
    const identity = this.#identities.of(r.identity);
    const model = this.#models.of(r.model);
    if (r.promptTokens !== null) this.#tokens.inc({ outlet, identity, model, type: 'prompt' }, r.promptTokens);
    if (r.completionTokens !== null) this.#tokens.inc({ outlet, identity, model, type: 'completion' }, r.completionTokens);
  }

  refused(outlet: string, code: string): void {
    this.#refusals.inc({ outlet, code });
  }

  /** Reads the outlet's backends at every scrape (see backendSources); the gateway calls this once it has its pool. */
  watchBackends(outlet: string, source: BackendSource): void {
    let sources = backendSources.get(this.#backendState);
    if (sources === undefined) backendSources.set(this.#backendState, (sources = new Map()));
    sources.set(outlet, source);
  }

  /** A closed gateway's pool is not read again. */
  unwatchBackends(outlet: string): void {
    backendSources.get(this.#backendState)?.delete(outlet);
  }
}
