import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { asWicketError, type ErrorCode, type WicketError, wicketError } from '../protocol/errors.js';
import { INLET_CHANNEL_RETRY_MS, INLET_CHANNEL_WAIT_MS, MAX_OPEN_AVOID } from '../protocol/limits.js';
import type { MuxStream } from '../protocol/mux/index.js';
import { parsePolicy, type Policy } from '../protocol/policy.js';
import { formatHostPort, type HostPort, type InletSpec, inletSpecToJson } from './node-config.js';
import type { ChannelContext } from './channel-context.js';
import { ResourceTraffic, type TrafficTotals } from './resource-traffic.js';
import { type LastError, lastErrorOf } from './last-error.js';
import { SecureSession } from './secure-session.js';
import { type BridgeStatus, resetSocket, StreamBridge } from './stream-bridge.js';

// An inlet: listens on a local address; each accepted TCP connection becomes one stream on the
// inlet's secure channel to the outlet serving `--via NAME`.
//
// One channel per inlet–outlet pair (DESIGN.md): the inlet keeps one session and opens a stream
// on it per connection. When there is none (first use, the outlet went away, the relay restarted)
// the first connection starts one and later ones wait for the same attempt. While the path is not
// there (relay away, name not registered yet) the attempt retries every INLET_CHANNEL_RETRY_MS; a
// connection that cannot get a channel within INLET_CHANNEL_WAIT_MS is reset. When the outlet the
// relay picked is one this inlet refuses (its policy, revoked, not the registered identity), the
// attempt asks again at once, telling the relay to skip it: another outlet of the name may serve
// (HA with one misconfigured member). When none is left, or for errors that retrying cannot fix
// (a bad credential), the waiting connections fail at once.
//
// The listener stays up while the relay is away, so apps keep connecting to the same port and new
// connections work as soon as the path is back.
//
// State, as `agent status` names it (derived, so it cannot go stale): starting (not listening yet),
// listening (no channel, none being made), connecting, open, refused (the last attempt ended in a
// refusal: this inlet's policy, the outlet's, a revoked or mismatched peer), unreachable (the last
// attempt found no path: relay away, name not registered, timeout), stopped. The last error, with
// its time, stays visible after the channel recovers.

export type InletState = 'starting' | 'listening' | 'connecting' | 'open' | 'refused' | 'unreachable' | 'stopped';

/** Refusals of one particular outlet: ask the relay for another one of the name. */
const REFUSED_OUTLET: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['WICKET_ERR_POLICY_DENIED', 'WICKET_ERR_REVOKED', 'WICKET_ERR_PEER_MISMATCH']);

/** Failures that mean someone refused this channel, rather than that there was no path to it. */
const REFUSALS: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  ...REFUSED_OUTLET,
  'WICKET_ERR_CREDENTIAL_ISSUER',
  'WICKET_ERR_CREDENTIAL_SIGNATURE',
  'WICKET_ERR_CREDENTIAL_SUBJECT',
  'WICKET_ERR_CREDENTIAL_EXPIRED',
]);

/** Errors that mean "the path is not there yet": worth another attempt within the wait. */
const RETRYABLE: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'WICKET_ERR_RELAY_NAME_UNKNOWN',
  'WICKET_ERR_RELAY_UNREACHABLE',
  'WICKET_ERR_RELAY_TIMEOUT',
  'WICKET_ERR_RELAY_OVERLOADED',
  'WICKET_ERR_CIRCUIT_CLOSED',
  'WICKET_ERR_CHANNEL_CLOSED',
  'WICKET_ERR_HANDSHAKE_TIMEOUT',
]);

export interface InletStatus {
  name: string;
  state: InletState;
  lastError?: LastError;
  address: string;
  via: string;
  allow: string;
  channel: 'open' | 'connecting' | 'none';
  peer?: string;
  streams: number;
  waiting: number;
}

export class Inlet {
  readonly spec: InletSpec;
  readonly #policy: Policy;
  readonly #context: ChannelContext;
  readonly #log: Logger;
  readonly #server: Server;
  readonly #bridges = new Set<StreamBridge>();
  readonly #waiting = new Set<Socket>();
  readonly #traffic = new ResourceTraffic();
  #session: SecureSession | undefined;
  #attempt: Promise<SecureSession> | undefined;
  /** The attempt keeps going while any waiting connection still has time left. */
  #attemptDeadline = 0;
  #bound: HostPort | undefined;
  #stopped = false;
  #lastError: LastError | undefined;
  /** How the last channel attempt failed, until one succeeds. */
  #failedAs: 'refused' | 'unreachable' | undefined;

