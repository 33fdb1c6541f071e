import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { asWicketError, type ErrorCode, isWicketError, type WicketError, wicketError } from '../protocol/errors.js';
import { CHANNEL_PING_INTERVAL_MS, HANDSHAKE_TIMEOUT_MS } from '../protocol/limits.js';
import { MuxSession, type MuxStream } from '../protocol/mux/index.js';
import type { Policy } from '../protocol/policy.js';
import { DATA_HEADER_LEN } from '../protocol/relay-frames.js';
import {
  type ChannelPeer,
  InitiatorHandshake,
  ResponderHandshake,
  type SecureChannelOptions,
  type SecureTransport,
} from '../protocol/secure-channel/index.js';
import type { RelayClient } from './relay-client.js';

// One end-to-end secure channel over one relay circuit (DESIGN.md properties 1-3):
//
//   initiator (inlet)                              responder (outlet)
//   ---------------------------------------------------------------------------------------------
//   msg1 = writeMessage1()           ──DATA──▶     readMessage1(msg1)
//   peer = readMessage2(msg2)        ◀──DATA──     msg2 = writeMessage2()
//   inlet policy on peer: refuse → close circuit WICKET_ERR_POLICY_DENIED, msg3 is never sent
//   msg3 = writeMessage3()           ──DATA──▶     peer = readMessage3(msg3)
//                                                  outlet policy on peer: refuse → close circuit
//   MuxSession over seal/open        ◀══════▶      MuxSession over seal/open
//
// Every DATA payload on the circuit is one Noise message. After the handshake, one mux frame batch
// is sealed straight into a buffer that keeps DATA_HEADER_LEN bytes of headroom, so the relay
// header is written in place and the frame goes out without another copy. Any decrypt, handshake or
// mux protocol error closes the whole channel: its streams reset (never a clean end), and the
// circuit is closed towards the peer with the error's code.

/** What inlets and outlets need to run channels over the node's relay connection. */
export interface ChannelContext {
  relay: RelayClient;
  sessions: SessionTable;
  logger: Logger;
  /** The circuit seen as a port: DATA frames out through the relay client, close with a code. */
  portFor(circuit: number): CircuitPort;
  /** Handshake options with the current credential; `relayName` is bound into the prologue. */
  channelOptions(relayName: string): SecureChannelOptions;
}

export type SessionRole = 'initiator' | 'responder';
export type SessionState = 'handshake' | 'open' | 'closed';

/** The circuit under a session: the relay client in production, a direct wire in unit tests. */
export interface CircuitPort {
  /** Sends one Noise message; `frame` has DATA_HEADER_LEN spare bytes in front. False = back off. */
  send(frame: Buffer): boolean;
  /** Tells the peer (through the relay) that the circuit is closed, with a WICKET_ERR_* code. */
  close(code: ErrorCode): void;
}

export interface SecureSessionOptions {
  role: SessionRole;
  circuit: number;
  port: CircuitPort;
  channel: SecureChannelOptions;
  /** The `--allow` policy this end applies to the authenticated peer. */
  policy: Policy;
  logger: Logger;
  /** Resource name (inlet or outlet), for logs. */
  resource: string;
  /** The peer identifier the relay announced; a hint for logs and revocation only, never trusted. */
  peerHint?: string;
  handshakeTimeoutMs?: number;
  pingIntervalMs?: number;
}

export interface SessionStatus {
  resource: string;
  role: SessionRole;
  circuit: number;
  state: SessionState;
  peer?: string;
  rttMs?: number;
}

function frameWithHeadroom(message: Buffer): Buffer {
  // Handshake messages are three per channel: one copy each is fine.
  const frame = Buffer.allocUnsafe(DATA_HEADER_LEN + message.length);
  message.copy(frame, DATA_HEADER_LEN);
  return frame;
}

/**
 * Events: 'stream' (MuxStream, accepted from the peer), 'closed' (WicketError).
 * `established` resolves with the authenticated peer once the channel carries streams.
 */
export class SecureSession extends EventEmitter {
  readonly role: SessionRole;
  readonly circuit: number;
  readonly resource: string;
  readonly established: Promise<ChannelPeer>;
  state: SessionState = 'handshake';
  peer: ChannelPeer | undefined;
  closeError: WicketError | undefined;
  readonly #options: SecureSessionOptions;
  readonly #log: Logger;
  #initiator: InitiatorHandshake | undefined;
  #responder: ResponderHandshake | undefined;
  #step = 0; // handshake messages processed so far on this side
  #transport: SecureTransport | undefined;
  #mux: MuxSession | undefined;
  #handshakeTimer: NodeJS.Timeout | undefined;
  #pingTimer: NodeJS.Timeout | undefined;
  #resolve!: (peer: ChannelPeer) => void;
  #reject!: (err: WicketError) => void;

