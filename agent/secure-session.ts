import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { asWicketError, type ErrorCode, isWicketError, type WicketError, wicketError } from '../protocol/errors.js';
import { Lifecycle, type Transitions } from '../protocol/lifecycle.js';
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

// One end-to-end secure channel over one relay circuit (DESIGN.md properties 1-3):
//
//   initiator (inlet)                              responder (outlet)
//   ---------------------------------------------------------------------------------------------
//   msg1 = writeMessage1()           ──DATA──▶     readMessage1(msg1)
//   peer = readMessage2(msg2)        ◀──DATA──     msg2 = writeMessage2()
//   revoked, or not the outlet the relay named → close circuit (REVOKED / PEER_MISMATCH)
//   inlet policy on peer: refuse → close circuit WICKET_ERR_POLICY_DENIED, msg3 is never sent
//   msg3 = writeMessage3()           ──DATA──▶     peer = readMessage3(msg3)
//                                                  revoked, or not the circuit's opener → close
//                                                  outlet policy on peer: refuse → close circuit
//   MuxSession over seal/open        ◀══════▶      MuxSession over seal/open
//
// Every DATA payload on the circuit is one Noise message. After the handshake, one mux frame batch
// is sealed straight into a buffer that keeps DATA_HEADER_LEN bytes of headroom, so the relay
// header is written in place and the frame goes out without another copy. Any decrypt, handshake or
// mux protocol error closes the whole channel: its streams reset (never a clean end), and the
// circuit is closed towards the peer with the error's code.

export type SessionRole = 'initiator' | 'responder';
export type SessionState = 'handshake' | 'open' | 'closed';

export const SESSION_TRANSITIONS: Transitions<SessionState> = {
  handshake: ['open', 'closed'],
  open: ['closed'],
  closed: [],
};

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
  handshakeTimeoutMs?: number;
  pingIntervalMs?: number;
}

export interface SessionStatus {
  resource: string;
  role: SessionRole;
  circuit: number;
  state: SessionState;
  /** While in handshake: the Noise step it waits for (e.g. readMessage2). */
  handshake?: string;
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
  peer: ChannelPeer | undefined;
  closeError: WicketError | undefined;
  readonly #options: SecureSessionOptions;
  readonly #log: Logger;
  readonly #lifecycle: Lifecycle<SessionState>;
  /** The Noise handshake while in 'handshake' (its named state says which message comes next). */
  #handshake: InitiatorHandshake | ResponderHandshake | undefined;
  /** Set when the handshake finishes (in 'open'; kept in 'closed' only to close the mux once). */
  #channel: { readonly transport: SecureTransport; readonly mux: MuxSession } | undefined;
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
    this.#lifecycle = new Lifecycle(`secure session on circuit ${options.circuit}`, SESSION_TRANSITIONS, 'handshake');
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

  get state(): SessionState {
    return this.#lifecycle.state;
  }

  /**
   * The identifier this channel is with: the authenticated one once known, else the one the relay
   * joined the circuit to (which the handshake then holds the peer to).
   */
  get peerIdentifier(): string | undefined {
    return this.peer?.identifier ?? this.#options.channel.expectedPeer;
  }

  get isOpen(): boolean {
    return this.#lifecycle.is('open');
  }

  /** The handshake finished (still true once closed): a channel closed without it failed its handshake. */
  get wasOpened(): boolean {
    return this.#channel !== undefined;
  }

  /** Starts the handshake. The initiator sends message 1; the responder waits for it. */
  start(): void {
    if (!this.#lifecycle.is('handshake') || this.#handshake !== undefined) return; // closed before it started
    this.#guard(() => {
      if (this.role === 'responder') {
        this.#handshake = new ResponderHandshake(this.#options.channel);
        return;
      }
      const initiator = new InitiatorHandshake(this.#options.channel);
      this.#handshake = initiator;
      this.#sendHandshake(initiator.writeMessage1());
    });
  }

