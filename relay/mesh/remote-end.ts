import { wicketError, type ErrorCode, type WicketError } from '../../protocol/errors.js';
import type { Identifier } from '../../protocol/identity.js';
import { checkTransition, type Transitions } from '../../protocol/lifecycle.js';
import type { MeshMessage } from '../../protocol/mesh-messages.js';
import type { RelayToAgent } from '../../protocol/relay-messages.js';
import type { FailOptions, PeerIdentity, RelayPeer } from '../peer.js';

// The far end of a circuit whose other agent sits on another relay, as this relay's router, flow
// control and logs see it: a RelayPeer like an agent connection, backed by the link to that relay.
// The router gives it the messages it would give an agent (opened, error, close) and it turns them
// into mesh messages; DATA it forwards is stamped with the far relay's circuit id and sent on.
//
// Backpressure per circuit, across the hop (protocol/README.md, "Relay mesh"): `bufferedAmount` is
// the bytes sent and not yet credited by the far relay, so flow control pauses the local source
// agent past the high water mark exactly as it would for a slow local destination. The far relay
// credits bytes once it handed them on to its agent, and holds credit back while flow control has
// this end paused (its destination is full): the link itself is never paused, so one slow circuit
// never stalls the others, and no relay queues more than a window per circuit.

/** What an end needs from its link (mesh-link.ts); an interface, so the two files do not import each other. */
export interface MeshLinkPort {
  readonly isOpen: boolean;
  readonly peerRelayId: string;
  sendControl(message: MeshMessage): void;
  sendData(frame: Buffer): void;
  bind(localCircuit: number, end: RemoteEnd): void;
  unbind(localCircuit: number): void;
}

/** What an end tells the rest of the relay (wired by mesh.ts to the router and flow control). */
export interface RemoteEndHooks {
  /** DATA from the far relay for this end's circuit: route it like an agent's frame. */
  forward(end: RemoteEnd, circuit: number, frame: Buffer): void;
  /** Credit came back: flow control may resume the sources this end paused. */
  drained(end: RemoteEnd): void;
  /** The end is gone: the router closes its circuit (telling the local agent `code`) and forgets it. */
  closed(end: RemoteEnd, code: ErrorCode): void;
}

/** What an opener relay's end reports once the far relay answered its `open`. */
export type OpenAnswer = { readonly peer: Identifier } | { readonly code: string; readonly message: string };

type EndState =
  /** This relay asked the far one to open (`open` sent), no answer yet. */
  | { readonly name: 'opening'; readonly answer: (result: OpenAnswer) => void }
  /** As 'opening', but the local side already closed: close the circuit once the far id is known. */
  | { readonly name: 'abandoned'; readonly code: string }
  /** The far relay asked; this relay's router has not answered yet. */
  | { readonly name: 'answering' }
  | { readonly name: 'open' }
  | { readonly name: 'closed' };

const END_TRANSITIONS: Transitions<EndState['name']> = {
  opening: ['abandoned', 'open', 'closed'],
  abandoned: ['closed'],
  answering: ['open', 'closed'],
  open: ['closed'],
  closed: [],
};

let nextEndId = 1;

export class RemoteEnd implements RelayPeer {
  /** For logs only; never collides with an agent connection's id (those count up from 1). */
  readonly id = -nextEndId++;
  readonly viaMesh = true;
  readonly #link: MeshLinkPort;
  readonly #hooks: RemoteEndHooks;
  readonly #creditBatch: number;
  #state: EndState;
  #identity: PeerIdentity | undefined;
  #localCircuit: number | undefined;
  #remoteCircuit: number | undefined;
  /** Bytes sent to the far relay and not yet credited. */
  #unacked = 0;
  /** Bytes received from the far relay and handed on, not yet credited back. */
  #owed = 0;
  /** Flow control paused this end (its local destination is full): credit is held back. */
  #paused = false;

  private constructor(link: MeshLinkPort, hooks: RemoteEndHooks, creditBatch: number, state: EndState) {
    this.#link = link;
    this.#hooks = hooks;
    this.#creditBatch = creditBatch;
    this.#state = state;
  }

  /** The server end of a circuit this relay opens on the far relay; `open` is sent at once. */
  static opening(
    link: MeshLinkPort,
    hooks: RemoteEndHooks,
    creditBatch: number,
    request: { readonly circuit: number; readonly name: string; readonly opener: Identifier; readonly avoid: readonly string[] },
    answer: (result: OpenAnswer) => void,
  ): RemoteEnd {
    const end = new RemoteEnd(link, hooks, creditBatch, { name: 'opening', answer });
    end.#localCircuit = request.circuit;
    link.bind(request.circuit, end);
    const avoid = request.avoid.length === 0 ? {} : { avoid: request.avoid.join(',') };
    link.sendControl({ t: 'open', circuit: request.circuit, name: request.name, peer: request.opener, ...avoid });
    return end;
  }

  /** The opener end of a circuit the far relay asked for; the router answers through send(). */
  static answering(link: MeshLinkPort, hooks: RemoteEndHooks, creditBatch: number, remoteCircuit: number, opener: Identifier): RemoteEnd {
    const end = new RemoteEnd(link, hooks, creditBatch, { name: 'answering' });
    end.#remoteCircuit = remoteCircuit;
    end.#identity = { identifier: opener, attributes: {} };
    return end;
  }

  // --- RelayPeer -------------------------------------------------------------------------------

  get identity(): PeerIdentity | undefined {
    return this.#identity;
  }

