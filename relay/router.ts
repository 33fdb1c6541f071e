import type { Logger } from 'pino';
import { errorCodeFromWire, wicketError, type ErrorCode } from '../protocol/errors.js';
import type { Identifier } from '../protocol/identity.js';
import { MAX_RELAY_NAME_LEN } from '../protocol/limits.js';
import { relayNamesOf } from '../protocol/relay-names.js';
import type { FlowControl } from './flow-control.js';
import type { RelayPeer } from './peer.js';
import type { DropCounts } from './relay-counters.js';
import type { RelaySettings } from './settings.js';

// Names and circuits (protocol/README.md, "Relay behaviour"). A relay name maps to the live peers
// serving it (several for HA, picked round robin); a circuit joins an opener (inlet) to a server
// (outlet) under a relay-global id, so a DATA frame is forwarded as the very Buffer that arrived,
// never re-encoded. The router never looks inside a payload.
//
// The router owns every routing fact: names, circuits, and per peer the circuits it is an end of
// and the names it serves. Peers learn of them only through messages.

interface Circuit {
  readonly id: number;
  readonly name: string;
  readonly opener: RelayPeer;
  readonly server: RelayPeer;
  bytesToServer: number;
  bytesToOpener: number;
  /** Set while another relay is asked to open it: the opener's request id, answered on its reply. */
  pendingRequest?: number;
}

/** A circuit to be opened on another relay: this relay's id for it, the name, who opens, whom to skip. */
export interface RemoteOpenRequest {
  readonly circuit: number;
  readonly name: string;
  readonly opener: Identifier;
  readonly avoid: readonly string[];
}

/**
 * The other relays of the project (relay/mesh/), as the router sees them: names no local agent
 * serves are opened there, over one hop, and names this relay gains or loses are announced. An
 * interface, so routing does not depend on how the mesh links relays.
 */
export interface RemoteRouting {
  /** The far end of a new circuit on a relay serving `name`, or undefined when no linked relay does. */
  open(request: RemoteOpenRequest, answer: (result: { readonly peer: Identifier } | { readonly code: string; readonly message: string }) => void): RelayPeer | undefined;
  /** This relay now has (or no longer has) a live local server of `name`. */
  serving(name: string, served: boolean): void;
}

interface NameEntry {
  readonly servers: RelayPeer[];
  next: number;
}

/** What the router knows about one peer. */
interface PeerRoutes {
  readonly circuits: Set<number>;
  readonly names: Set<string>;
}

const CIRCUIT_ID_MAX = 0xffff_ffff;

const quoted = (name: string): string => JSON.stringify(name.slice(0, MAX_RELAY_NAME_LEN));

export class Router {
  readonly #names = new Map<string, NameEntry>();
  readonly #circuits = new Map<number, Circuit>();
  readonly #routes = new Map<RelayPeer, PeerRoutes>();
  // Ids count up and wrap, skipping 0 and live ids, so a closed circuit's id is not reused soon
  // (a late frame for it is dropped instead of reaching a new circuit).
  #nextCircuitId = 1;
  #remote: RemoteRouting | undefined;

  constructor(
    private readonly flow: FlowControl,
    private readonly settings: RelaySettings,
    private readonly logger: Logger,
    private readonly counts: DropCounts,
  ) {}

