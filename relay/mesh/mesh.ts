import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import type { Credential } from '../../protocol/credential.js';
import { asWicketError } from '../../protocol/errors.js';
import { Identity, type Identifier } from '../../protocol/identity.js';
import { MESH_CREDIT_BATCH_BYTES, MESH_DIAL_INTERVAL_MS, MESH_DIAL_TIMEOUT_MS } from '../../protocol/limits.js';
import type { MeshMessage } from '../../protocol/mesh-messages.js';
import { parseAvoidList } from '../../protocol/relay-messages.js';
import type { AuthorityStore, RelayRecord } from '../authority/store.js';
import type { FlowControl } from '../flow-control.js';
import type { RelayPeer } from '../peer.js';
import type { RemoteOpenRequest, RemoteRouting, Router } from '../router.js';
import type { RelaySettings } from '../settings.js';
import type { FrameTap } from '../tap.js';
import { dialRelayPeer } from './mesh-dial.js';
import { MeshLink, type MeshLinkContext } from './mesh-link.js';
import { NameDirectory } from './name-directory.js';
import { RemoteEnd, type OpenAnswer, type RemoteEndHooks } from './remote-end.js';

// The relays of one project, linked (DESIGN.md, "Several relays"; protocol/README.md, "Relay
// mesh"). Every relay on a shared store keeps one link to every other live relay: the relay with
// the smaller id dials (so a pair never races to two links), the other accepts on MESH_PATH. A
// circuit whose name no local agent serves goes to a relay the store says serves it, over exactly
// one hop: a relay never passes on a circuit another relay asked it for.
//
// The mesh owns the links (by peer relay id), its per-process relay key and credential, and the
// name directory; the router owns the circuits, and sees the far ends only as RelayPeers.

export interface MeshOptions {
  readonly relayId: string;
  readonly store: AuthorityStore;
  readonly authorityPublicKey: Buffer;
  /** A credential for this relay's key naming its relay id, signed by the project authority. */
  readonly relayCredential: (publicKey: Buffer, relayId: string) => Promise<Credential>;
  readonly router: Router;
  readonly flow: FlowControl;
  readonly settings: RelaySettings;
  readonly logger: Logger;
  readonly now: () => number;
  readonly tap: FrameTap | undefined;
}

export class Mesh implements RemoteRouting {
  /** Fresh per process and never written anywhere: a relay's link identity lives and dies with it. */
  readonly #identity = Identity.generate();
  readonly #options: MeshOptions;
  readonly #directory: NameDirectory;
  /** Open links by the other relay's id. */
  readonly #links = new Map<string, MeshLink>();
  /** Every link not yet closed, open or still in its handshake (for shutdown). */
  readonly #all = new Set<MeshLink>();
  readonly #dialing = new Set<string>();
  readonly #hooks: RemoteEndHooks;
  readonly #creditBatch: number;
  readonly #context: MeshLinkContext;
  #credential: Promise<Credential> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #next = 0;
  #stopped = false;

