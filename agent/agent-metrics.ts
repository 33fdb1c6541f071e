import { Counter, Gauge, type Registry } from 'prom-client';
import type { ErrorCode, WicketError } from '../protocol/errors.js';
import { WICKET_VERSION } from '../protocol/version.js';
import type { RelayClient, RelayClientState } from './relay-client.js';
import { RELAY_CLIENT_TRANSITIONS } from './relay-client-states.js';
import type { TrafficTotals } from './resource-traffic.js';
import type { SessionTable } from './session-table.js';

// The agent node's own Prometheus metrics (the gateway's are in gateway/gateway-metrics.ts), on
// the --metrics address with /healthz and /readyz (metrics-server.ts). Loaded only with
// --metrics or a gateway outlet: a plain agent never loads prom-client.
//
// Values are read at scrape time from what the node already keeps (the relay client's state, the
// session table, each inlet's and outlet's traffic); the few events nothing keeps (reconnects,
// failures by code, when each code was last seen) are plain numbers here, counted from the relay
// client's and the session table's events. Nothing on the data path calls prom-client.
//
// Labels are bounded: `state` by the relay client's states, `code` by protocol/errors.ts,
// `kind` by inlet|outlet and `resource` by the node's resources (at most MAX_NODE_RESOURCES).

export type ResourceKind = 'inlet' | 'outlet';

export interface ResourceMetrics {
  readonly kind: ResourceKind;
  readonly name: string;
  readonly traffic: TrafficTotals;
}

/** What the metrics read from the node. */
export interface AgentMetricsSource {
  readonly relay: RelayClient;
  readonly sessions: SessionTable;
  resources(): readonly ResourceMetrics[];
  /** undefined when ready, else why not (GET /readyz says the same). */
  unreadiness(): string | undefined;
}

const RELAY_STATES = Object.keys(RELAY_CLIENT_TRANSITIONS) as RelayClientState[];
/** Ends of a channel that are no failure: the peer or the path went away, or we closed it. */
const ORDINARY_CLOSE: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['WICKET_ERR_CHANNEL_CLOSED', 'WICKET_ERR_CIRCUIT_CLOSED']);

type Labels = Record<string, string>;
type Samples = Iterable<[Labels, number]>;

function counterOf(registry: Registry, name: string, help: string, labelNames: readonly string[], read: () => Samples): void {
  new Counter({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      for (const [labels, value] of read()) this.inc(labels, value);
    },
  });
}

function gaugeOf(registry: Registry, name: string, help: string, labelNames: readonly string[], read: () => Samples): void {
  new Gauge({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      for (const [labels, value] of read()) this.set(labels, value);
    },
  });
}

function byCode(counts: ReadonlyMap<ErrorCode, number>): Samples {
  return [...counts].map(([code, value]) => [{ code }, value]);
}

function bump(counts: Map<ErrorCode, number>, code: ErrorCode): void {
  counts.set(code, (counts.get(code) ?? 0) + 1);
}

export class AgentMetrics {
  readonly #source: AgentMetricsSource;
  readonly #now: () => number;
  #reconnects = 0;
  #everConnected: boolean;
  readonly #connectFailures = new Map<ErrorCode, number>();
  readonly #disconnects = new Map<ErrorCode, number>();
  readonly #handshakeFailures = new Map<ErrorCode, number>();
  /** When each code was last seen (ms since the epoch). */
  readonly #lastErrorAt = new Map<ErrorCode, number>();

