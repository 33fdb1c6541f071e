import type { Logger } from 'pino';
import { wicketError, type ErrorCode, ERROR_CODES } from '../protocol/errors.js';
import { MAX_RELAY_NAME_LEN } from '../protocol/limits.js';
import { relayNamesOf } from './authority/store.js';
import type { RelayConnection } from './connection.js';
import type { FlowControl } from './flow-control.js';
import type { RelaySettings } from './settings.js';

// Names and circuits (relay-semantics.md, "Names and circuits"). A relay name maps to the live
// connections serving it (several for HA, picked round robin); a circuit joins an opener (inlet)
// to a server (outlet) under a relay-global id, so a DATA frame is forwarded as the very Buffer
// that arrived, never re-encoded. The router never looks inside a payload.

interface Circuit {
  readonly id: number;
  readonly name: string;
  readonly opener: RelayConnection;
  readonly server: RelayConnection;
  bytesToServer: number;
  bytesToOpener: number;
}

interface NameEntry {
  readonly servers: RelayConnection[];
  next: number;
}

const CIRCUIT_ID_MAX = 0xffff_ffff;

/** A close code from an agent is forwarded only when it is a known code (it is shown to users). */
function forwardableCode(code: string): ErrorCode {
  return Object.hasOwn(ERROR_CODES, code) ? (code as ErrorCode) : 'WICKET_ERR_CIRCUIT_CLOSED';
}

export class Router {
  readonly #names = new Map<string, NameEntry>();
  readonly #circuits = new Map<number, Circuit>();
  // Ids count up and wrap, skipping 0 and live ids, so a closed circuit's id is not reused soon
  // (a late frame for it is dropped instead of reaching a new circuit).
  #nextCircuitId = 1;

  constructor(
    private readonly flow: FlowControl,
    private readonly settings: RelaySettings,
    private readonly logger: Logger,
  ) {}

  get circuitCount(): number {
    return this.#circuits.size;
  }

  /** Live servers of a name (for tests and status). */
  serversOf(name: string): number {
    return this.#names.get(name)?.servers.length ?? 0;
  }

  register(connection: RelayConnection, id: number, name: string): void {
    const allowed = relayNamesOf(connection.credential?.attributes ?? {});
    if (!allowed.includes(name)) {
      this.logger.warn({ conn: connection.id, identifier: connection.identifier, name }, 'relay name registration refused');
      connection.sendError(id, wicketError('WICKET_ERR_RELAY_NAME_FORBIDDEN', `this identity may not register relay name ${JSON.stringify(name.slice(0, MAX_RELAY_NAME_LEN))}`));
      return;
    }
    let entry = this.#names.get(name);
    if (entry === undefined) {
      entry = { servers: [], next: 0 };
      this.#names.set(name, entry);
    }
    if (!entry.servers.includes(connection)) entry.servers.push(connection);
    connection.names.add(name);
    this.logger.info({ conn: connection.id, identifier: connection.identifier, name, servers: entry.servers.length }, 'relay name registered');
    connection.send({ t: 'registered', id, name });
  }

  unregister(connection: RelayConnection, id: number, name: string): void {
    this.#removeServer(connection, name);
    this.logger.info({ conn: connection.id, identifier: connection.identifier, name }, 'relay name unregistered');
    connection.send({ t: 'unregistered', id, name });
  }

