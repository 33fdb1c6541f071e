import type { Inlet } from './inlet.js';
import type { Outlet } from './outlet.js';
import type { RelayClient } from './relay-client.js';

// When an agent node is ready for traffic (GET /readyz on the --metrics address, and the
// wicket_agent_ready gauge): connected to the relay, every outlet's relay name acknowledged by
// the relay on THIS connection (a peer can reach it), and every inlet listening (an app can). The
// node's 'ready' event is the first time this held; readiness is whether it holds now.

/**
 * The relay names the relay acknowledged on the current connection. The relay client registers
 * its names again after every reconnect without telling anyone; the node registers them again too
 * (idempotent at the relay) to get the acknowledgement it can count.
 */
export class RelayNameAcks {
  readonly #acked = new Set<string>();
  /** Counts connections, so an acknowledgement from a connection already gone is not kept. */
  #connection = 0;

  constructor(
    private readonly relay: RelayClient,
    private readonly isServed: (name: string) => boolean,
  ) {
    // Made before the node's own listeners, so a registration on 'connected' sees the new count.
    relay.on('connected', () => this.#connection++);
    relay.on('disconnected', () => this.#acked.clear());
  }

  /** Registers `name` (RelayClient.register: at once while disconnected); an acknowledgement is kept. */
  async register(name: string): Promise<void> {
    const connection = this.#connection;
    await this.relay.register(name);
    if (this.relay.connected && connection === this.#connection && this.isServed(name)) this.#acked.add(name);
  }

  forget(name: string): void {
    this.#acked.delete(name);
  }

  has(name: string): boolean {
    return this.#acked.has(name);
  }
}

export interface NodeParts {
  readonly stopping: boolean;
  readonly relay: RelayClient;
  readonly acks: RelayNameAcks;
  readonly inlets: Iterable<Inlet>;
  readonly outlets: Iterable<Outlet>;
}

/** Why the node is not ready, in one line, or undefined when it is. */
export function unreadiness({ stopping, relay, acks, inlets, outlets }: NodeParts): string | undefined {
  if (stopping) return 'the node is stopping';
  if (!relay.connected) {
    const code = relay.lastError?.code;
    return `relay connection ${relay.state}${code === undefined ? '' : ` (last error ${code})`}`;
  }
  for (const outlet of outlets) {
    if (!acks.has(outlet.spec.relay)) return `outlet ${outlet.spec.name}: relay name ${outlet.spec.relay} not registered`;
  }
  for (const inlet of inlets) if (!inlet.listening) return `inlet ${inlet.spec.name} not listening on ${inlet.address}`;
  return undefined;
}
