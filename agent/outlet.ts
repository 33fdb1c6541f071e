import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { asWicketError, type ErrorCode, isWicketError, type WicketError, wicketError } from '../protocol/errors.js';
import type { Identifier } from '../protocol/identity.js';
import { TARGET_CHECK_TIMEOUT_MS, TARGET_CONNECT_TIMEOUT_MS } from '../protocol/limits.js';
import type { MuxStream } from '../protocol/mux/index.js';
import { parsePolicy, type Policy } from '../protocol/policy.js';
import type { GatewayServer, GatewayStatus } from './gateway/azure-gateway.js';
import { formatHostPort, type HostPort, type OutletSpec, outletSpecToJson } from './node-config.js';
import type { ChannelContext } from './channel-context.js';
import { ConnectionShares, type ShareRefusal } from './connection-shares.js';
import { ResourceTraffic, type TrafficTotals } from './resource-traffic.js';
import { type LastError, lastErrorOf } from './last-error.js';
import { SecureSession } from './secure-session.js';
import { type BridgeStatus, StreamBridge } from './stream-bridge.js';
import { checkTarget, connectTarget, type TargetSpec } from './target-connect.js';

// An outlet: serves one relay name, accepts channels from peers its `--allow` policy admits, and
// joins each stream to a new connection to ONE fixed target (DESIGN.md property 7: the inlet
// cannot choose a destination — nothing the peer sends names a host or port).
//
// Per stream: take a slot of the outlet's connection limits (in all, and per peer identity across
// its channels: a stream over either is reset with WICKET_ERR_TARGET_BUSY before any descriptor is
// used), pause the stream, connect (TCP, then TLS when --tls, verifying the target's certificate
// against --tls-ca or the system roots, for --tls-servername or the target host), then bridge. A target that cannot be reached resets the stream with
// WICKET_ERR_TARGET_UNREACHABLE, a TLS failure with WICKET_ERR_TLS_TARGET, so the app behind the
// inlet gets a TCP RST rather than an empty clean response.
//
// In gateway mode (spec.gateway) there is no fixed target: each admitted stream is handed to the
// outlet's AzureGateway, which speaks HTTP on it and answers from its backend pool.
//
// State, as `agent status` names it (derived from the relay client and the last target attempt, so
// it cannot go stale): registering (the relay has not acknowledged the name on this connection),
// registered, target-unreachable (registered, but the last connection to the target failed: TCP
// or TLS), name-refused (the credential does not allow the name), stopped. The last error, with its
// time, is kept apart: a refused peer or a failed target connection stays visible after recovery.

export type OutletState = 'registering' | 'registered' | 'target-unreachable' | 'name-refused' | 'stopped';

export interface OutletStatus {
  name: string;
  state: OutletState;
  lastError?: LastError;
  relay: string;
  to: string;
  tls: boolean;
  allow: string;
  channels: number;
  streams: number;
  /** Target connections held (connecting or bridged), against maxConnections. */
  targetConnections: number;
  maxConnections: number;
  maxConnectionsPerPeer: number;
  gateway?: GatewayStatus;
}

export class Outlet {
  readonly spec: OutletSpec;
  readonly #policy: Policy;
  readonly #ca: Buffer | undefined;
  readonly #context: ChannelContext;
  readonly #log: Logger;
  readonly #sessions = new Set<SecureSession>();
  readonly #bridges = new Set<StreamBridge>();
  readonly #connecting = new Set<Socket>();
  readonly #traffic = new ResourceTraffic();
  readonly #shares: ConnectionShares;
  readonly #gateway: GatewayServer | undefined;
  /** Streams refused at a limit since a slot was last freed: one warning per episode, not per stream. */
  #busyRefusals = 0;
  #stopped = false;
  /** The last target connection (or check) failed, and none succeeded since. */
  #targetDown = false;
  #lastError: LastError | undefined;

