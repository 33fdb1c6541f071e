import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import { WICKET_VERSION } from '../protocol/version.js';
import type { LiveConnections } from './live-connections.js';
import { FRAME_DROP_REASONS, PAUSE_CAUSES, PEER_DROP_REASONS, type HandshakeKind, type RelayCounters } from './relay-counters.js';
import type { Router } from './router.js';

// The relay's Prometheus registry, served at GET /metrics on its own port (relay-http.ts). Every
// value is read at scrape time: gauges from the router and the live connections, counters from
// RelayCounters' plain numbers. Nothing on the data path calls prom-client.

export interface RelayMetricsSources {
  readonly counters: RelayCounters;
  readonly connections: LiveConnections;
  readonly router: Router;
  /** The relay's mesh, once it has one (relays on a shared store). */
  readonly mesh: () => { readonly linkCount: number; readonly circuitCount: number } | undefined;
}

type Labels<T extends string> = Partial<Record<T, string>>;

/** A counter whose value is someone else's plain number(s), copied in at each scrape. */
function counterOf<T extends string>(registry: Registry, name: string, help: string, labelNames: readonly T[], read: () => Iterable<[Labels<T>, number]>): void {
  new Counter<T>({
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

function gaugeOf(registry: Registry, name: string, help: string, read: () => number): void {
  new Gauge({
    name,
    help,
    registers: [registry],
    collect() {
      this.set(read());
    },
  });
}

function* entriesOf<K extends string>(label: string, record: Readonly<Record<K, number>>): Iterable<[Record<string, string>, number]> {
  for (const [key, value] of Object.entries(record) as [K, number][]) yield [{ [label]: key }, value];
}

export function relayMetricsRegistry({ counters, connections, router, mesh }: RelayMetricsSources): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  new Gauge({ name: 'wicket_build_info', help: 'Always 1; the version label is the release this relay runs.', labelNames: ['version'], registers: [registry] }).set({ version: WICKET_VERSION }, 1);

  gaugeOf(registry, 'wicket_relay_agents_connected', 'Agent connections authenticated now.', () => connections.all().filter((peer) => peer.isOpen).length);
  gaugeOf(registry, 'wicket_relay_connections', 'WebSocket connections open now, authenticated or not.', () => connections.size);
  gaugeOf(registry, 'wicket_relay_circuits_open', 'Circuits open now (each joins one inlet to one outlet).', () => router.circuitCount);
  gaugeOf(registry, 'wicket_relay_names_served', 'Relay names with at least one outlet registered now.', () => router.nameCount);

  gaugeOf(registry, 'wicket_relay_mesh_links', 'Links open now to other relays of the project (0 for a relay on its own).', () => mesh()?.linkCount ?? 0);
  gaugeOf(registry, 'wicket_relay_mesh_circuits', 'Circuits open now whose other end is on another relay.', () => mesh()?.circuitCount ?? 0);

  counterOf(registry, 'wicket_relay_forwarded_bytes_total', 'Bytes of DATA frames passed on to their destination (headers included).', [], () => [[{}, counters.bytesForwarded]]);
  counterOf(registry, 'wicket_relay_forwarded_frames_total', 'DATA frames passed on to their destination.', [], () => [[{}, counters.framesForwarded]]);
  counterOf(registry, 'wicket_relay_dropped_frames_total', `DATA frames not passed on, by reason (${FRAME_DROP_REASONS.join(', ')}).`, ['reason'], () => entriesOf('reason', counters.framesDropped()));
  counterOf(registry, 'wicket_relay_backpressure_pauses_total', `Times flow control stopped reading a connection, by cause (${PAUSE_CAUSES.join(', ')}).`, ['cause'], () => entriesOf('cause', counters.pauses()));
  counterOf(registry, 'wicket_relay_peers_dropped_total', `Connections cut for not keeping up, by reason (${PEER_DROP_REASONS.join(', ')}).`, ['reason'], () => entriesOf('reason', counters.peersDropped()));
  const outcomes = (kind: HandshakeKind) => () => [...counters.handshakes(kind)].map(([outcome, value]): [Labels<'outcome'>, number] => [{ outcome }, value]);
  counterOf(registry, 'wicket_relay_handshakes_total', 'Agent logins (auth) by outcome: ok, the refusal code, or abandoned.', ['outcome'], outcomes('auth'));
  counterOf(registry, 'wicket_relay_enrollments_total', 'Ticket redemptions (enroll) by outcome: ok, the refusal code, or abandoned.', ['outcome'], outcomes('enroll'));
  counterOf(registry, 'wicket_relay_revocations_applied_total', 'Revocation events applied (connections cut, agents told), by kind (revoke, reinstate).', ['kind'], () => entriesOf('kind', counters.revocations()));
  return registry;
}