  /** Set when this relay joins a mesh (a shared store), cleared when the mesh stops; a lone relay routes locally only. */
  setRemote(remote: RemoteRouting | undefined): void {
    this.#remote = remote;
    if (remote !== undefined) for (const name of this.#names.keys()) remote.serving(name, true);
  }

  get circuitCount(): number {
    return this.#circuits.size;
  }

  /** Relay names with at least one live server (metrics). */
  get nameCount(): number {
    return this.#names.size;
  }

  /** Live servers of a name (for tests and status). */
  serversOf(name: string): number {
    return this.#names.get(name)?.servers.length ?? 0;
  }

  /**
   * The two ends of a circuit (for tests and status): each an agent connection, or the far end of
   * a circuit across the mesh (relay/mesh/remote-end.ts, whose bufferedAmount is the bytes the far
   * relay has not credited yet).
   */
  endsOf(circuitId: number): { readonly opener: RelayPeer; readonly server: RelayPeer } | undefined {
    const circuit = this.#circuits.get(circuitId);
    return circuit === undefined ? undefined : { opener: circuit.opener, server: circuit.server };
  }

  /** Circuits `peer` is an end of (for tests and status). */
  circuitsOf(peer: RelayPeer): number {
    return this.#routes.get(peer)?.circuits.size ?? 0;
  }

  register(peer: RelayPeer, id: number, name: string): void {
    const identity = peer.identity;
    if (identity === undefined || !relayNamesOf(identity.attributes).includes(name)) {
      this.logger.warn({ conn: peer.id, identifier: identity?.identifier, name }, 'relay name registration refused');
      peer.send({ t: 'error', id, code: 'WICKET_ERR_RELAY_NAME_FORBIDDEN', message: `this identity may not register relay name ${quoted(name)}` });
      return;
    }
    let entry = this.#names.get(name);
    if (entry === undefined) {
      entry = { servers: [], next: 0 };
      this.#names.set(name, entry);
      this.#remote?.serving(name, true);
    }
    if (!entry.servers.includes(peer)) entry.servers.push(peer);
    this.#routesOf(peer).names.add(name);
    this.logger.info({ conn: peer.id, identifier: identity.identifier, name, servers: entry.servers.length }, 'relay name registered');
    peer.send({ t: 'registered', id, name });
  }

  unregister(peer: RelayPeer, id: number, name: string): void {
    this.#removeServer(peer, name);
    this.logger.info({ conn: peer.id, identifier: peer.identity?.identifier, name }, 'relay name unregistered');
    peer.send({ t: 'unregistered', id, name });
  }

  /**
   * Joins `opener` to a live server of `name`, skipping servers whose identity is in `avoid` (ones
   * the opener already refused) and the opener itself. Answers `opened` or `error {id}`.
   */
  open(opener: RelayPeer, id: number, name: string, avoid: readonly string[] = []): void {
    const openerIdentity = opener.identity;
    const entry = this.#names.get(name);
    const servedHere = entry !== undefined && entry.servers.some((server) => this.#eligible(server, opener, avoid));
    // One hop only: a circuit another relay asked for is served here or nowhere.
    if (openerIdentity !== undefined && !servedHere && this.#remote !== undefined && opener.viaMesh !== true) {
      if (this.#openRemote(this.#remote, opener, id, name, avoid)) return;
    }
    if (openerIdentity === undefined || entry === undefined || !servedHere) {
      const others = avoid.length > 0 && entry !== undefined ? ' other than the ones this agent refused' : '';
      opener.send({ t: 'error', id, code: 'WICKET_ERR_RELAY_NAME_UNKNOWN', message: `no live outlet${others} serves ${quoted(name)}` });
      return;
    }
    const cap = this.settings.maxCircuitsPerConnection;
    const openerRoutes = this.#routesOf(opener);
    if (openerRoutes.circuits.size >= cap) {
      opener.send({ t: 'error', id, code: 'WICKET_ERR_RELAY_TOO_MANY_CIRCUITS', message: `this connection already has ${cap} circuits open` });
      return;
    }
    const server = this.#pickServer(entry, opener, avoid);
    const serverIdentity = server?.identity;
    if (server === undefined || serverIdentity === undefined) {
      opener.send({ t: 'error', id, code: 'WICKET_ERR_RELAY_TOO_MANY_CIRCUITS', message: `every outlet serving ${quoted(name)} has ${cap} circuits open` });
      return;
    }
    const circuit: Circuit = { id: this.#allocateCircuitId(), name, opener, server, bytesToServer: 0, bytesToOpener: 0 };
    this.#circuits.set(circuit.id, circuit);
    openerRoutes.circuits.add(circuit.id);
    this.#routesOf(server).circuits.add(circuit.id);
    // The server hears of the circuit first: the opener's first DATA frame can only follow
    // `opened`, and both travel to the server in order on its one socket. Each end is told who the
    // other is, and holds the handshake to that identity (a member cannot lend its circuit).
    server.send({ t: 'incoming', circuit: circuit.id, name, peer: openerIdentity.identifier });
    if (!this.#circuits.has(circuit.id)) {
      // That `incoming` took the server over its buffer cap: it was dropped, and the circuit with
      // it. The opener gets an answer, never an `opened` for a circuit already closed.
      opener.send({ t: 'error', id, code: 'WICKET_ERR_CIRCUIT_CLOSED', message: `the outlet serving ${quoted(name)} was dropped while the circuit opened` });
      return;
    }
    opener.send({ t: 'opened', id, circuit: circuit.id, peer: serverIdentity.identifier });
    this.logger.info(
      { circuit: circuit.id, name, opener: openerIdentity.identifier, server: serverIdentity.identifier, openerConn: opener.id, serverConn: server.id },
      'circuit opened',
    );
  }

  /** A DATA frame from `source`. Unknown circuit: dropped (a race with close). Someone else's: violation. */
  forward(source: RelayPeer, circuitId: number, frame: Buffer): void {
    const circuit = this.#circuits.get(circuitId);
    if (circuit === undefined) {
      this.counts.dropped('unknown_circuit');
      return;
    }
    if (circuit.opener === source) {
      circuit.bytesToServer += frame.length;
      this.flow.forward(source, circuit.server, frame);
    } else if (circuit.server === source) {
      circuit.bytesToOpener += frame.length;
      this.flow.forward(source, circuit.opener, frame);
    } else {
      this.counts.dropped('not_circuit_member');
      throw wicketError('WICKET_ERR_RELAY_PROTOCOL', `DATA on circuit ${circuitId}, which this connection is not part of`);
    }
  }

  /** `close` from an agent: the circuit goes, and the other end is told with the sender's code. */
  closeFromAgent(source: RelayPeer, circuitId: number, code: string): void {
    const circuit = this.#circuits.get(circuitId);
    if (circuit === undefined) return;
    if (circuit.opener !== source && circuit.server !== source) {
      throw wicketError('WICKET_ERR_RELAY_PROTOCOL', `close of circuit ${circuitId}, which this connection is not part of`);
    }
    // Only registered codes pass: they are shown to users at the other end.
    this.#closeCircuit(circuit, source, errorCodeFromWire(code, 'WICKET_ERR_CIRCUIT_CLOSED'));
  }

  /** A peer is gone: close its circuits (telling the other ends `code`) and drop its names. */
  drop(peer: RelayPeer, code: ErrorCode): void {
    const routes = this.#routes.get(peer);
    if (routes === undefined) return;
    for (const circuitId of [...routes.circuits]) {
      const circuit = this.#circuits.get(circuitId);
      if (circuit !== undefined) this.#closeCircuit(circuit, peer, code);
    }
    for (const name of [...routes.names]) this.#removeServer(peer, name);
    this.#routes.delete(peer);
  }

  /** Asks another relay to serve the circuit; false when none serving `name` is linked. */
  #openRemote(remote: RemoteRouting, opener: RelayPeer, requestId: number, name: string, avoid: readonly string[]): boolean {
    const openerRoutes = this.#routesOf(opener);
    const cap = this.settings.maxCircuitsPerConnection;
    if (openerRoutes.circuits.size >= cap) {
      opener.send({ t: 'error', id: requestId, code: 'WICKET_ERR_RELAY_TOO_MANY_CIRCUITS', message: `this connection already has ${cap} circuits open` });
      return true;
    }
    const circuitId = this.#allocateCircuitId();
    const server = remote.open({ circuit: circuitId, name, opener: opener.identity!.identifier, avoid }, (result) => this.#remoteAnswered(circuitId, result));
    if (server === undefined) return false;
    // The circuit exists from here, so an opener that leaves meanwhile closes it (and the far relay
    // hears so); its first DATA can only follow the `opened` sent when the far relay answers.
    const circuit: Circuit = { id: circuitId, name, opener, server, bytesToServer: 0, bytesToOpener: 0, pendingRequest: requestId };
    this.#circuits.set(circuitId, circuit);
    openerRoutes.circuits.add(circuitId);
    this.#routesOf(server).circuits.add(circuitId);
    return true;
  }

  #remoteAnswered(circuitId: number, result: { readonly peer: Identifier } | { readonly code: string; readonly message: string }): void {
    const circuit = this.#circuits.get(circuitId);
    if (circuit === undefined || circuit.pendingRequest === undefined) return; // closed while the far relay answered
    const requestId = circuit.pendingRequest;
    delete circuit.pendingRequest;
    if ('code' in result) {
      this.#forgetCircuit(circuit);
      circuit.opener.send({ t: 'error', id: requestId, code: errorCodeFromWire(result.code, 'WICKET_ERR_RELAY_NAME_UNKNOWN'), message: result.message });
      return;
    }
    circuit.opener.send({ t: 'opened', id: requestId, circuit: circuitId, peer: result.peer });
    this.logger.info({ circuit: circuitId, name: circuit.name, opener: circuit.opener.identity?.identifier, server: result.peer, openerConn: circuit.opener.id, serverConn: circuit.server.id }, 'circuit opened across the mesh');
  }

  #routesOf(peer: RelayPeer): PeerRoutes {
    let routes = this.#routes.get(peer);
    if (routes === undefined) {
      routes = { circuits: new Set(), names: new Set() };
      this.#routes.set(peer, routes);
    }
    return routes;
  }

  #eligible(server: RelayPeer, opener: RelayPeer, avoid: readonly string[]): boolean {
    const identifier = server.identity?.identifier;
    return server !== opener && server.isOpen && identifier !== undefined && !avoid.includes(identifier);
  }

  /** Round robin over eligible servers below the circuit cap. */
  #pickServer(entry: NameEntry, opener: RelayPeer, avoid: readonly string[]): RelayPeer | undefined {
    const count = entry.servers.length;
    for (let tried = 0; tried < count; tried++) {
      const server = entry.servers[entry.next % count]!;
      entry.next = (entry.next + 1) % count;
      if (this.#eligible(server, opener, avoid) && this.circuitsOf(server) < this.settings.maxCircuitsPerConnection) return server;
    }
    return undefined;
  }

  #allocateCircuitId(): number {
    // Bounded: live circuits are far fewer than 2^32 - 1 (connections × the per-connection cap).
    for (;;) {
      const id = this.#nextCircuitId;
      this.#nextCircuitId = id === CIRCUIT_ID_MAX ? 1 : id + 1;
      if (!this.#circuits.has(id)) return id;
    }
  }

  #forgetCircuit(circuit: Circuit): void {
    this.#circuits.delete(circuit.id);
    this.#routes.get(circuit.opener)?.circuits.delete(circuit.id);
    this.#routes.get(circuit.server)?.circuits.delete(circuit.id);
  }