  /** One DATA payload from the circuit (one Noise message). */
  receive(payload: Buffer): void {
    if (this.#lifecycle.is('closed')) return;
    const channel = this.#channel;
    if (channel !== undefined) {
      // The hot path: decrypt then demultiplex; either failing closes the channel.
      try {
        channel.mux.receive(channel.transport.open(payload));
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
    const mux = this.#channel?.mux;
    if (mux !== undefined && this.isOpen) this.#guard(() => mux.transportDrained());
  }

  /** A new stream to the peer (inlet side). */
  openStream(): MuxStream {
    const mux = this.#channel?.mux;
    if (mux === undefined || !this.isOpen) throw wicketError('WICKET_ERR_CHANNEL_CLOSED', `channel on circuit ${this.circuit} is ${this.state}`);
    return mux.openStream();
  }

  status(): SessionStatus {
    const status: SessionStatus = { resource: this.resource, role: this.role, circuit: this.circuit, state: this.state };
    if (this.#handshake !== undefined) status.handshake = this.#handshake.state;
    const peer = this.peerIdentifier;
    if (peer !== undefined) status.peer = peer;
    const rtt = this.#channel?.mux.rttMs;
    if (typeof rtt === 'number' && Number.isFinite(rtt)) status.rttMs = Math.round(rtt * 100) / 100;
    return status;
  }

  /** Closes the channel from this side: streams reset, circuit closed towards the peer with `code`. */
  close(code: ErrorCode, reason: string): void {
    this.#close(wicketError(code, reason), true);
  }

  /**
   * One handshake message, dispatched on the Noise handshake's own named state (which also refuses
   * a message out of order, with WICKET_ERR_HANDSHAKE_STATE).
   */
  #handshakeStep(message: Buffer): void {
    const handshake = this.#handshake;
    if (handshake === undefined) throw wicketError('WICKET_ERR_HANDSHAKE_STATE', 'handshake message before start()');
    if (handshake instanceof InitiatorHandshake) {
      const peer = handshake.readMessage2(message);
      // The inlet decides who may serve it, and decides BEFORE message 3: a refused outlet never
      // learns our identity payload.
      if (!this.#allowed(peer)) return;
      this.#sendHandshake(handshake.writeMessage3());
      this.#open(peer, handshake.finish());
      return;
    }
    if (handshake.state === 'readMessage1') {
      handshake.readMessage1(message);
      this.#sendHandshake(handshake.writeMessage2());
      return;
    }
    const peer = handshake.readMessage3(message);
    if (!this.#allowed(peer)) return;
    this.#open(peer, handshake.finish());
  }

  #allowed(peer: ChannelPeer): boolean {
    this.peer = peer;
    if (this.#options.policy.allows({ identifier: peer.identifier, attributes: peer.attributes })) return true;
    this.#log.warn(
      { code: 'WICKET_ERR_POLICY_DENIED', peer: peer.identifier, attributes: peer.attributes, policy: this.#options.policy.source },
      'peer refused by policy',
    );
    // Attributes are the public claims of the peer's credential (what `member list` shows): naming
    // them is what lets the operator see which one is missing.
    const attributes = Object.entries(peer.attributes).map(([key, value]) => (value === 'true' ? key : `${key}=${value}`));
    this.close('WICKET_ERR_POLICY_DENIED', `peer ${peer.identifier} with attributes [${attributes.join(', ')}] does not satisfy the policy ${JSON.stringify(this.#options.policy.source)}`);
    return false;
  }

  #open(peer: ChannelPeer, transport: SecureTransport): void {
    // Short writes wait for the turn's end (setImmediate) and leave in one message with the other
    // streams' writes of the turn, paying its seal, WebSocket frame, relay forward and syscalls
    // once; full frames and credit go at once (protocol/mux/flush-timing.ts).
    const mux = new MuxSession({ role: this.role, send: (parts) => this.#sendSealed(parts), deferFlush: setImmediate });
    this.#channel = { transport, mux };
    mux.on('stream', (stream: MuxStream) => this.emit('stream', stream));
    mux.on('close', (err?: unknown) => {
      if (!this.#lifecycle.is('closed')) this.#close(err === undefined ? wicketError('WICKET_ERR_CHANNEL_CLOSED', 'mux session closed') : asWicketError(err), true);
    });
    this.#handshake = undefined;
    this.#lifecycle.to('open');
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
    if (this.isOpen) this.#channel?.mux.ping();
  }

  #sendHandshake(message: Buffer): void {
    this.#options.port.send(frameWithHeadroom(message));
  }

  #sendSealed(parts: Buffer[]): boolean {
    const transport = this.#channel?.transport;
    if (transport === undefined || !this.isOpen) return false;
    return this.#options.port.send(transport.seal(parts, DATA_HEADER_LEN));
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
    if (this.#lifecycle.is('closed')) return;
    const wasOpen = this.isOpen;
    this.#lifecycle.to('closed');
    this.closeError = error;
    clearTimeout(this.#handshakeTimer);
    clearInterval(this.#pingTimer);
    this.#handshake = undefined;
    if (notifyPeer) {
      try {
        this.#options.port.close(error.code);
      } catch {
        // the relay connection is already gone; the relay closes the circuit itself
      }
    }
    // Resets every stream: their app sockets get a TCP RST, never a FIN.
    try {
      this.#channel?.mux.close(error);
    } catch {
      // closing twice is harmless
    }
    // Closed here on purpose (the inlet, outlet or node stopping): a clean end, logged without a code.
    if (notifyPeer && error.code === 'WICKET_ERR_CHANNEL_CLOSED') {
      this.#log.info({ peer: this.peerIdentifier, wasOpen }, `secure channel closed: ${error.message.slice(error.code.length + 2)}`);
    } else {
      const level = error.code === 'WICKET_ERR_CHANNEL_CLOSED' || error.code === 'WICKET_ERR_CIRCUIT_CLOSED' ? 'info' : 'warn';
      this.#log[level]({ code: error.code, peer: this.peerIdentifier, wasOpen }, `secure channel closed: ${error.message}`);
    }
    this.#reject(error);
    this.emit('closed', error);
  }
}