  constructor(options: SecureSessionOptions) {
    super();
    this.#options = options;
    this.role = options.role;
    this.circuit = options.circuit;
    this.resource = options.resource;
    this.#log = options.logger.child({ resource: options.resource, circuit: options.circuit, role: options.role });
    this.established = new Promise<ChannelPeer>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    // Nobody may be awaiting yet; the rejection is still observed through 'closed'.
    this.established.catch(() => undefined);
    this.#handshakeTimer = setTimeout(
      () => this.close('WICKET_ERR_HANDSHAKE_TIMEOUT', `handshake did not finish within ${options.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS} ms`),
      options.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS,
    );
    this.#handshakeTimer.unref();
  }

  /** The identifier this channel is with: the authenticated one once known, else the relay's hint. */
  get peerIdentifier(): string | undefined {
    return this.peer?.identifier ?? this.#options.peerHint;
  }

  get isOpen(): boolean {
    return this.state === 'open';
  }

  /** Starts the handshake. The initiator sends message 1; the responder waits for it. */
  start(): void {
    if (this.state !== 'handshake') return; // closed before it started (circuit already gone)
    if (this.role === 'responder') {
      this.#guard(() => {
        this.#responder = new ResponderHandshake(this.#options.channel);
      });
      return;
    }
    this.#guard(() => {
      this.#initiator = new InitiatorHandshake(this.#options.channel);
      this.#sendHandshake(this.#initiator.writeMessage1());
    });
  }

  /** One DATA payload from the circuit (one Noise message). */
  receive(payload: Buffer): void {
    if (this.state === 'closed') return;
    if (this.state === 'open') {
      // The hot path: decrypt then demultiplex; either failing closes the channel.
      try {
        this.#mux!.receive(this.#transport!.open(payload));
      } catch (err) {
        this.#fail(err);
      }
      return;
    }
    this.#guard(() => this.#handshakeStep(payload));
  }

  /** The relay closed the circuit (peer gone, peer refused us, revoked, relay connection lost). */
  circuitClosed(code: ErrorCode): void {
    this.#close(wicketError(code, `circuit ${this.circuit} closed by the relay or the peer`), false);
  }

  /** The relay connection can take more data: let the mux flush what it held back. */
  transportDrained(): void {
    if (this.state === 'open') this.#guard(() => this.#mux!.transportDrained());
  }

  /** A new stream to the peer (inlet side). */
  openStream(): MuxStream {
    if (this.state !== 'open') throw wicketError('WICKET_ERR_CHANNEL_CLOSED', `channel on circuit ${this.circuit} is ${this.state}`);
    return this.#mux!.openStream();
  }

  status(): SessionStatus {
    const status: SessionStatus = { resource: this.resource, role: this.role, circuit: this.circuit, state: this.state };
    const peer = this.peerIdentifier;
    if (peer !== undefined) status.peer = peer;
    const rtt = this.#mux?.rttMs;
    if (typeof rtt === 'number' && Number.isFinite(rtt)) status.rttMs = Math.round(rtt * 100) / 100;
    return status;
  }

  /** Closes the channel from this side: streams reset, circuit closed towards the peer with `code`. */
  close(code: ErrorCode, reason: string): void {
    this.#close(wicketError(code, reason), true);
  }

  #handshakeStep(message: Buffer): void {
    if (this.role === 'initiator') {
      if (this.#step !== 0 || this.#initiator === undefined) throw wicketError('WICKET_ERR_HANDSHAKE_STATE', 'unexpected handshake message');
      this.#step = 1;
      const peer = this.#initiator.readMessage2(message);
      // The inlet decides who may serve it, and decides BEFORE message 3: a refused outlet never
      // learns our identity payload.
      if (!this.#allowed(peer)) return;
      this.#sendHandshake(this.#initiator.writeMessage3());
      this.#open(peer, this.#initiator.finish());
      this.#initiator = undefined;
      return;
    }
    const responder = this.#responder;
    if (responder === undefined) throw wicketError('WICKET_ERR_HANDSHAKE_STATE', 'handshake message before start()');
    if (this.#step === 0) {
      this.#step = 1;
      responder.readMessage1(message);
      this.#sendHandshake(responder.writeMessage2());
      return;
    }
    if (this.#step !== 1) throw wicketError('WICKET_ERR_HANDSHAKE_STATE', 'unexpected handshake message');
    this.#step = 2;
    const peer = responder.readMessage3(message);
    if (!this.#allowed(peer)) return;
    this.#open(peer, responder.finish());
    this.#responder = undefined;
  }

  #allowed(peer: ChannelPeer): boolean {
    this.peer = peer;
    if (this.#options.policy.allows({ identifier: peer.identifier, attributes: peer.attributes })) return true;
    this.#log.warn(
      { code: 'WICKET_ERR_POLICY_DENIED', peer: peer.identifier, policy: this.#options.policy.source },
      'peer refused by policy',
    );
    this.close('WICKET_ERR_POLICY_DENIED', `peer ${peer.identifier} does not satisfy ${JSON.stringify(this.#options.policy.source)}`);
    return false;
  }

  #open(peer: ChannelPeer, transport: SecureTransport): void {
    this.#transport = transport;
    const mux = new MuxSession({ role: this.role, send: (parts) => this.#sendSealed(parts) });
    this.#mux = mux;
    mux.on('stream', (stream: MuxStream) => this.emit('stream', stream));
    mux.on('close', (err?: unknown) => {
      if (this.state !== 'closed') this.#close(err === undefined ? wicketError('WICKET_ERR_CHANNEL_CLOSED', 'mux session closed') : asWicketError(err), true);
    });
    this.state = 'open';
    clearTimeout(this.#handshakeTimer);
    this.#handshakeTimer = undefined;
    const interval = this.#options.pingIntervalMs ?? CHANNEL_PING_INTERVAL_MS;
    this.#pingTimer = setInterval(() => this.#ping(), interval);
    this.#pingTimer.unref();
    this.#log.info({ peer: peer.identifier, attributes: peer.attributes }, 'secure channel established');
    this.#resolve(peer);
    this.#ping();
  }

  #ping(): void {
    if (this.state !== 'open') return;
    this.#mux!.ping();
  }

  #sendHandshake(message: Buffer): void {
    this.#options.port.send(frameWithHeadroom(message));
  }

  #sendSealed(parts: Buffer[]): boolean {
    if (this.state !== 'open') return false;
    return this.#options.port.send(this.#transport!.seal(parts, DATA_HEADER_LEN));
  }

  /** Runs one step; any throw closes the channel with the error's code (never escapes). */
  #guard(step: () => void): void {
    try {
      step();
    } catch (err) {
      this.#fail(err);
    }
  }

  #fail(err: unknown): void {
    if (!isWicketError(err)) this.#log.error({ err }, 'unexpected error in secure session');
    this.#close(asWicketError(err), true);
  }

  #close(error: WicketError, notifyPeer: boolean): void {
    if (this.state === 'closed') return;
    const wasOpen = this.state === 'open';
    this.state = 'closed';
    this.closeError = error;
    clearTimeout(this.#handshakeTimer);
    clearInterval(this.#pingTimer);
    this.#initiator = undefined;
    this.#responder = undefined;
    if (notifyPeer) {
      try {
        this.#options.port.close(error.code);
      } catch {
        // the relay connection is already gone; the relay closes the circuit itself
      }
    }
    // Resets every stream: their app sockets get a TCP RST, never a FIN.
    try {
      this.#mux?.close(error);
    } catch {
      // closing twice is harmless
    }
    const level = error.code === 'WICKET_ERR_CHANNEL_CLOSED' || error.code === 'WICKET_ERR_CIRCUIT_CLOSED' ? 'info' : 'warn';
    this.#log[level]({ code: error.code, peer: this.peerIdentifier, wasOpen }, `secure channel closed: ${error.message}`);
    this.#reject(error);
    this.emit('closed', error);
  }
}