  constructor(options: MeshOptions) {
    this.#options = options;
    const { router, flow, settings } = options;
    this.#directory = new NameDirectory({ store: options.store, relayId: options.relayId, now: options.now, logger: options.logger });
    // Credit must come back before the sender's queue could pause its source, whatever the settings.
    this.#creditBatch = Math.max(1, Math.min(MESH_CREDIT_BATCH_BYTES, Math.floor(settings.lowWaterBytes / 2)));
    this.#hooks = {
      forward: (end, circuit, frame) => router.forward(end, circuit, frame),
      drained: (end) => flow.drained(end),
      closed: (end, code) => {
        router.drop(end, code);
        flow.forget(end);
      },
    };
    this.#context = {
      relayId: options.relayId,
      identity: this.#identity,
      credential: () => this.#currentCredential(),
      authorityPublicKey: options.authorityPublicKey,
      now: options.now,
      logger: options.logger,
      tap: options.tap,
      handshakeTimeoutMs: settings.meshHandshakeTimeoutMs,
      keepaliveIntervalMs: settings.keepaliveIntervalMs,
      keepaliveDeadAfterMs: settings.keepaliveDeadAfterMs,
      opened: (link) => this.#linkOpened(link),
      openRequested: (link, request) => this.#openRequested(link, request),
      closed: (link) => this.#linkClosed(link),
    };
  }

  /** Reads the name directory, links to the live relays, and keeps doing so. */
  async start(): Promise<void> {
    await this.#directory.start();
    this.#options.router.setRemote(this);
    this.#timer = setInterval(() => void this.#linkToLiveRelays(), MESH_DIAL_INTERVAL_MS);
    this.#timer.unref();
    void this.#linkToLiveRelays();
  }

  stop(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
    // Connections closing from here on must not write served names to a store about to close.
    this.#options.router.setRemote(undefined);
    this.#directory.stop();
    for (const link of [...this.#all]) link.close('relay shutting down');
  }

  /** A WebSocket on MESH_PATH: another relay dialled this one. */
  accept(ws: WebSocket): void {
    this.#attach(ws);
  }

  /** Open links (metrics, tests). */
  get linkCount(): number {
    return this.#links.size;
  }

  /** Circuits whose other end is on another relay (metrics). */
  get circuitCount(): number {
    let count = 0;
    for (const link of this.#links.values()) count += link.circuitCount;
    return count;
  }

  /** Relay ids this relay has an open link to (status, tests). */
  linkedRelays(): string[] {
    return [...this.#links.keys()];
  }

  // --- RemoteRouting (the router's side) ---------------------------------------------------------

  open(request: RemoteOpenRequest, answer: (result: OpenAnswer) => void): RelayPeer | undefined {
    const linked = this.#directory.relaysServing(request.name).filter((relayId) => this.#links.get(relayId)?.isOpen === true);
    if (linked.length === 0) return undefined;
    const link = this.#links.get(linked[this.#next++ % linked.length]!)!;
    return RemoteEnd.opening(link, this.#hooks, this.#creditBatch, request, answer);
  }

  serving(name: string, served: boolean): void {
    this.#directory.localServing(name, served);
  }

  // --- links ---------------------------------------------------------------------------------------

  #currentCredential(): Promise<Credential> {
    const cached = this.#credential;
    const fresh = cached?.then((credential) => (credential.expiresAt - this.#options.now() > (credential.expiresAt - credential.issuedAt) / 2 ? credential : undefined));
    const make = (): Promise<Credential> => {
      const made = this.#options.relayCredential(this.#identity.publicKey, this.#options.relayId);
      this.#credential = made;
      // A failed request is not cached: the next link asks again.
      made.catch(() => {
        if (this.#credential === made) this.#credential = undefined;
      });
      return made;
    };
    if (fresh === undefined) return make();
    return fresh.then((credential) => credential ?? make(), make);
  }

  async #linkToLiveRelays(): Promise<void> {
    if (this.#stopped) return;
    let relays: RelayRecord[];
    try {
      relays = await this.#options.store.liveRelays(this.#options.now());
    } catch {
      return; // the store outage is reported elsewhere; links already open go on
    }
    for (const relay of relays) {
      if (relay.relayId <= this.#options.relayId || this.#links.has(relay.relayId) || this.#dialing.has(relay.relayId)) continue;
      void this.#dial(relay);
    }
  }

  /**
   * The relay stays in #dialing until its link opens or closes, not just until the socket opens: a
   * handshake slower than the dial interval must not start a second link that would replace it.
   */
  async #dial(relay: RelayRecord): Promise<void> {
    this.#dialing.add(relay.relayId);
    try {
      const target = { url: relay.url, ...(relay.fingerprint === undefined ? {} : { fingerprint: relay.fingerprint }) };
      await dialRelayPeer(target, MESH_DIAL_TIMEOUT_MS, (ws) => this.#attach(ws, relay.relayId));
    } catch (err) {
      this.#dialing.delete(relay.relayId);
      this.#options.logger.debug({ peer: relay.relayId, url: relay.url, code: asWicketError(err).code, reason: asWicketError(err).message }, 'could not link to a relay; trying again');
    }
  }

  /**
   * A link on a WebSocket that just opened (dialled, expecting `expectedPeer`) or was accepted. Called
   * in the same tick as the socket's open, so the link listens before any frame can arrive.
   */
  #attach(ws: WebSocket, expectedPeer?: string): void {
    if (this.#stopped) {
      if (expectedPeer !== undefined) this.#dialing.delete(expectedPeer);
      return ws.terminate();
    }
    this.#all.add(new MeshLink(ws, this.#context, expectedPeer));
  }

  #linkOpened(link: MeshLink): void {
    this.#dialing.delete(link.peerRelayId);
    // A relay that redials (it saw the old link die first) replaces the link this side still holds.
    const existing = this.#links.get(link.peerRelayId);
    this.#links.set(link.peerRelayId, link);
    existing?.close('replaced by a newer link');
  }

  #linkClosed(link: MeshLink): void {
    this.#all.delete(link);
    if (link.dialledTo !== undefined) this.#dialing.delete(link.dialledTo);
    if (this.#links.get(link.peerRelayId) === link) this.#links.delete(link.peerRelayId);
  }

  #openRequested(link: MeshLink, request: Extract<MeshMessage, { t: 'open' }>): void {
    const end = RemoteEnd.answering(link, this.#hooks, this.#creditBatch, request.circuit, request.peer as Identifier);
    this.#options.router.open(end, request.circuit, request.name, request.avoid === undefined ? [] : parseAvoidList(request.avoid));
  }
}
