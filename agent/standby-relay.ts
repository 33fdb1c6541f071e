import type { Logger } from 'pino';
import type { ErrorCode } from '../protocol/errors.js';
import { asWicketError } from '../protocol/errors.js';
import type { Identity } from '../protocol/identity.js';
import { channelContextFor, type ChannelContext } from './channel-context.js';
import { type IncomingCircuit, RelayClient, type RelayClientState } from './relay-client.js';
import { SessionTable } from './session-table.js';
import type { Vault } from './vault.js';

// An outlet node's second relay connection (issue 14: "an outlet may hold registrations on two
// relays at once"). With `outletRelays: 2` in the node config the node keeps, beside its relay
// connection, a standby connection to another relay of the project (it keeps off the relay the
// main connection is on while the list has another) and registers every outlet's relay name on
// both. The relays route new circuits to either (through the mesh from any relay of the project),
// so when one relay dies the outlets are still reachable through the other at once, with no
// reconnect in between; only the circuits that ran through the dead relay close.
//
// The standby carries circuits other agents open to the outlets, nothing else: the node's inlets
// and its status's main relay are the main connection's. Circuit ids are per relay connection, so
// the standby keeps its own session table and channel context.

export interface StandbyStatus {
  url: string;
  state: RelayClientState;
  connected: boolean;
  /** Channels open over the standby connection. */
  channels: number;
}

export interface StandbyRelayOptions {
  vault: Vault;
  insecure: boolean;
  /** The node's main relay connection: the standby keeps off its relay, and shares its revoked set. */
  primary: RelayClient;
  channels: { logger: Logger; identity: Identity; authorityPublicKey: Buffer; now: () => number };
  /** A circuit for one of the outlets arrived on the standby: the node hands it to the outlet. */
  serve(incoming: IncomingCircuit, context: ChannelContext): void;
}

export class StandbyRelay {
  readonly #client: RelayClient;
  readonly #sessions = new SessionTable();
  readonly #log: Logger;

  constructor(o: StandbyRelayOptions) {
    const logger = o.channels.logger.child({ connection: 'standby' });
    this.#log = logger;
    const primary = o.primary;
    const client = new RelayClient({ vault: o.vault, logger, insecure: o.insecure, now: o.channels.now, avoidRelay: () => primary.relayUrl });
    this.#client = client;
    // The standby's channels refuse a peer revoked on either connection's word (the main
    // connection's channels consult its own revoked set, as before there was a standby).
    const isRevoked = (identifier: string): boolean => primary.revoked.isRevoked(identifier) || client.revoked.isRevoked(identifier);
    const context = channelContextFor({ ...o.channels, logger, relay: client, sessions: this.#sessions, isRevoked });
    client.on('data', (circuit: number, payload: Buffer) => this.#sessions.data(circuit, payload));
    client.on('circuit-closed', (circuit: number, code: ErrorCode) => this.#sessions.circuitClosed(circuit, code));
    client.on('drain', () => this.#sessions.drained());
    client.on('incoming', (incoming: IncomingCircuit) => o.serve(incoming, context));
    for (const source of [client, primary]) source.on('revoked', (identifier: string) => this.#sessions.revoked(identifier));
    client.on('disconnected', () => this.#sessions.disconnected());
    // A refusal only the standby meets (say, its relay refused a name) must not take the node down.
    client.on('fatal', (err) => logger.error({ code: asWicketError(err).code }, `the standby relay connection stopped: ${asWicketError(err).message}`));
  }

  start(): void {
    this.#client.start();
  }

  /** Registers an outlet's relay name on the standby too (at once, or on connect). */
  register(name: string): void {
    this.#client.register(name).catch((err: unknown) => this.#log.error({ relayName: name, code: asWicketError(err).code }, `outlet name not registered on the standby relay: ${asWicketError(err).message}`));
  }

  unregister(name: string): void {
    this.#client.unregister(name).catch((err: unknown) => this.#log.warn({ relayName: name, code: asWicketError(err).code }, 'unregistering on the standby relay failed; it drops the name with the connection'));
  }

  status(): StandbyStatus {
    return { url: this.#client.relayUrl, state: this.#client.state, connected: this.#client.connected, channels: this.#sessions.size };
  }

  async stop(): Promise<void> {
    this.#sessions.closeAll('WICKET_ERR_CHANNEL_CLOSED', 'node stopping');
    await this.#client.stop();
  }
}