  constructor(registry: Registry, source: AgentMetricsSource, now: () => number = Date.now) {
    this.#source = source;
    this.#now = now;
    const relay = source.relay;
    this.#everConnected = relay.connected;
    relay.on('state', (to: RelayClientState, from: RelayClientState) => this.#onRelayState(to, from));
    relay.on('disconnected', (err: WicketError) => {
      bump(this.#disconnects, err.code);
      this.#sawError(err.code);
    });
    source.sessions.onSessionClosed((session, error) => {
      if (!session.wasOpened) {
        bump(this.#handshakeFailures, error.code);
        this.#sawError(error.code);
      } else if (!ORDINARY_CLOSE.has(error.code)) this.#sawError(error.code);
    });
    this.#register(registry);
  }

  #onRelayState(to: RelayClientState, from: RelayClientState): void {
    if (to === 'connected') {
      if (this.#everConnected) this.#reconnects++;
      this.#everConnected = true;
    }
    // A dial or a login that failed (a dropped connection is counted by 'disconnected').
    const code = this.#source.relay.lastError?.code;
    if ((from === 'dialing' || from === 'authenticating') && (to === 'backing-off' || to === 'fatal') && code !== undefined) {
      bump(this.#connectFailures, code);
      this.#sawError(code);
    }
  }

  #sawError(code: ErrorCode): void {
    this.#lastErrorAt.set(code, this.#now());
  }

  #register(registry: Registry): void {
    const source = this.#source;
    const perResource = (read: (r: ResourceMetrics) => number) => (): Samples => source.resources().map((r) => [{ kind: r.kind, resource: r.name }, read(r)]);
    const resourceLabels = ['kind', 'resource'];

    new Gauge({ name: 'wicket_build_info', help: 'Always 1; the version label is the release this agent runs.', labelNames: ['version'], registers: [registry] }).set({ version: WICKET_VERSION }, 1);
    gaugeOf(registry, 'wicket_agent_ready', '1 when connected to the relay with every outlet registered and every inlet listening (GET /readyz).', [], () => [[{}, source.unreadiness() === undefined ? 1 : 0]]);
    gaugeOf(registry, 'wicket_agent_relay_connection_state', `The relay connection's state: 1 for the current one of ${RELAY_STATES.join(', ')}.`, ['state'], () =>
      RELAY_STATES.map((state) => [{ state }, source.relay.state === state ? 1 : 0]),
    );
    counterOf(registry, 'wicket_agent_relay_reconnects_total', 'Times the agent authenticated to the relay again after having been connected.', [], () => [[{}, this.#reconnects]]);
    counterOf(registry, 'wicket_agent_relay_connect_failures_total', 'Relay dials and logins that failed, by error code.', ['code'], () => byCode(this.#connectFailures));
    counterOf(registry, 'wicket_agent_relay_disconnects_total', 'Authenticated relay connections that dropped, by error code.', ['code'], () => byCode(this.#disconnects));
    counterOf(registry, 'wicket_agent_handshake_failures_total', 'Secure channel handshakes that failed (either role), by error code.', ['code'], () => byCode(this.#handshakeFailures));
    gaugeOf(registry, 'wicket_agent_last_error_timestamp_seconds', 'When each error code was last seen (relay failures, failed handshakes, channels closed by an error), Unix seconds.', ['code'], () =>
      [...this.#lastErrorAt].map(([code, at]) => [{ code }, at / 1000]),
    );
    gaugeOf(registry, 'wicket_agent_channels_open', 'Secure channels open now, by the inlet or outlet they serve.', resourceLabels, () => {
      const open = new Map<string, { labels: Labels; count: number }>();
      for (const r of source.resources()) open.set(`${r.kind}/${r.name}`, { labels: { kind: r.kind, resource: r.name }, count: 0 });
      for (const session of source.sessions.all()) {
        const entry = open.get(`${session.role === 'initiator' ? 'inlet' : 'outlet'}/${session.resource}`);
        if (entry !== undefined && session.isOpen) entry.count++;
      }
      return [...open.values()].map(({ labels, count }) => [labels, count]);
    });
    gaugeOf(registry, 'wicket_agent_streams_open', 'Streams open now (app or target connections bridged), by inlet or outlet.', resourceLabels, perResource((r) => r.traffic.open));
    counterOf(registry, 'wicket_agent_streams_total', 'Streams bridged since the inlet or outlet was made.', resourceLabels, perResource((r) => r.traffic.streams));
    counterOf(registry, 'wicket_agent_sent_bytes_total', 'Bytes read from local connections and sent to the peer, by inlet or outlet.', resourceLabels, perResource((r) => r.traffic.bytesSent));
    counterOf(registry, 'wicket_agent_received_bytes_total', 'Bytes received from the peer and written to local connections, by inlet or outlet.', resourceLabels, perResource((r) => r.traffic.bytesReceived));
  }
}
