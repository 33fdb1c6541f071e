import type { Logger } from 'pino';
import type { SecureChannelOptions } from '../protocol/secure-channel/index.js';
import type { RelayClient } from './relay-client.js';
import type { CircuitPort } from './secure-session.js';
import type { SessionTable } from './session-table.js';

/** What inlets and outlets need from their node to run channels over its relay connection. */
export interface ChannelContext {
  relay: RelayClient;
  sessions: SessionTable;
  logger: Logger;
  /** The circuit seen as a port: DATA frames out through the relay client, close with a code. */
  portFor(circuit: number): CircuitPort;
  /**
   * Handshake options with the current credential and the node's revoked set: `relayName` is bound
   * into the prologue, and the peer must authenticate as `expectedPeer` (the identity the relay
   * joined the circuit to).
   */
  channelOptions(relayName: string, expectedPeer: string): SecureChannelOptions;
}
