import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { wicketError } from '../../protocol/errors.js';
import { RELAYS_ATTRIBUTE } from '../../protocol/relay-names.js';
import { FlowControl } from '../../relay/flow-control.js';
import { RelayCounters } from '../../relay/relay-counters.js';
import { Router } from '../../relay/router.js';
import { relaySettings } from '../../relay/settings.js';
import { identifierFor } from '../helpers/identifier.js';
import { FakePeer } from './fake-peer.js';

// The router alone, with fake peers: names, circuits, who is told what, and what it forgets.
// (test/relay/routing.test.ts drives the same rules through real sockets.)

const quiet = pino({ level: 'silent' });

function router(settings = relaySettings(), counters = new RelayCounters()): Router {
  return new Router(new FlowControl(settings, quiet, counters), settings, quiet, counters);
}

const outletPeer = (n: number, names = 'svc'): FakePeer => new FakePeer(identifierFor(n), { [RELAYS_ATTRIBUTE]: names });
const inletPeer = (n: number): FakePeer => new FakePeer(identifierFor(n));

function openedCircuit(peer: FakePeer): number {
  const opened = peer.sentOf('opened').at(-1);
  if (opened === undefined) throw new Error(`no opened: ${JSON.stringify(peer.sent)}`);
  return opened.circuit;
}