  #closeCircuit(circuit: Circuit, closedBy: RelayPeer, code: ErrorCode): void {
    this.#forgetCircuit(circuit);
    const other = circuit.opener === closedBy ? circuit.server : circuit.opener;
    if (circuit.pendingRequest !== undefined && other === circuit.opener) {
      // The far relay refused or vanished before answering: the opener was never told `opened`.
      if (other.isOpen) other.send({ t: 'error', id: circuit.pendingRequest, code, message: `the circuit to ${quoted(circuit.name)} closed while it opened` });
    } else if (other.isOpen) other.send({ t: 'close', circuit: circuit.id, code });
    this.logger.info(
      {
        circuit: circuit.id,
        name: circuit.name,
        code,
        closedBy: closedBy.identity?.identifier,
        bytesToServer: circuit.bytesToServer,
        bytesToOpener: circuit.bytesToOpener,
      },
      'circuit closed',
    );
  }

  #removeServer(peer: RelayPeer, name: string): void {
    this.#routes.get(peer)?.names.delete(name);
    const entry = this.#names.get(name);
    if (entry === undefined) return;
    const index = entry.servers.indexOf(peer);
    if (index >= 0) entry.servers.splice(index, 1);
    if (entry.servers.length === 0) {
      this.#names.delete(name);
      this.#remote?.serving(name, false);
    }
  }
}