  constructor(spec: InletSpec, context: ChannelContext) {
    this.spec = spec;
    this.#policy = parsePolicy(spec.allow);
    this.#context = context;
    this.#log = context.logger.child({ inlet: spec.name, via: spec.via });
    // allowHalfOpen: the app's FIN ends only its direction; the response keeps flowing back.
    this.#server = createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true }, (socket) => this.#accept(socket));
  }

  /** Listens; EADDRINUSE and friends become WICKET_ERR_ADDRESS_IN_USE. Resolves the bound address. */
  listen(): Promise<HostPort> {
    return new Promise<HostPort>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        reject(wicketError('WICKET_ERR_ADDRESS_IN_USE', `inlet ${this.spec.name} cannot listen on ${formatHostPort(this.spec.from)}: ${err.code ?? err.message}`));
      };
      this.#server.once('error', onError);
      this.#server.listen({ host: this.spec.from.host, port: this.spec.from.port }, () => {
        this.#server.off('error', onError);
        this.#server.on('error', (err) => this.#log.error({ err }, 'inlet listener error'));
        const info = this.#server.address() as AddressInfo;
        this.#bound = { host: this.spec.from.host, port: info.port };
        this.#log.info({ address: formatHostPort(this.#bound) }, 'inlet listening');
        resolve(this.#bound);
      });
    });
  }

  /** The address apps connect to (the real port when listening on port 0). */
  get address(): string {
    return formatHostPort(this.#bound ?? this.spec.from);
  }

  #accept(socket: Socket): void {
    if (this.#stopped) {
      resetSocket(socket);
      return;
    }
    socket.setNoDelay(true);
    // Until the bridge takes over, a broken app connection must not crash the node.
    const onEarlyError = () => undefined;
    socket.on('error', onEarlyError);
    const session = this.#session;
    if (session?.isOpen) {
      this.#bridge(socket, session);
      return;
    }
    this.#waiting.add(socket);
    const deadline = Date.now() + INLET_CHANNEL_WAIT_MS;
    this.#attemptDeadline = Math.max(this.#attemptDeadline, deadline);
    const timer = setTimeout(() => giveUp(wicketError('WICKET_ERR_RELAY_UNREACHABLE', `no channel to ${this.spec.via} within ${INLET_CHANNEL_WAIT_MS} ms`)), INLET_CHANNEL_WAIT_MS);
    const giveUp = (err: WicketError) => {
      if (!this.#waiting.delete(socket)) return;
      clearTimeout(timer);
      this.#log.warn({ code: err.code, reason: err.message }, 'app connection reset: no channel');
      resetSocket(socket);
    };
    socket.once('close', () => {
      this.#waiting.delete(socket);
      clearTimeout(timer);
    });
    this.#channel().then(
      (ready) => {
        if (!this.#waiting.delete(socket)) return; // timed out or the app left meanwhile
        clearTimeout(timer);
        if (socket.destroyed) return;
        this.#bridge(socket, ready);
      },
      (err: unknown) => giveUp(asWicketError(err)),
    );
  }

  #bridge(socket: Socket, session: SecureSession): void {
    let stream;
    try {
      stream = session.openStream();
    } catch (err) {
      const error = asWicketError(err);
      this.#log.warn({ code: error.code, reason: error.message }, 'app connection reset: cannot open a stream');
      resetSocket(socket);
      return;
    }
    const bridge = new StreamBridge(socket, stream, {
      logger: this.#log,
      resource: this.spec.name,
      peer: session.peer?.identifier ?? 'unknown',
      onClose: () => {
        this.#bridges.delete(bridge);
        this.#traffic.closed(bridge);
      },
    });
    this.#bridges.add(bridge);
    socket.resume();
  }

  /** The open channel, or the attempt under way, or a new attempt. */
  #channel(): Promise<SecureSession> {
    if (this.#session?.isOpen) return Promise.resolve(this.#session);
    if (this.#attempt === undefined) {
      this.#attempt = this.#establish()
        .then(
          (session) => {
            this.#failedAs = undefined;
            return session;
          },
          (err: unknown) => {
            const error = asWicketError(err);
            if (!this.#stopped) {
              this.#lastError = lastErrorOf(error);
              this.#failedAs = REFUSALS.has(error.code) ? 'refused' : 'unreachable';
            }
            throw error;
          },
        )
        .finally(() => {
          this.#attempt = undefined;
        });
    }
    return this.#attempt;
  }

  async #establish(): Promise<SecureSession> {
    const relay = this.#context.relay;
    /** Outlets this attempt refused, and the refusal to report if no other outlet serves. */
    const refused: string[] = [];
    let refusal: WicketError | undefined;
    for (let attempt = 1; ; attempt++) {
      if (this.#stopped) throw wicketError('WICKET_ERR_CHANNEL_CLOSED', `inlet ${this.spec.name} stopped`);
      let outlet: string | undefined;
      try {
        if (!relay.connected) throw wicketError('WICKET_ERR_RELAY_UNREACHABLE', 'not connected to the relay');
        const { circuit, peer } = await relay.openCircuit(this.spec.via, refused);
        outlet = peer;
        return await this.#handshake(circuit, peer);
      } catch (err) {
        const error = asWicketError(err);
        if (outlet !== undefined && REFUSED_OUTLET.has(error.code) && refused.length < MAX_OPEN_AVOID) {
          refused.push(outlet);
          refusal = error;
          this.#log.info({ code: error.code, outlet, attempt }, 'outlet refused; asking the relay for another one');
          continue;
        }
        // No outlet is left but ones we refused: say why we refused, not "unknown name".
        const reported = refusal !== undefined && error.code === 'WICKET_ERR_RELAY_NAME_UNKNOWN' ? refusal : error;
        if (!RETRYABLE.has(reported.code) || Date.now() + INLET_CHANNEL_RETRY_MS >= this.#attemptDeadline || this.#waiting.size === 0) {
          throw reported;
        }
        this.#log.debug({ code: error.code, attempt }, 'channel attempt failed; retrying');
        await new Promise((resolve) => setTimeout(resolve, INLET_CHANNEL_RETRY_MS));
      }
    }
  }

  /** Runs the initiator handshake on a fresh circuit, held to the outlet the relay named. */
  async #handshake(circuit: number, outlet: string): Promise<SecureSession> {
    if (this.#stopped) {
      this.#context.relay.closeCircuit(circuit, 'WICKET_ERR_CHANNEL_CLOSED');
      throw wicketError('WICKET_ERR_CHANNEL_CLOSED', `inlet ${this.spec.name} stopped`);
    }
    const session = new SecureSession({
      role: 'initiator',
      circuit,
      port: this.#context.portFor(circuit),
      channel: this.#context.channelOptions(this.spec.via, outlet),
      policy: this.#policy,
      logger: this.#log,
      resource: this.spec.name,
    });
    // Streams go from inlet to outlet only: an outlet opening one towards us is refused, so
    // it cannot make the inlet hold windows of data nobody reads.
    session.on('stream', (stream: MuxStream) => stream.reset('WICKET_ERR_MUX_PROTOCOL'));
    this.#context.sessions.add(session);
    session.start();
    await session.established;
    this.#session = session;
    session.once('closed', (err: WicketError) => {
      if (this.#session === session) this.#session = undefined;
      // An open channel the far end closed with a refusal (its policy): the inlet was refused.
      if (this.#stopped || err.code === 'WICKET_ERR_CHANNEL_CLOSED' || err.code === 'WICKET_ERR_CIRCUIT_CLOSED') return;
      this.#lastError = lastErrorOf(err);
      if (REFUSALS.has(err.code)) this.#failedAs = 'refused';
    });
    return session;
  }

  status(): InletStatus {
    const session = this.#session;
    const status: InletStatus = {
      name: this.spec.name,
      state: this.#state(),
      ...(this.#lastError !== undefined ? { lastError: this.#lastError } : {}),
      address: this.address,
      via: this.spec.via,
      allow: this.spec.allow,
      channel: session?.isOpen ? 'open' : this.#attempt !== undefined ? 'connecting' : 'none',
      streams: this.#bridges.size,
      waiting: this.#waiting.size,
    };
    if (session?.peer !== undefined) status.peer = session.peer.identifier;
    return status;
  }

  /** Streams and bytes since the inlet was made (metrics). */
  traffic(): TrafficTotals {
    return this.#traffic.totals(this.#bridges);
  }

  get listening(): boolean {
    return this.#server.listening;
  }

  #state(): InletState {
    if (this.#stopped) return 'stopped';
    if (this.#bound === undefined) return 'starting';
    if (this.#session?.isOpen === true) return 'open';
    if (this.#attempt !== undefined) return 'connecting';
    return this.#failedAs ?? 'listening';
  }

  streams(): BridgeStatus[] {
    return [...this.#bridges].map((b) => b.status());
  }

  toJson(): Record<string, unknown> {
    return { ...inletSpecToJson(this.spec), address: this.address };
  }

  /** Deleted or node stopping: stop listening, reset every app connection, close the channel. */
  async stop(code: ErrorCode = 'WICKET_ERR_CHANNEL_CLOSED'): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const socket of this.#waiting) resetSocket(socket);
    this.#waiting.clear();
    for (const bridge of [...this.#bridges]) bridge.abort(code, 'inlet stopped');
    this.#session?.close(code, `inlet ${this.spec.name} stopped`);
    if (!this.#server.listening) return;
    await closed;
  }
}