describe('router', () => {
  it('registers only names the credential allows, and answers each request by id', () => {
    const r = router();
    const outlet = outletPeer(1, 'svc,other');
    r.register(outlet, 7, 'svc');
    r.register(outlet, 8, 'not-mine');
    expect(outlet.sent).toEqual([
      { t: 'registered', id: 7, name: 'svc' },
      { t: 'error', id: 8, code: 'WICKET_ERR_RELAY_NAME_FORBIDDEN', message: expect.stringContaining('not-mine') },
    ]);
    expect(r.serversOf('svc')).toBe(1);
    expect(r.serversOf('not-mine')).toBe(0);
  });

  it('an unauthenticated peer can neither register nor open', () => {
    const r = router();
    const stranger = new FakePeer();
    r.register(stranger, 1, 'svc');
    r.open(stranger, 2, 'svc');
    expect(stranger.sent.map((m) => (m.t === 'error' ? m.code : m.t))).toEqual(['WICKET_ERR_RELAY_NAME_FORBIDDEN', 'WICKET_ERR_RELAY_NAME_UNKNOWN']);
  });

  it('joins an opener to a server: the server hears `incoming` with the opener, first; the opener `opened` with the server', () => {
    const r = router();
    const outlet = outletPeer(1);
    const inlet = inletPeer(2);
    r.register(outlet, 1, 'svc');
    r.open(inlet, 5, 'svc');
    const circuit = openedCircuit(inlet);
    expect(outlet.sentOf('incoming')).toEqual([{ t: 'incoming', circuit, name: 'svc', peer: inlet.identity!.identifier }]);
    expect(inlet.sentOf('opened')).toEqual([{ t: 'opened', id: 5, circuit, peer: outlet.identity!.identifier }]);
    expect(r.circuitsOf(inlet)).toBe(1);
    expect(r.circuitsOf(outlet)).toBe(1);
  });

  it('forwards DATA both ways as the same Buffer, drops an unknown circuit, and throws for a stranger', () => {
    const counters = new RelayCounters();
    const r = router(relaySettings(), counters);
    const outlet = outletPeer(1);
    const inlet = inletPeer(2);
    const stranger = inletPeer(3);
    r.register(outlet, 1, 'svc');
    r.open(inlet, 1, 'svc');
    const circuit = openedCircuit(inlet);
    const up = Buffer.from('up');
    const down = Buffer.from('down');
    r.forward(inlet, circuit, up);
    r.forward(outlet, circuit, down);
    expect(outlet.forwarded[0]!.frame).toBe(up);
    expect(inlet.forwarded[0]!.frame).toBe(down);
    r.forward(inlet, circuit + 100, Buffer.from('late'));
    expect(() => r.forward(stranger, circuit, Buffer.from('x'))).toThrow(/WICKET_ERR_RELAY_PROTOCOL/);
    expect(counters.framesDropped()).toMatchObject({ unknown_circuit: 1, not_circuit_member: 1 });
    expect([counters.framesForwarded, counters.bytesForwarded]).toEqual([2, up.length + down.length]);
  });

  it('round robin over live servers, skipping the ones the opener avoids, and saying when only those are left', () => {
    const r = router();
    const [a, b] = [outletPeer(1), outletPeer(2)];
    r.register(a, 1, 'svc');
    r.register(b, 1, 'svc');
    const inlet = inletPeer(3);
    const picked = (avoid: string[] = []): string | undefined => {
      r.open(inlet, 1, 'svc', avoid);
      const last = inlet.sent.at(-1)!;
      return last.t === 'opened' ? last.peer : last.t;
    };
    expect(new Set([picked(), picked()])).toEqual(new Set([a.identity!.identifier, b.identity!.identifier]));
    for (let i = 0; i < 3; i++) expect(picked([a.identity!.identifier])).toBe(b.identity!.identifier);
    expect(picked([a.identity!.identifier, b.identity!.identifier])).toBe('error');
    expect(inlet.sent.at(-1)).toMatchObject({ code: 'WICKET_ERR_RELAY_NAME_UNKNOWN', message: expect.stringContaining('other than') });
  });

  it('a peer never gets a circuit to itself, and a closed server is skipped', () => {
    const r = router();
    const both = outletPeer(1);
    const other = outletPeer(2);
    r.register(both, 1, 'svc');
    r.register(other, 1, 'svc');
    for (let i = 0; i < 3; i++) {
      r.open(both, i, 'svc');
      expect(both.sentOf('opened').at(-1)?.peer).toBe(other.identity!.identifier);
    }
    other.fail(wicketError('WICKET_ERR_RELAY_TIMEOUT', 'gone'));
    r.open(both, 9, 'svc');
    expect(both.sent.at(-1)).toMatchObject({ t: 'error', code: 'WICKET_ERR_RELAY_NAME_UNKNOWN' });
  });

  it('caps circuits per connection', () => {
    const r = router(relaySettings({ maxCircuitsPerConnection: 2 }));
    const outlet = outletPeer(1);
    const inlet = inletPeer(2);
    r.register(outlet, 1, 'svc');
    for (let i = 0; i < 3; i++) r.open(inlet, i, 'svc');
    expect(inlet.sent.map((m) => (m.t === 'error' ? m.code : m.t))).toEqual(['opened', 'opened', 'WICKET_ERR_RELAY_TOO_MANY_CIRCUITS']);
  });

  it('close from one end tells the other with a registered code only; closing someone else\'s circuit throws', () => {
    const r = router();
    const outlet = outletPeer(1);
    const inlet = inletPeer(2);
    r.register(outlet, 1, 'svc');
    r.open(inlet, 1, 'svc');
    r.open(inlet, 2, 'svc');
    const [first, second] = inlet.sentOf('opened').map((m) => m.circuit);
    r.closeFromAgent(inlet, first!, 'WICKET_ERR_STREAM_RESET');
    r.closeFromAgent(outlet, second!, 'NOT_A_CODE');
    expect(outlet.sentOf('close')).toEqual([{ t: 'close', circuit: first, code: 'WICKET_ERR_STREAM_RESET' }]);
    expect(inlet.sentOf('close')).toEqual([{ t: 'close', circuit: second, code: 'WICKET_ERR_CIRCUIT_CLOSED' }]);
    r.open(inlet, 3, 'svc');
    expect(() => r.closeFromAgent(inletPeer(9), openedCircuit(inlet), 'WICKET_ERR_CIRCUIT_CLOSED')).toThrow(/not part of/);
  });

  it('dropping a peer closes its circuits with the given code at the other ends and forgets its names', () => {
    const r = router();
    const outlet = outletPeer(1);
    const inlet = inletPeer(2);
    r.register(outlet, 1, 'svc');
    r.open(inlet, 1, 'svc');
    const circuit = openedCircuit(inlet);
    r.drop(outlet, 'WICKET_ERR_REVOKED');
    expect(inlet.sentOf('close')).toEqual([{ t: 'close', circuit, code: 'WICKET_ERR_REVOKED' }]);
    expect(r.circuitCount).toBe(0);
    expect(r.serversOf('svc')).toBe(0);
    expect(r.circuitsOf(inlet)).toBe(0);
  });
});