  get isOpen(): boolean {
    return this.#state.name !== 'closed' && this.#link.isOpen;
  }

  get bufferedAmount(): number {
    return this.#unacked;
  }

  /** The far relay's id, for logs. */
  get relay(): string {
    return this.#link.peerRelayId;
  }

  send(message: RelayToAgent): void {
    const state = this.#state;
    if (message.t === 'opened' && state.name === 'answering') {
      this.#localCircuit = message.circuit;
      this.#enter({ name: 'open' });
      this.#link.bind(message.circuit, this);
      this.#link.sendControl({ t: 'opened', circuit: this.#remoteCircuit!, remote: message.circuit, peer: message.peer });
    } else if (message.t === 'error' && state.name === 'answering') {
      this.#link.sendControl({ t: 'refused', circuit: this.#remoteCircuit!, code: message.code, message: message.message });
      this.#finish('WICKET_ERR_CIRCUIT_CLOSED');
    } else if (message.t === 'close') {
      // The router closed the circuit (the local agent closed it or left): tell the far relay.
      if (state.name === 'opening') {
        this.#enter({ name: 'abandoned', code: message.code });
        return;
      }
      if (state.name === 'open') this.#link.sendControl({ t: 'close', circuit: this.#remoteCircuit!, code: message.code });
      this.#finish(message.code as ErrorCode);
    }
    // Anything else (revocation pushes, admin answers) is for agents; an end has none to pass on.
  }

  forward(frame: Buffer): void {
    if (this.#state.name !== 'open') return;
    // The one write the mesh makes to a frame: the far relay routes on its own id for the circuit.
    frame.writeUInt32BE(this.#remoteCircuit!, 1);
    this.#link.sendData(frame);
    this.#unacked += frame.length;
  }

  pauseReading(): void {
    this.#paused = true;
  }

  resumeReading(): void {
    this.#paused = false;
    if (this.#owed > 0) this.#credit();
  }

  ping(): void {
    // The link has its own keepalive (mesh-link.ts).
  }

  /** Flow control dropped this end (far relay over its hard cap despite credit): close the circuit. */
  fail(err: WicketError, options: FailOptions = {}): void {
    if (this.#state.name === 'closed') return;
    if (this.#state.name === 'open' || this.#state.name === 'answering') {
      this.#link.sendControl({ t: 'close', circuit: this.#remoteCircuit!, code: err.code });
    }
    this.#finish(options.circuitCode ?? err.code);
  }

  // --- from the link ---------------------------------------------------------------------------

  /** DATA from the far relay, its header already this relay's circuit id. */
  received(frame: Buffer): void {
    if (this.#state.name !== 'open') return;
    this.#owed += frame.length;
    this.#hooks.forward(this, this.#localCircuit!, frame);
    if (!this.#paused && this.#owed >= this.#creditBatch) this.#credit();
  }

  credited(bytes: number): void {
    this.#unacked = Math.max(0, this.#unacked - bytes);
    this.#hooks.drained(this);
  }

  /** The far relay joined the circuit this relay asked for. */
  opened(remoteCircuit: number, peer: Identifier): void {
    const state = this.#state;
    this.#remoteCircuit = remoteCircuit;
    if (state.name === 'abandoned') {
      this.#link.sendControl({ t: 'close', circuit: remoteCircuit, code: state.code });
      this.#finish(state.code as ErrorCode);
      return;
    }
    if (state.name !== 'opening') throw wicketError('WICKET_ERR_RELAY_PROTOCOL', `'opened' for circuit ${this.#localCircuit} twice`);
    this.#identity = { identifier: peer, attributes: {} };
    this.#enter({ name: 'open' });
    state.answer({ peer });
  }

  /** The far relay could not open the circuit this relay asked for. */
  refused(code: string, message: string): void {
    const state = this.#state;
    if (state.name !== 'opening' && state.name !== 'abandoned') throw wicketError('WICKET_ERR_RELAY_PROTOCOL', `'refused' for circuit ${this.#localCircuit}, which is not opening`);
    // The opener hears the refusal before the router forgets this end, never a `close` for a circuit it never saw.
    if (state.name === 'opening') state.answer({ code, message });
    this.#finish('WICKET_ERR_CIRCUIT_CLOSED');
  }

  /** The far relay closed the circuit. */
  closedByFar(code: ErrorCode): void {
    if (this.#state.name === 'closed') return;
    this.#finish(code);
  }

  /** The link went down: the circuit cannot go on. */
  linkLost(): void {
    const state = this.#state;
    if (state.name === 'closed') return;
    if (state.name === 'opening') state.answer({ code: 'WICKET_ERR_MESH_LINK_LOST', message: `the link to relay ${this.#link.peerRelayId} went down while the circuit opened` });
    this.#finish('WICKET_ERR_MESH_LINK_LOST');
  }

  #credit(): void {
    if (this.#state.name !== 'open') return;
    this.#link.sendControl({ t: 'credit', circuit: this.#remoteCircuit!, bytes: this.#owed });
    this.#owed = 0;
  }

  #enter(next: EndState): void {
    checkTransition(`mesh circuit end ${this.id}`, END_TRANSITIONS, this.#state.name, next.name);
    this.#state = next;
  }

  #finish(code: ErrorCode): void {
    if (this.#state.name === 'closed') return;
    this.#enter({ name: 'closed' });
    if (this.#localCircuit !== undefined) this.#link.unbind(this.#localCircuit);
    this.#hooks.closed(this, code);
  }
}