  /** `gateway`: the outlet's gateway when spec.gateway is set (the node opens it; see AgentNode). */
  constructor(spec: OutletSpec, context: ChannelContext, gateway?: GatewayServer) {
    this.spec = spec;
    this.#policy = parsePolicy(spec.allow);
    this.#context = context;
    this.#log = context.logger.child({ outlet: spec.name, relayName: spec.relay });
    this.#shares = new ConnectionShares(spec.maxConnections, spec.maxConnectionsPerPeer);
    if (spec.tlsCa !== undefined) {
      try {
        this.#ca = readFileSync(spec.tlsCa);
      } catch (err) {
        throw wicketError('WICKET_ERR_ARGUMENT', `--tls-ca ${spec.tlsCa} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      }
    }
    if ((spec.gateway === undefined) !== (gateway === undefined)) throw wicketError('WICKET_ERR_INTERNAL', `outlet ${spec.name}: a gateway outlet needs its gateway, and only it`);
    this.#gateway = gateway;
  }

  /**
   * A circuit from the relay for this outlet's name, opened by `opener`: run the responder side of
   * the handshake, held to that identity (an accomplice's circuit cannot carry a revoked member).
   * `context`: the relay connection it came over (the node's, or its standby's: standby-relay.ts).
   */
  accept(circuit: number, opener: Identifier, context: ChannelContext = this.#context): void {
    if (this.#stopped) {
      context.relay.closeCircuit(circuit, 'WICKET_ERR_RELAY_NAME_UNKNOWN');
      return;
    }
    const session = new SecureSession({
      role: 'responder',
      circuit,
      port: context.portFor(circuit),
      channel: context.channelOptions(this.spec.relay, opener),
      policy: this.#policy,
      logger: this.#log,
      resource: this.spec.name,
    });
    this.#sessions.add(session);
    let opened = false;
    void session.established.then(() => (opened = true), () => undefined);
    session.once('closed', (err: WicketError) => {
      this.#sessions.delete(session);
      // A channel that never opened was refused (policy, revocation, handshake): keep why.
      if (!opened && !this.#stopped) this.#recordError(err);
    });
    session.on('stream', (stream: MuxStream) => this.#serve(stream, session));
    context.sessions.add(session);
    session.start();
  }

  #serve(stream: MuxStream, session: SecureSession): void {
    const peer = session.peer?.identifier;
    if (this.#stopped || peer === undefined) {
      stream.reset('WICKET_ERR_CHANNEL_CLOSED');
      return;
    }
    const refusal = this.#shares.take(peer);
    if (refusal !== undefined) {
      this.#refusedBusy(peer, refusal);
      stream.reset('WICKET_ERR_TARGET_BUSY');
      return;
    }
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      this.#shares.release(peer);
      this.#busyRefusals = 0;
    };
    if (this.#gateway !== undefined) {
      stream.once('close', release);
      this.#gateway.serve(stream, session.peer!);
      return;
    }
    const to = this.spec.to!;
    // Hold the peer's bytes in the mux (its credit window bounds them) until the target answers.
    stream.pause();
    let gone = false;
    const abandon = () => {
      // The peer gave up (or the channel closed) while we were still connecting.
      gone = true;
    };
    stream.once('reset', abandon);
    stream.once('close', abandon);
    connectTarget(this.#target(), TARGET_CONNECT_TIMEOUT_MS, this.#connecting).then(
      (connected) => {
        this.#targetDown = false;
        stream.off('reset', abandon);
        stream.off('close', abandon);
        this.#connecting.delete(connected.socket);
        if (gone || this.#stopped || session.state === 'closed') {
          release();
          connected.reset();
          return;
        }
        if (connected.socket.destroyed) {
          // The target hung up between connecting and now: the stream never gets a clean end.
          release();
          stream.reset('WICKET_ERR_TARGET_UNREACHABLE');
          return;
        }
        const bridge = new StreamBridge(connected.socket, stream, {
          logger: this.#log,
          resource: this.spec.name,
          peer,
          resetSocket: connected.reset,
          onClose: () => {
            this.#bridges.delete(bridge);
            this.#traffic.closed(bridge);
            release();
          },
        });
        this.#bridges.add(bridge);
        stream.resume();
      },
      (err: unknown) => {
        stream.off('reset', abandon);
        stream.off('close', abandon);
        release();
        this.#targetDown = true;
        this.#recordError(isWicketError(err) ? err : wicketError('WICKET_ERR_TARGET_UNREACHABLE', String(err)));
        if (gone) return;
        const code: ErrorCode = isWicketError(err) ? err.code : 'WICKET_ERR_TARGET_UNREACHABLE';
        this.#log.warn({ code, peer, stream: stream.id, target: formatHostPort(to), reason: err instanceof Error ? err.message : String(err) }, 'target connection failed');
        try {
          stream.reset(code);
        } catch {
          // already gone
        }
      },
    );
  }

  #refusedBusy(peer: string, refusal: ShareRefusal): void {
    const limit = refusal === 'peer-full' ? `${this.#shares.maxPerPeer} for this peer` : `${this.#shares.max} in all`;
    const fields = { code: 'WICKET_ERR_TARGET_BUSY', peer, held: this.#shares.of(peer), total: this.#shares.total };
    if (this.#busyRefusals++ === 0) this.#log.warn(fields, `target connection refused: the outlet holds its limit (${limit})`);
    else this.#log.debug(fields, 'target connection refused at the limit');
  }

  #target(): TargetSpec {
    return { to: this.spec.to!, tls: this.spec.tls, servername: this.spec.tlsServername, ca: this.#ca };
  }

  /**
   * Connects to the target once (TCP, and TLS with the name check), as a stream would, and hangs up.
   * A failure is logged, kept as the last error and returned for `outlet create` to print as a
   * warning; the outlet stays (the target may come up later). A gateway outlet checks its first
   * backend's host and port the same way (its other backends are the pool's failover).
   */
  async checkTarget(): Promise<WicketError | undefined> {
    const target = this.#checkedTarget();
    if (target === undefined) return undefined;
    const failure = await checkTarget(target, TARGET_CHECK_TIMEOUT_MS, this.#connecting);
    if (this.#stopped) return undefined;
    this.#targetDown = failure !== undefined;
    if (failure === undefined) return undefined;
    this.#recordError(failure);
    this.#log.warn({ code: failure.code, target: formatHostPort(target.to) }, `the outlet's target does not answer as it should (streams will fail until it does): ${lastErrorOf(failure).message}`);
    return failure;
  }

  #checkedTarget(): TargetSpec | undefined {
    if (this.spec.to !== undefined) return this.#target();
    const backend = this.spec.gateway?.backends[0];
    if (backend === undefined) return undefined;
    const url = new URL(backend.url);
    const tls = url.protocol === 'https:';
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    let ca: Buffer | undefined;
    try {
      ca = backend.tlsCa === undefined ? undefined : readFileSync(backend.tlsCa);
    } catch {
      return undefined; // the gateway reports an unreadable CA file itself, naming its field
    }
    return { to: { host, port: Number(url.port || (tls ? 443 : 80)) }, tls, ca };
  }

  #recordError(err: WicketError): void {
    this.#lastError = lastErrorOf(asWicketError(err));
  }

  #state(): OutletState {
    if (this.#stopped) return 'stopped';
    const name = this.#context.relay.servedNames.state(this.spec.relay);
    if (name === 'refused') return 'name-refused';
    if (name !== 'registered') return 'registering';
    return this.#targetDown ? 'target-unreachable' : 'registered';
  }

  status(): OutletStatus {
    const gateway = this.#gateway?.status();
    const refusal = this.#context.relay.servedNames.refusal(this.spec.relay);
    const lastError = refusal !== undefined ? lastErrorOf(refusal.error, refusal.at) : this.#lastError;
    const status: OutletStatus = {
      name: this.spec.name,
      state: this.#state(),
      ...(lastError !== undefined ? { lastError } : {}),
      relay: this.spec.relay,
      to: this.spec.to !== undefined ? formatHostPort(this.spec.to) : `gateway: ${(gateway?.backends ?? []).map((b) => b.name).join(', ')}`,
      tls: this.spec.tls,
      allow: this.spec.allow,
      channels: [...this.#sessions].filter((s) => s.isOpen).length,
      streams: this.#bridges.size,
      targetConnections: this.#shares.total,
      maxConnections: this.#shares.max,
      maxConnectionsPerPeer: this.#shares.maxPerPeer,
    };
    if (gateway !== undefined) status.gateway = gateway;
    return status;
  }

  /** Streams and bytes bridged to the target since the outlet was made (metrics; not gateway streams). */
  traffic(): TrafficTotals {
    return this.#traffic.totals(this.#bridges);
  }

  streams(): BridgeStatus[] {
    return [...this.#bridges].map((b) => b.status());
  }

  toJson(): Record<string, unknown> {
    return outletSpecToJson(this.spec);
  }

  /** Deleted or node stopping: every channel closed (streams reset), pending connects dropped. */
  stop(code: ErrorCode = 'WICKET_ERR_CHANNEL_CLOSED'): void {
    this.#stopped = true;
    for (const socket of this.#connecting) socket.destroy();
    this.#connecting.clear();
    for (const bridge of [...this.#bridges]) bridge.abort(code, 'outlet stopped');
    for (const session of [...this.#sessions]) session.close(code, `outlet ${this.spec.name} stopped`);
    void this.#gateway?.close();
  }
}
