import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { type ErrorCode, type WicketError, wicketError } from '../protocol/errors.js';
import { MAX_NODE_RESOURCES } from '../protocol/limits.js';
import { WICKET_VERSION } from '../protocol/version.js';
import type { SecureChannelOptions } from '../protocol/secure-channel/index.js';
import type { NodeConfigFile } from './config-file.js';
import { persistResourceChanges } from './config-file-handler.js';
import { type ControlHandler, type ControlOp, ControlServer } from './control-server.js';
import type { GatewayHost, GatewayServer } from './gateway/azure-gateway.js';
import type { UsageLedger } from './gateway/usage-ledger.js';
import { Inlet, type InletStatus } from './inlet.js';
import type { MetricsServer } from './metrics-server.js';
import {
  type HostPort,
  type InletSpec,
  type NodeConfig,
  type OutletSpec,
  parseName,
  validateInletSpec,
  validateOutletSpec,
} from './node-config.js';
import type { LastError } from './last-error.js';
import { Outlet, type OutletStatus } from './outlet.js';
import { channelContextFor, type ChannelContext } from './channel-context.js';
import { StandbyRelay, type StandbyStatus } from './standby-relay.js';
import type { ResourceMetrics } from './agent-metrics.js';
import { RelayNameAcks, unreadiness } from './node-readiness.js';
import { type IncomingCircuit, RelayClient, type RelayClientState } from './relay-client.js';
import type { CircuitPort, SessionStatus } from './secure-session.js';
import { SessionTable } from './session-table.js';
import type { BridgeStatus } from './stream-bridge.js';
import type { Vault } from './vault.js';

// The agent node: one relay connection (and with `outletRelays: 2` a standby one its outlets are
// registered on too, standby-relay.ts), and the inlets and outlets riding on it, driven by the
// node config at start and by the local control socket while running.
//
// Wiring: the relay client's circuit events go to the SessionTable (by circuit), its 'incoming'
// to the outlet serving that relay name, its 'revoked' to every channel with that peer (so a
// revocation bites here too, not only at the relay), its 'drain' to every channel's mux. Every
// handshake consults the relay client's revoked set and is held to the identity the relay joined
// the circuit to.
//
// Events: 'ready' (first time connected with every configured outlet registered), 'fatal' (err).

export interface AgentNodeOptions {
  vault: Vault;
  logger: Logger;
  config?: NodeConfig;
  insecure?: boolean;
  now?: () => number;
  /** Serve the control socket (default true; tests of the node alone may turn it off). */
  control?: boolean;
  /** Where the control socket's inlet/outlet create/delete are recorded, to last across restarts. */
  configFile?: NodeConfigFile;
  /** Serve Prometheus metrics (GET /metrics), /healthz and /readyz here. */
  metrics?: HostPort;
}

export interface NodeStatus {
  /** This build's release (protocol/version.ts). */
  version: string;
  identifier: string;
  /** Where the metrics are served, when they are. */
  metrics?: string;
  /** `url`: the relay it is on (or dials next); `relays`: every relay it knows (its ticket's, or the last list a relay sent), in dial order. */
  relay: { url: string; relays: string[]; state: RelayClientState; connected: boolean; revokedPeers: number; lastError?: LastError };
  /** With `outletRelays: 2`: the second connection the outlets are registered on (standby-relay.ts). */
  standbyRelay?: StandbyStatus;
  inlets: InletStatus[];
  outlets: OutletStatus[];
  channels: SessionStatus[];
  streams: BridgeStatus[];
}

export class AgentNode extends EventEmitter {
  readonly relay: RelayClient;
  readonly identifier: string;
  readonly #log: Logger;
  readonly #home: string;
  readonly #now: () => number;
  readonly #sessions = new SessionTable();
  readonly #inlets = new Map<string, Inlet>();
  readonly #outlets = new Map<string, Outlet>();
  /** relay name → outlet serving it. */
  readonly #served = new Map<string, Outlet>();
  readonly #context: ChannelContext;
  #control: ControlServer | undefined;
  #metricsServer: MetricsServer | undefined;
  /** Every metric of this node (its own and its gateways'): made with --metrics or the first gateway outlet. */
  #registry: Promise<Registry> | undefined;
  /** Which outlet names the relay acknowledged on this connection (readiness). */
  readonly #acks: RelayNameAcks;
  /** The usage ledger of the node's gateway outlets: opened with the first of them. */
  #ledger: UsageLedger | undefined;
  /** With `outletRelays: 2`: the second relay connection the outlets' names are registered on too. */
  readonly #standby: StandbyRelay | undefined;
  #stopped = false;
  #ready = false;

