import { describe, expect, it } from 'vitest';
import { RELAY_CLIENT_TRANSITIONS } from '../../agent/relay-client-states.js';
import { SESSION_TRANSITIONS } from '../../agent/secure-session.js';
import { isWicketError } from '../../protocol/errors.js';
import { checkTransition, Lifecycle, type Transitions } from '../../protocol/lifecycle.js';
import { RECEIVE_TRANSITIONS, SEND_TRANSITIONS } from '../../protocol/mux/index.js';
import { RECEIVE_CREDIT_TRANSITIONS, SEND_CREDIT_TRANSITIONS } from '../../protocol/mux/session-window.js';
import { CONNECTION_TRANSITIONS } from '../../relay/connection.js';

// Every state machine's table (relay connection, relay client, secure session, mux stream halves,
// mux session credit):
// each listed move is allowed, and every move it does not list throws WICKET_ERR_INTERNAL and
// leaves the state where it was. A bug that tries an impossible move is loud, never silent.

const TABLES: Record<string, Transitions<string>> = {
  'relay connection': CONNECTION_TRANSITIONS,
  'relay client': RELAY_CLIENT_TRANSITIONS,
  'secure session': SESSION_TRANSITIONS,
  'mux stream send half': SEND_TRANSITIONS,
  'mux stream receive half': RECEIVE_TRANSITIONS,
  'mux session receive credit': RECEIVE_CREDIT_TRANSITIONS,
  'mux session send credit': SEND_CREDIT_TRANSITIONS,
};

describe('named state machines', () => {
  for (const [name, table] of Object.entries(TABLES)) {
    it(`${name}: listed moves are allowed, every other move throws and changes nothing`, () => {
      const states = Object.keys(table);
      let illegal = 0;
      for (const from of states) {
        for (const to of states) {
          const machine = new Lifecycle(name, table, from);
          if (table[from]!.includes(to)) {
            machine.to(to);
            expect(machine.state).toBe(to);
            continue;
          }
          illegal++;
          let thrown: unknown;
          try {
            machine.to(to);
          } catch (err) {
            thrown = err;
          }
          expect(isWicketError(thrown, 'WICKET_ERR_INTERNAL'), `${from} -> ${to}`).toBe(true);
          expect((thrown as Error).message).toContain(`${name}: illegal transition ${from} -> ${to}`);
          expect(machine.state).toBe(from);
        }
      }
      expect(illegal).toBeGreaterThan(0);
      // Every state the table moves to is one of its states (no typo'd target).
      for (const targets of Object.values(table)) for (const to of targets) expect(states).toContain(to);
    });
  }

  it('final states have no way out: closed, stopped, fatal', () => {
    expect(CONNECTION_TRANSITIONS.closed).toEqual([]);
    expect(RELAY_CLIENT_TRANSITIONS.stopped).toEqual([]);
    expect(RELAY_CLIENT_TRANSITIONS.fatal).toEqual([]);
    expect(SESSION_TRANSITIONS.closed).toEqual([]);
  });

  it('a Lifecycle reports each move to its observer, never a refused one', () => {
    const moves: string[] = [];
    const machine = new Lifecycle('door', { shut: ['open'], open: ['shut'] }, 'shut', (from, to) => moves.push(`${from}>${to}`));
    machine.to('open');
    expect(() => machine.to('open')).toThrow(/illegal transition open -> open/);
    machine.to('shut');
    expect(moves).toEqual(['shut>open', 'open>shut']);
    expect(machine.is('shut')).toBe(true);
    expect(machine.can('open')).toBe(true);
    expect(() => checkTransition('door', { shut: ['open'], open: ['shut'] }, 'shut', 'shut')).toThrow(/WICKET_ERR_INTERNAL/);
  });
});
