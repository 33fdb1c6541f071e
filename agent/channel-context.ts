import type { Logger } from 'pino';
import type { Identity } from '../protocol/identity.js';
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

/**
 * The context of channels over `relay`: circuits are that connection's (ids are per relay), the
 * credential its latest, and a handshake consults `isRevoked` (the node's revoked sets).
 */
export function channelContextFor(o: {
  relay: RelayClient;
  sessions: SessionTable;
  logger: Logger;
  identity: Identity;
  authorityPublicKey: Buffer;
  now: () => number;
  isRevoked: (identifier: string) => boolean;
}): ChannelContext {
  const { relay } = o;
  return {
    relay,
    sessions: o.sessions,
    logger: o.logger,
    portFor: (circuit: number): CircuitPort => ({
      send: (frame) => relay.sendData(circuit, frame),
      close: (code) => relay.closeCircuit(circuit, code),
    }),
    channelOptions: (relayName: string, expectedPeer: string): SecureChannelOptions => ({
      identity: o.identity,
      credential: relay.credential(),
      authorityPublicKey: o.authorityPublicKey,
      now: o.now,
      // Both ends bind the relay name into the handshake: a relay that routes a circuit for
      // one name to the outlet of another makes the handshake fail instead of succeed.
      prologue: Buffer.from(relayName, 'utf8'),
      expectedPeer,
      isRevoked: o.isRevoked,
    }),
  };
}
