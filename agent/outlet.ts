import { readFileSync } from 'node:fs';
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { type ConnectionOptions, connect as tlsConnect, type TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { type ErrorCode, isWicketError, wicketError } from '../protocol/errors.js';
import type { Identifier } from '../protocol/identity.js';
import { TARGET_CONNECT_TIMEOUT_MS } from '../protocol/limits.js';
import type { MuxStream } from '../protocol/mux/index.js';
import { parsePolicy, type Policy } from '../protocol/policy.js';
import type { GatewayServer, GatewayStatus } from './gateway/azure-gateway.js';
import { formatHostPort, type HostPort, type OutletSpec, outletSpecToJson } from './node-config.js';
import type { ChannelContext } from './channel-context.js';
import { ConnectionShares, type ShareRefusal } from './connection-shares.js';
import { ResourceTraffic, type TrafficTotals } from './resource-traffic.js';
import { SecureSession } from './secure-session.js';
import { type BridgeStatus, resetSocket, StreamBridge } from './stream-bridge.js';

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

export interface OutletStatus {
  name: string;
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

interface TargetConnection {
  socket: Socket;
  /** RST on the TCP connection under it (a TLS socket cannot resetAndDestroy itself). */
  reset: () => void;
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
   */
  accept(circuit: number, opener: Identifier): void {
    if (this.#stopped) {
      this.#context.relay.closeCircuit(circuit, 'WICKET_ERR_RELAY_NAME_UNKNOWN');
      return;
    }
    const session = new SecureSession({
      role: 'responder',
      circuit,
      port: this.#context.portFor(circuit),
      channel: this.#context.channelOptions(this.spec.relay, opener),
      policy: this.#policy,
      logger: this.#log,
      resource: this.spec.name,
    });
    this.#sessions.add(session);
    session.once('closed', () => this.#sessions.delete(session));
    session.on('stream', (stream: MuxStream) => this.#serve(stream, session));
    this.#context.sessions.add(session);
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
    this.#connectTarget(to).then(
      (connected) => {
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

  /** TCP (then TLS) to the fixed target, within TARGET_CONNECT_TIMEOUT_MS. */
  #connectTarget(to: HostPort): Promise<TargetConnection> {
    const { host, port } = to;
    return new Promise<TargetConnection>((resolve, reject) => {
      const raw = netConnect({ host, port, allowHalfOpen: true, noDelay: true });
      this.#connecting.add(raw);
      const reset = () => resetSocket(raw);
      let settled = false;
      const finish = (err: Error | undefined, conn?: TargetConnection) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.#connecting.delete(raw);
        if (err !== undefined) {
          raw.destroy();
          reject(err);
        } else resolve(conn!);
      };
      const timer = setTimeout(
        () => finish(wicketError('WICKET_ERR_TARGET_UNREACHABLE', `${formatHostPort(to)} did not answer within ${TARGET_CONNECT_TIMEOUT_MS} ms`)),
        TARGET_CONNECT_TIMEOUT_MS,
      );
      raw.once('error', (err: NodeJS.ErrnoException) => {
        finish(wicketError('WICKET_ERR_TARGET_UNREACHABLE', `${formatHostPort(to)}: ${err.code ?? err.message}`));
      });
      raw.once('connect', () => {
        if (!this.spec.tls) {
          finish(undefined, { socket: raw, reset });
          return;
        }
        // SNI carries host names only; an IP target is still checked against the certificate's IP SANs.
        const checkedName = this.spec.tlsServername ?? host;
        const servername = isIP(checkedName) === 0 ? checkedName : undefined;
        const secure: TLSSocket = tlsConnect({
          socket: raw,
          host: checkedName,
          ...(servername !== undefined ? { servername } : {}),
          ...(this.#ca !== undefined ? { ca: this.#ca } : {}),
          rejectUnauthorized: true,
          allowHalfOpen: true,
        } as ConnectionOptions);
        secure.once('error', (err: NodeJS.ErrnoException) => {
          finish(wicketError('WICKET_ERR_TLS_TARGET', `${formatHostPort(to)}: ${err.code ?? err.message}`));
        });
        secure.once('secureConnect', () => {
          // rejectUnauthorized already refused a bad chain or name; this is the second belt.
          if (!secure.authorized) {
            finish(wicketError('WICKET_ERR_TLS_TARGET', `${formatHostPort(to)}: ${String(secure.authorizationError)}`));
            return;
          }
          finish(undefined, { socket: secure, reset: () => { resetSocket(raw); secure.destroy(); } });
        });
      });
    });
  }

  status(): OutletStatus {
    const gateway = this.#gateway?.status();
    const status: OutletStatus = {
      name: this.spec.name,
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
