import type { WicketError } from '../../protocol/errors.js';
import type { Identifier } from '../../protocol/identity.js';
import type { RelayToAgent } from '../../protocol/relay-messages.js';
import type { FailOptions, PeerIdentity, RelayPeer } from '../../relay/peer.js';

// A RelayPeer with no socket, for unit tests of the router and flow control: it records what it
// was sent and told to do, and its queue is a number the test sets.

let nextId = 10_000;

export class FakePeer implements RelayPeer {
  readonly id = nextId++;
  readonly sent: RelayToAgent[] = [];
  readonly forwarded: { frame: Buffer; reportWhenWritten: boolean }[] = [];
  bufferedAmount = 0;
  readingPaused = false;
  pings = 0;
  failure: { err: WicketError; options: FailOptions } | undefined;
  #identity: PeerIdentity | undefined;

  constructor(identifier?: string, attributes: Record<string, string> = {}) {
    this.#identity = identifier === undefined ? undefined : { identifier: identifier as Identifier, attributes };
  }

  get identity(): PeerIdentity | undefined {
    return this.failure === undefined ? this.#identity : undefined;
  }

  get isOpen(): boolean {
    return this.#identity !== undefined && this.failure === undefined;
  }

  send(message: RelayToAgent): void {
    this.sent.push(message);
  }

  forward(frame: Buffer, reportWhenWritten: boolean): void {
    this.forwarded.push({ frame, reportWhenWritten });
    this.bufferedAmount += frame.length;
  }

  pauseReading(): void {
    this.readingPaused = true;
  }

  resumeReading(): void {
    this.readingPaused = false;
  }

  ping(): void {
    this.pings++;
  }

  fail(err: WicketError, options: FailOptions = {}): void {
    this.failure ??= { err, options };
  }

  /** The messages of type `t` it was sent, in order. */
  sentOf<T extends RelayToAgent['t']>(t: T): Extract<RelayToAgent, { t: T }>[] {
    return this.sent.filter((m): m is Extract<RelayToAgent, { t: T }> => m.t === t);
  }
}
