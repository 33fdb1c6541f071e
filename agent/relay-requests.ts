import { wicketError, type WicketError } from '../protocol/errors.js';
import { RELAY_REQUEST_TIMEOUT_MS } from '../protocol/limits.js';
import type { AdminOp, AgentToRelay, RelayToAgent } from '../protocol/relay-messages.js';
import { relayError } from './relay-link.js';

// Requests the agent sends to the relay with an id, and the replies that settle them:
//   register → registered, unregister → unregistered, open → opened, request → response,
//   or `error {id}` for any of them. A reply of the wrong type for its id is a protocol violation.
// Ids are u32, never 0, wrapping; one table per client (all cleared when a connection drops).

/** Agent-initiated messages that carry a request id (added here). */
export type OutgoingRequest =
  | { t: 'register'; name: string }
  | { t: 'unregister'; name: string }
  | { t: 'open'; name: string; avoid?: string }
  | { t: 'request'; op: AdminOp; args: Record<string, unknown> };

export type ReplyType = 'registered' | 'unregistered' | 'opened' | 'response';
export type Reply<T extends ReplyType> = Extract<RelayToAgent, { t: T }>;

interface Pending {
  expects: ReplyType;
  resolve: (m: RelayToAgent) => void;
  reject: (e: WicketError) => void;
  timer: NodeJS.Timeout;
}

export type SettleOutcome =
  | { kind: 'settled' }
  /** No request has this id (it timed out, or the relay invented it). */
  | { kind: 'unknown' }
  /** The reply's type does not answer the request: the caller closes the connection. */
  | { kind: 'mismatch'; error: WicketError };

export class PendingRequests {
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;

  /** Sends `message` with a fresh id through `send` and waits for its reply (or RELAY_TIMEOUT). */
  call<T extends ReplyType>(message: OutgoingRequest, expects: T, send: (m: AgentToRelay) => void): Promise<Reply<T>> {
    const id = this.#nextId;
    this.#nextId = this.#nextId >= 0xffffffff ? 1 : this.#nextId + 1;
    return new Promise<Reply<T>>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(wicketError('WICKET_ERR_RELAY_TIMEOUT', `the relay did not answer '${message.t}' within ${RELAY_REQUEST_TIMEOUT_MS} ms`));
      }, RELAY_REQUEST_TIMEOUT_MS);
      this.#pending.set(id, { expects, resolve: resolve as (m: RelayToAgent) => void, reject, timer });
      send({ ...message, id } as AgentToRelay);
    });
  }

  /** Settles request `id` with a reply or an `error {id}`. */
  settle(id: number, message: RelayToAgent): SettleOutcome {
    const p = this.#pending.get(id);
    if (p === undefined) return { kind: 'unknown' };
    if (message.t !== 'error' && message.t !== p.expects) {
      return { kind: 'mismatch', error: wicketError('WICKET_ERR_RELAY_PROTOCOL', `the relay answered request ${id} with '${message.t}', expected '${p.expects}'`) };
    }
    this.#pending.delete(id);
    clearTimeout(p.timer);
    if (message.t === 'error') p.reject(relayError(message.code, message.message));
    else p.resolve(message);
    return { kind: 'settled' };
  }

  /** The connection dropped: every waiting request fails with `err`. */
  rejectAll(err: WicketError): void {
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of pending) {
      clearTimeout(p.timer);
      p.reject(err);
    }
  }
}