  private constructor(o: AgentNodeOptions) {
    super();
    this.#log = o.logger;
    this.#home = o.vault.home;
    this.#now = o.now ?? Date.now;
    this.relay = new RelayClient({ vault: o.vault, logger: o.logger, insecure: o.insecure ?? false, now: this.#now });
    this.identifier = this.relay.identifier;
    this.#acks = new RelayNameAcks(this.relay, (name) => this.#served.has(name));
    const enrollment = o.vault.requireEnrollment();
    const identity = o.vault.identity();
    const relay = this.relay;
    const channels = { logger: o.logger, identity, authorityPublicKey: enrollment.authorityPublicKey, now: this.#now };
    this.#context = channelContextFor({ ...channels, relay, sessions: this.#sessions, isRevoked: (identifier) => relay.revoked.isRevoked(identifier) });
    if (o.config?.outletRelays === 2) {
      this.#standby = new StandbyRelay({ vault: o.vault, insecure: o.insecure ?? false, primary: relay, channels, serve: (incoming, context) => this.#incoming(incoming, context) });
    }
    relay.on('data', (circuit: number, payload: Buffer) => this.#sessions.data(circuit, payload));
    relay.on('circuit-closed', (circuit: number, code: ErrorCode) => this.#sessions.circuitClosed(circuit, code));
    relay.on('drain', () => this.#sessions.drained());
    relay.on('incoming', (incoming: IncomingCircuit) => this.#incoming(incoming));
    relay.on('revoked', (identifier: string) => {
      const closed = this.#sessions.revoked(identifier);
      if (closed > 0) this.#log.warn({ peer: identifier, channels: closed, code: 'WICKET_ERR_REVOKED' }, 'closed channels with a revoked peer');
    });
    relay.on('disconnected', () => this.#sessions.disconnected());
    relay.on('connected', () => void this.#onConnected());
    relay.on('registration-failed', (name: string, err: WicketError) => {
      this.#log.error({ relayName: name, code: err.code }, `outlet name not registered: ${err.message}`);
    });
    relay.on('fatal', (err: WicketError) => this.emit('fatal', err));
  }

  /** Starts the node: control socket, configured resources, relay connection. */
  static async start(o: AgentNodeOptions): Promise<AgentNode> {
    const node = new AgentNode(o);
    try {
      if (o.control !== false) {
        const handler = o.configFile === undefined ? node.#controlHandler() : persistResourceChanges(node.#controlHandler(), o.configFile);
        node.#control = await ControlServer.listen(o.vault.controlSocketPath, handler, o.logger);
      }
      if (o.metrics !== undefined) {
        const { MetricsServer } = await import('./metrics-server.js');
        node.#metricsServer = await MetricsServer.listen(o.metrics, await node.#metricsRegistry(), () => node.unreadiness());
      }
      // Inlets listen before the relay is up: apps can connect at once and wait for the path.
      for (const spec of o.config?.inlets ?? []) await node.addInlet(spec);
      for (const spec of o.config?.outlets ?? []) await node.addOutlet(spec);
      node.relay.start();
      node.#standby?.start();
    } catch (err) {
      await node.stop();
      throw err;
    }
    return node;
  }

  get isReady(): boolean {
    return this.#ready;
  }

  async addInlet(spec: InletSpec): Promise<{ name: string; address: string }> {
    this.#checkCapacity();
    if (this.#inlets.has(spec.name)) throw wicketError('WICKET_ERR_RESOURCE_EXISTS', `an inlet named ${spec.name} already exists`);
    const inlet = new Inlet(spec, this.#context);
    this.#inlets.set(spec.name, inlet);
    try {
      await inlet.listen();
    } catch (err) {
      this.#inlets.delete(spec.name);
      await inlet.stop();
      throw err;
    }
    return { name: spec.name, address: inlet.address };
  }

  async deleteInlet(name: string): Promise<void> {
    const inlet = this.#inlets.get(name);
    if (inlet === undefined) throw wicketError('WICKET_ERR_RESOURCE_UNKNOWN', `no inlet named ${name}`);
    this.#inlets.delete(name);
    await inlet.stop();
    this.#log.info({ inlet: name }, 'inlet deleted');
  }

  /**
   * Adds an outlet and registers its relay name. While connected, a refusal
   * (WICKET_ERR_RELAY_NAME_FORBIDDEN) fails the call and the outlet is not kept; while
   * disconnected, the name is registered on connect.
   */
  async addOutlet(spec: OutletSpec): Promise<{ name: string; relay: string; warning?: string }> {
    this.#checkNewOutlet(spec);
    const gateway = spec.gateway === undefined ? undefined : await this.#openGateway(spec);
    let outlet: Outlet;
    try {
      // Checked again: another create may have taken the name while the gateway opened.
      this.#checkNewOutlet(spec);
      outlet = new Outlet(spec, this.#context, gateway);
    } catch (err) {
      await gateway?.close();
      throw err;
    }
    this.#outlets.set(spec.name, outlet);
    this.#served.set(spec.relay, outlet);
    // Checked while the name registers; a target that is down is a warning, not a refusal. While the
    // node starts (relay not dialled yet) nobody waits for the answer: it is logged, and a target
    // that never answers must not hold back the outlets after it.
    const starting = this.relay.state === 'idle';
    const checked = outlet.checkTarget();
    try {
      await this.#acks.register(spec.relay);
    } catch (err) {
      this.#outlets.delete(spec.name);
      this.#served.delete(spec.relay);
      outlet.stop();
      throw err;
    }
    this.#standby?.register(spec.relay);
    const failure = starting ? undefined : await checked;
    this.#log.info({ outlet: spec.name, relayName: spec.relay }, 'outlet added');
    return { name: spec.name, relay: spec.relay, ...(failure !== undefined ? { warning: `outlet ${spec.name} created, but its target check failed: ${failure.message}` } : {}) };
  }

  async deleteOutlet(name: string): Promise<void> {
    const outlet = this.#outlets.get(name);
    if (outlet === undefined) throw wicketError('WICKET_ERR_RESOURCE_UNKNOWN', `no outlet named ${name}`);
    this.#outlets.delete(name);
    this.#served.delete(outlet.spec.relay);
    this.#acks.forget(outlet.spec.relay);
    this.#standby?.unregister(outlet.spec.relay);
    outlet.stop();
    try {
      await this.relay.unregister(outlet.spec.relay);
    } catch (err) {
      this.#log.warn({ outlet: name, err: (err as Error).message }, 'unregistering the relay name failed; the relay drops it with the connection');
    }
    this.#log.info({ outlet: name }, 'outlet deleted');
  }

  inlets(): Record<string, unknown>[] {
    return [...this.#inlets.values()].map((i) => ({ ...i.toJson(), ...i.status() }));
  }

  outlets(): Record<string, unknown>[] {
    return [...this.#outlets.values()].map((o) => ({ ...o.toJson(), ...o.status() }));
  }

  status(): NodeStatus {
    const lastError = this.relay.lastError;
    const relay: NodeStatus['relay'] = {
      url: this.relay.relayUrl,
      relays: this.relay.relayUrls,
      state: this.relay.state,
      connected: this.relay.connected,
      revokedPeers: this.relay.revoked.size,
    };
    if (!this.relay.connected && lastError !== undefined) relay.lastError = lastError;
    const status: NodeStatus = {
      version: WICKET_VERSION,
      identifier: this.identifier,
      relay,
      inlets: [...this.#inlets.values()].map((i) => i.status()),
      outlets: [...this.#outlets.values()].map((o) => o.status()),
      channels: this.#sessions.all().map((s) => s.status()),
      streams: [...[...this.#inlets.values()].flatMap((i) => i.streams()), ...[...this.#outlets.values()].flatMap((o) => o.streams())],
    };
    if (this.#metricsServer !== undefined) status.metrics = this.#metricsServer.address;
    if (this.#standby !== undefined) status.standbyRelay = this.#standby.status();
    return status;
  }

  /** Why the node is not ready for traffic now (node-readiness.ts), or undefined when it is. */
  unreadiness(): string | undefined {
    return unreadiness({ stopping: this.#stopped, relay: this.relay, acks: this.#acks, inlets: this.#inlets.values(), outlets: this.#outlets.values() });
  }

  /** Clean shutdown: stop listening, reset live streams, close channels, leave the relay. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await this.#control?.close();
    await Promise.all([...this.#inlets.values()].map((i) => i.stop()));
    for (const outlet of this.#outlets.values()) outlet.stop();
    this.#sessions.closeAll('WICKET_ERR_CHANNEL_CLOSED', 'node stopping');
    await this.relay.stop();
    await this.#standby?.stop();
    await this.#metricsServer?.close();
    // After the outlets: their last requests' rows are in the queue this flushes.
    this.#ledger?.close();
    this.#log.info('node stopped');
  }

  /**
   * The gateway's modules (undici, @azure/identity, prom-client, SQLite, the tokenizer) are loaded
   * only by a node that runs a gateway outlet: in a plain TCP agent their ~10 MB of heap would
   * make every major GC on the data path slower (measured: bulk through a plain inlet fell from
   * about 300 to about 190 MB/s while they were loaded at start).
   */
  async #openGateway(spec: OutletSpec): Promise<GatewayServer> {
    const [{ AzureGateway }, { USAGE_LEDGER_FILE, UsageLedger }] = await Promise.all([import('./gateway/azure-gateway.js'), import('./gateway/usage-ledger.js')]);
    const home = this.#home;
    const host: GatewayHost = {
      home,
      ledger: (retentionDays) => {
        this.#ledger ??= UsageLedger.open(join(home, USAGE_LEDGER_FILE), { retentionDays, logger: this.#log.child({ component: 'ledger' }) });
        this.#ledger.retainAtLeast(retentionDays);
        return this.#ledger;
      },
      registry: await this.#metricsRegistry(),
      logger: this.#log,
    };
    return AzureGateway.open(spec.name, spec.gateway!, host);
  }

  #metricsRegistry(): Promise<Registry> {
    this.#registry ??= (async () => {
      const [{ Registry }, { AgentMetrics }] = await Promise.all([import('prom-client'), import('./agent-metrics.js')]);
      const registry = new Registry();
      const resources = (): ResourceMetrics[] => [
        ...[...this.#inlets.values()].map((i) => ({ kind: 'inlet' as const, name: i.spec.name, traffic: i.traffic() })),
        ...[...this.#outlets.values()].map((o) => ({ kind: 'outlet' as const, name: o.spec.name, traffic: o.traffic() })),
      ];
      new AgentMetrics(registry, { relay: this.relay, sessions: this.#sessions, resources, unreadiness: () => this.unreadiness() });
      return registry;
    })();
    return this.#registry;
  }

  #checkNewOutlet(spec: OutletSpec): void {
    this.#checkCapacity();
    if (this.#outlets.has(spec.name)) throw wicketError('WICKET_ERR_RESOURCE_EXISTS', `an outlet named ${spec.name} already exists`);
    if (this.#served.has(spec.relay)) throw wicketError('WICKET_ERR_RESOURCE_EXISTS', `outlet ${this.#served.get(spec.relay)!.spec.name} already serves relay name ${spec.relay}`);
  }

  #checkCapacity(): void {
    if (this.#stopped) throw wicketError('WICKET_ERR_CONTROL', 'the node is stopping');
    if (this.#inlets.size + this.#outlets.size >= MAX_NODE_RESOURCES) {
      throw wicketError('WICKET_ERR_ARGUMENT', `a node runs at most ${MAX_NODE_RESOURCES} inlets and outlets`);
    }
  }

  /** A circuit for one of our outlets, over the node's relay connection or its standby's (`context`). */
  #incoming(incoming: IncomingCircuit, context: ChannelContext = this.#context): void {
    const outlet = this.#served.get(incoming.name);
    if (outlet === undefined) {
      // Unregistered meanwhile (or a confused relay): refuse the circuit.
      context.relay.closeCircuit(incoming.circuit, 'WICKET_ERR_RELAY_NAME_UNKNOWN');
      return;
    }
    outlet.accept(incoming.circuit, incoming.peer, context);
  }

  /**
   * Ready = connected with every outlet's name registered, so a peer can reach us the moment we
   * say so. The relay client re-registers names itself on connect; registering again here is
   * idempotent at the relay and gives us the acknowledgement to wait for (on every connection:
   * GET /readyz counts this connection's). A refused name is logged (registration-failed) and
   * does not hold 'ready' back; /readyz reports it.
   */
  async #onConnected(): Promise<void> {
    await Promise.allSettled([...this.#served.keys()].map((name) => this.#acks.register(name)));
    if (this.#ready || this.#stopped || !this.relay.connected) return;
    this.#ready = true;
    this.emit('ready');
  }

  #controlHandler(): ControlHandler {
    const argName = (args: Record<string, unknown>): string => parseName(args.name, 'name');
    const handlers: Record<ControlOp, (args: Record<string, unknown>) => unknown> = {
      status: () => this.status(),
      'inlet.create': (args) => this.addInlet(validateInletSpec(args, 'inlet')),
      'inlet.list': () => this.inlets(),
      'inlet.delete': async (args) => {
        const name = argName(args);
        await this.deleteInlet(name);
        return { name };
      },
      'outlet.create': (args) => this.addOutlet(validateOutletSpec(args, 'outlet')),
      'outlet.list': () => this.outlets(),
      'outlet.delete': async (args) => {
        const name = argName(args);
        await this.deleteOutlet(name);
        return { name };
      },
    };
    return (op, args) => handlers[op](args);
  }
}
