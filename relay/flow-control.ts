import type { Logger } from 'pino';
import { wicketError } from '../protocol/errors.js';
import type { RelayConnection } from './connection.js';
import type { RelaySettings } from './settings.js';

// Forwarding with bounded memory (relay-semantics.md, "Backpressure"). A destination whose queued
// bytes (ws bufferedAmount) pass highWaterBytes pauses every source connection feeding it
// (ws.pause() stops reading that socket, so TCP pushes back on the sending agent); the sources
// resume once the destination drains under lowWaterBytes. A destination past hardCapBytes despite
// this (many sources, each with a read chunk in flight) stopped reading: it is dropped with
// WICKET_ERR_RELAY_OVERLOADED.
//
// Draining is observed through ws send callbacks, which fire as each queued frame reaches the
// kernel. Only sends made while the queue is above the low-water mark carry one, so a lightly
// loaded connection pays nothing; the socket's 'drain' event is a backstop.

export class FlowControl {
  constructor(
    private readonly settings: RelaySettings,
    private readonly logger: Logger,
  ) {}

  /** Called once per connection: wires its drain notifications. */
  attach(connection: RelayConnection): void {
    connection.socket.on('drain', () => this.#checkDrained(connection));
  }

  /** Sends `frame` (the very Buffer that arrived) to `destination`, pausing `source` if it must. */
  forward(source: RelayConnection, destination: RelayConnection, frame: Buffer): void {
    const ws = destination.ws;
    const queued = ws.bufferedAmount + frame.length;
    ws.send(frame, { binary: true }, queued > this.settings.lowWaterBytes ? destination.onFrameWritten : undefined);
    destination.bytesOut += frame.length;
    if (queued > this.settings.hardCapBytes) {
      this.logger.warn({ conn: destination.id, identifier: destination.identifier, queued }, 'destination over its hard cap; dropping it');
      destination.fail(wicketError('WICKET_ERR_RELAY_OVERLOADED', `connection queued ${queued} bytes without reading`));
      return;
    }
    if (queued > this.settings.highWaterBytes && !destination.pausedSources.has(source)) {
      destination.pausedSources.add(source);
      if (source.pausedBy.size === 0) {
        source.ws.pause();
        this.logger.debug({ conn: source.id, by: destination.id, queued }, 'source paused (destination full)');
      }
      source.pausedBy.add(destination);
    }
  }

  /** The destination's send callback: resume its sources once it is under the low-water mark. */
  checkDrained(destination: RelayConnection): void {
    this.#checkDrained(destination);
  }

  #checkDrained(destination: RelayConnection): void {
    if (destination.pausedSources.size === 0) return;
    if (destination.ws.bufferedAmount > this.settings.lowWaterBytes) return;
    this.#resumeSourcesOf(destination);
  }

  #resumeSourcesOf(destination: RelayConnection): void {
    for (const source of destination.pausedSources) {
      source.pausedBy.delete(destination);
      if (source.pausedBy.size === 0 && source.state !== 'closed') {
        source.ws.resume();
        this.logger.debug({ conn: source.id, by: destination.id }, 'source resumed');
      }
    }
    destination.pausedSources.clear();
  }

  /** A closing connection releases the sources it paused and forgets the ones that paused it. */
  release(connection: RelayConnection): void {
    this.#resumeSourcesOf(connection);
    for (const destination of connection.pausedBy) destination.pausedSources.delete(connection);
    connection.pausedBy.clear();
  }
}
