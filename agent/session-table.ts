import type { ErrorCode, WicketError } from '../protocol/errors.js';
import { CLOSED_EARLY_CIRCUITS_KEPT } from '../protocol/limits.js';
import type { SecureSession } from './secure-session.js';

/**
 * The sessions riding one relay connection, by circuit: dispatches the relay client's circuit
 * events to them, and applies connection-wide events (drain, disconnect, revocation) to all.
 */
export class SessionTable {
  readonly #sessions = new Map<number, SecureSession>();
  /** Circuits the relay closed before a session was attached (an `opened`/`close` race). */
  readonly #closedEarly = new Map<number, ErrorCode>();
  /** Told of every session that closes, with why (the node's metrics count failed handshakes). */
  readonly #closedListeners: ((session: SecureSession, error: WicketError) => void)[] = [];

  add(session: SecureSession): void {
    const early = this.#closedEarly.get(session.circuit);
    this.#sessions.set(session.circuit, session);
    session.once('closed', (error: WicketError) => {
      if (this.#sessions.get(session.circuit) === session) this.#sessions.delete(session.circuit);
      for (const listener of this.#closedListeners) listener(session, error);
    });
    if (early !== undefined) {
      this.#closedEarly.delete(session.circuit);
      session.circuitClosed(early);
    }
  }

  onSessionClosed(listener: (session: SecureSession, error: WicketError) => void): void {
    this.#closedListeners.push(listener);
  }

  get size(): number {
    return this.#sessions.size;
  }

  all(): SecureSession[] {
    return [...this.#sessions.values()];
  }

  data(circuit: number, payload: Buffer): void {
    // Unknown circuit: a race with a close; dropped like the relay does.
    this.#sessions.get(circuit)?.receive(payload);
  }

  circuitClosed(circuit: number, code: ErrorCode): void {
    const session = this.#sessions.get(circuit);
    if (session !== undefined) {
      session.circuitClosed(code);
      return;
    }
    this.#closedEarly.set(circuit, code);
    // Bounded: only the newest few matter (a session attaches within one turn of the event loop).
    if (this.#closedEarly.size > CLOSED_EARLY_CIRCUITS_KEPT) this.#closedEarly.delete(this.#closedEarly.keys().next().value!);
  }

  drained(): void {
    for (const session of this.#sessions.values()) session.transportDrained();
  }

  /** The relay connection is gone: every circuit on it is gone too. */
  disconnected(): void {
    for (const session of [...this.#sessions.values()]) session.circuitClosed('WICKET_ERR_CIRCUIT_CLOSED');
    this.#closedEarly.clear();
  }

  /** An identity was revoked: close every channel with it now (DESIGN.md property 5). */
  revoked(identifier: string): number {
    let closed = 0;
    for (const session of [...this.#sessions.values()]) {
      if (session.peerIdentifier === identifier) {
        session.close('WICKET_ERR_REVOKED', `peer ${identifier} was revoked`);
        closed++;
      }
    }
    return closed;
  }

  closeAll(code: ErrorCode, reason: string): void {
    for (const session of [...this.#sessions.values()]) session.close(code, reason);
  }
}