  open(opener: RelayConnection, id: number, name: string): void {
    const entry = this.#names.get(name);
    const candidates = entry?.servers.filter((server) => server !== opener && server.state === 'authenticated') ?? [];
    if (entry === undefined || candidates.length === 0) {
      opener.sendError(id, wicketError('WICKET_ERR_RELAY_NAME_UNKNOWN', `no live outlet serves ${JSON.stringify(name.slice(0, MAX_RELAY_NAME_LEN))}`));
      return;
    }
    const cap = this.settings.maxCircuitsPerConnection;
    if (opener.circuits.size >= cap) {
      opener.sendError(id, wicketError('WICKET_ERR_RELAY_TOO_MANY_CIRCUITS', `this connection already has ${cap} circuits open`));
      return;
    }
    const server = this.#pickServer(entry, opener);
    if (server === undefined) {
      opener.sendError(id, wicketError('WICKET_ERR_RELAY_TOO_MANY_CIRCUITS', `every outlet serving ${JSON.stringify(name)} has ${cap} circuits open`));
      return;
    }
    const circuit: Circuit = { id: this.#allocateCircuitId(), name, opener, server, bytesToServer: 0, bytesToOpener: 0 };
    this.#circuits.set(circuit.id, circuit);
    opener.circuits.add(circuit.id);
    server.circuits.add(circuit.id);
    // The server hears of the circuit first: the opener's first DATA frame can only follow `opened`,
    // and both travel to the server in order on its one socket.
    server.send({ t: 'incoming', circuit: circuit.id, name, peer: opener.identifier! });
    opener.send({ t: 'opened', id, circuit: circuit.id, peer: server.identifier! });
    this.logger.info(
      { circuit: circuit.id, name, opener: opener.identifier, server: server.identifier, openerConn: opener.id, serverConn: server.id },
      'circuit opened',
    );
  }

  /** Round robin over live servers below the circuit cap. */
  #pickServer(entry: NameEntry, opener: RelayConnection): RelayConnection | undefined {
    const count = entry.servers.length;
    for (let tried = 0; tried < count; tried++) {
      const server = entry.servers[entry.next % count]!;
      entry.next = (entry.next + 1) % count;
      if (server === opener || server.state !== 'authenticated') continue;
      if (server.circuits.size < this.settings.maxCircuitsPerConnection) return server;
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

  /** A DATA frame from `source`. Unknown circuit: dropped (a race with close). Someone else's: violation. */
  forward(source: RelayConnection, circuitId: number, frame: Buffer): void {
    const circuit = this.#circuits.get(circuitId);
    if (circuit === undefined) return;
    if (circuit.opener === source) {
      circuit.bytesToServer += frame.length;
      this.flow.forward(source, circuit.server, frame);
    } else if (circuit.server === source) {
      circuit.bytesToOpener += frame.length;
      this.flow.forward(source, circuit.opener, frame);
    } else {
      throw wicketError('WICKET_ERR_RELAY_PROTOCOL', `DATA on circuit ${circuitId}, which this connection is not part of`);
    }
  }

  /** `close` from an agent: the circuit goes, and the other end is told with the sender's code. */
  closeFromAgent(source: RelayConnection, circuitId: number, code: string): void {
    const circuit = this.#circuits.get(circuitId);
    if (circuit === undefined) return;
    if (circuit.opener !== source && circuit.server !== source) {
      throw wicketError('WICKET_ERR_RELAY_PROTOCOL', `close of circuit ${circuitId}, which this connection is not part of`);
    }
    this.#closeCircuit(circuit, source, forwardableCode(code));
  }

  #closeCircuit(circuit: Circuit, closedBy: RelayConnection, code: ErrorCode): void {
    this.#circuits.delete(circuit.id);
    circuit.opener.circuits.delete(circuit.id);
    circuit.server.circuits.delete(circuit.id);
    const other = circuit.opener === closedBy ? circuit.server : circuit.opener;
    if (other.state !== 'closed') other.send({ t: 'close', circuit: circuit.id, code });
    this.logger.info(
      {
        circuit: circuit.id,
        name: circuit.name,
        code,
        closedBy: closedBy.identifier,
        bytesToServer: circuit.bytesToServer,
        bytesToOpener: circuit.bytesToOpener,
      },
      'circuit closed',
    );
  }

  #removeServer(connection: RelayConnection, name: string): void {
    connection.names.delete(name);
    const entry = this.#names.get(name);
    if (entry === undefined) return;
    const index = entry.servers.indexOf(connection);
    if (index >= 0) entry.servers.splice(index, 1);
    if (entry.servers.length === 0) this.#names.delete(name);
  }

  /** A connection is gone: close its circuits (telling the other ends `code`) and drop its names. */
  dropConnection(connection: RelayConnection, code: ErrorCode): void {
    for (const circuitId of [...connection.circuits]) {
      const circuit = this.#circuits.get(circuitId);
      if (circuit !== undefined) this.#closeCircuit(circuit, connection, code);
    }
    connection.circuits.clear();
    for (const name of [...connection.names]) this.#removeServer(connection, name);
    this.flow.release(connection);
  }
}
