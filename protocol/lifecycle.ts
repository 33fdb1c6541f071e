import { wicketError } from './errors.js';

// A named state machine: the states, and for each state the states it may move to. Every state
// machine in Wicket (relay connection, relay client, secure session, mux stream halves) keeps its
// state in one of these instead of loose booleans, so that an illegal move is a loud bug
// (WICKET_ERR_INTERNAL, thrown) rather than a silent inconsistency, and so that status output and
// logs can name the state.
//
// Moving to the state one is already in is not a transition and is refused like any other move the
// table does not list: callers that may legitimately repeat a move check `is()` first.

export type Transitions<S extends string> = { readonly [From in S]: readonly S[] };

/**
 * Throws WICKET_ERR_INTERNAL unless `transitions` lets `from` move to `to`. For machines whose
 * state is a discriminated union carrying data (the relay connection's auth state), which check
 * each move with this instead of holding a Lifecycle.
 */
export function checkTransition<S extends string>(name: string, transitions: Transitions<S>, from: S, to: S): void {
  if (!transitions[from].includes(to)) throw wicketError('WICKET_ERR_INTERNAL', `${name}: illegal transition ${from} -> ${to}`);
}

export class Lifecycle<S extends string> {
  #state: S;

  /**
   * @param name       what this machine is, for error messages ("relay client", "stream 5 send half")
   * @param transitions for each state, the states it may move to (final states list none)
   * @param onMove     called after every move (logging); never called for a refused move
   */
  constructor(
    readonly name: string,
    private readonly transitions: Transitions<S>,
    initial: S,
    private readonly onMove?: (from: S, to: S) => void,
  ) {
    this.#state = initial;
  }

  get state(): S {
    return this.#state;
  }

  /** True in `state` (or `other`). Two fixed parameters, not a rest array: streams ask per frame. */
  is(state: S, other?: S): boolean {
    return this.#state === state || this.#state === other;
  }

  /** True when the table allows moving from the current state to `to`. */
  can(to: S): boolean {
    return this.transitions[this.#state].includes(to);
  }

  /** Moves to `to`; throws WICKET_ERR_INTERNAL when the table does not allow it. */
  to(to: S): void {
    const from = this.#state;
    checkTransition(this.name, this.transitions, from, to);
    this.#state = to;
    this.onMove?.(from, to);
  }
}