/**
 * The sessions riding one relay connection, by circuit: dispatches the relay client's circuit
 * events to them, and applies connection-wide events (drain, disconnect, revocation) to all.
 */
export class SessionTable {
  readonly #sessions = new Map<number, SecureSession>();
  /** Circuits the relay closed before a session was attached (an `opened`/`close` race). */
  readonly #closedEarly = new Map<number, ErrorCode>();

  add(session: SecureSession): void {
    const early = this.#closedEarly.get(session.circuit);
    this.#sessions.set(session.circuit, session);
    session.once('closed', () => {
      if (this.#sessions.get(session.circuit) === session) this.#sessions.delete(session.circuit);
    });
    if (early !== undefined) {
      this.#closedEarly.delete(session.circuit);
      session.circuitClosed(early);
    }
  }

  get size(): number {
    return this.#sessions.size;
  }

  all(): SecureSession[] {
    return [...this.#sessions.values()];
  }

  data(circuit: number, payload: Buffer): void {
    // Unknown circuit: a race with a close; dropped like the relay does.
    this.#sessions.get(circuit)?.receive(payload);
  }

  circuitClosed(circuit: number, code: ErrorCode): void {
    const session = this.#sessions.get(circuit);
    if (session !== undefined) {
      session.circuitClosed(code);
      return;
    }
    this.#closedEarly.set(circuit, code);
    // Bounded: only the newest few matter (a session attaches within one turn of the event loop).
    if (this.#closedEarly.size > 256) this.#closedEarly.delete(this.#closedEarly.keys().next().value!);
  }

  drained(): void {
    for (const session of this.#sessions.values()) session.transportDrained();
  }

  /** The relay connection is gone: every circuit on it is gone too. */
  disconnected(): void {
    for (const session of [...this.#sessions.values()]) session.circuitClosed('WICKET_ERR_CIRCUIT_CLOSED');
    this.#closedEarly.clear();
  }

  /** An identity was revoked: close every channel with it now (DESIGN.md property 5). */
  revoked(identifier: string): number {
    let closed = 0;
    for (const session of [...this.#sessions.values()]) {
      if (session.peerIdentifier === identifier) {
        session.close('WICKET_ERR_REVOKED', `peer ${identifier} was revoked`);
        closed++;
      }
    }
    return closed;
  }

  closeAll(code: ErrorCode, reason: string): void {
    for (const session of [...this.#sessions.values()]) session.close(code, reason);
  }
}
