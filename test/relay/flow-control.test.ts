import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { FlowControl } from '../../relay/flow-control.js';
import { RelayCounters } from '../../relay/relay-counters.js';
import { relaySettings } from '../../relay/settings.js';
import { identifierFor } from '../helpers/identifier.js';
import { FakePeer } from './fake-peer.js';

// Flow control alone, with fake peers whose queues the test sets: who gets paused, by whom, and
// when they resume. (test/relay/routing.test.ts and hostile-peers.test.ts drive it through sockets.)

const quiet = pino({ level: 'silent' });
const settings = relaySettings({ lowWaterBytes: 100, highWaterBytes: 1_000, hardCapBytes: 10_000 });
const frame = (bytes: number): Buffer => Buffer.alloc(bytes);
const peer = (n: number): FakePeer => new FakePeer(identifierFor(n));

describe('flow control', () => {
  it('below high water nothing is paused, and only frames sent above low water ask for a drain report', () => {
    const counters = new RelayCounters();
    const flow = new FlowControl(settings, quiet, counters);
    const [source, destination] = [peer(1), peer(2)];
    flow.forward(source, destination, frame(50));
    flow.forward(source, destination, frame(500));
    expect(destination.forwarded.map((f) => f.reportWhenWritten)).toEqual([false, true]);
    expect(source.readingPaused).toBe(false);
    expect([counters.framesForwarded, counters.bytesForwarded, counters.pauses().destination_full]).toEqual([2, 550, 0]);
  });

  it('a destination past high water pauses every source feeding it; they resume once it drains under low water', () => {
    const counters = new RelayCounters();
    const flow = new FlowControl(settings, quiet, counters);
    const [a, b, destination] = [peer(1), peer(2), peer(3)];
    flow.forward(a, destination, frame(1_200));
    flow.forward(b, destination, frame(10));
    expect([a.readingPaused, b.readingPaused]).toEqual([true, true]);
    expect(flow.pausedByOthers(a)).toBe(true);
    expect(counters.pauses()).toEqual({ destination_full: 2, own_queue: 0 });
    destination.bufferedAmount = 500;
    flow.drained(destination);
    expect(a.readingPaused).toBe(true); // still above low water
    destination.bufferedAmount = 50;
    flow.drained(destination);
    expect([a.readingPaused, b.readingPaused]).toEqual([false, false]);
    expect(flow.pausedByOthers(a)).toBe(false);
  });

  it('a source paused by two destinations resumes only when both have drained', () => {
    const counters = new RelayCounters();
    const flow = new FlowControl(settings, quiet, counters);
    const [source, d1, d2] = [peer(1), peer(2), peer(3)];
    flow.forward(source, d1, frame(2_000));
    flow.forward(source, d2, frame(2_000));
    d1.bufferedAmount = 0;
    flow.drained(d1);
    expect(source.readingPaused).toBe(true);
    d2.bufferedAmount = 0;
    flow.drained(d2);
    expect(source.readingPaused).toBe(false);
  });

  it('past the hard cap the destination is dropped with WICKET_ERR_RELAY_OVERLOADED', () => {
    const counters = new RelayCounters();
    const flow = new FlowControl(settings, quiet, counters);
    const [source, destination] = [peer(1), peer(2)];
    destination.bufferedAmount = 9_999;
    flow.forward(source, destination, frame(10));
    expect(destination.failure?.err.code).toBe('WICKET_ERR_RELAY_OVERLOADED');
    expect([counters.framesDropped().destination_overloaded, counters.framesForwarded, counters.peersDropped().overloaded]).toEqual([1, 0, 1]);
  });

  it('replies count: a peer that sends control while its own queue is above high water is not read until it drains', () => {
    const counters = new RelayCounters();
    const flow = new FlowControl(settings, quiet, counters);
    const member = peer(1);
    flow.beforeControl(member);
    expect(member.readingPaused).toBe(false);
    member.bufferedAmount = 1_500;
    flow.beforeControl(member);
    expect(member.readingPaused).toBe(true);
    expect(flow.pausedByOwnQueue(member)).toBe(true);
    expect(counters.pauses()).toEqual({ destination_full: 0, own_queue: 1 });
    expect(flow.pausedByOthers(member)).toBe(false);
    member.bufferedAmount = 10;
    flow.drained(member);
    expect(member.readingPaused).toBe(false);
    member.bufferedAmount = 10_001;
    flow.afterControl(member);
    expect(member.failure?.err.code).toBe('WICKET_ERR_RELAY_OVERLOADED');
  });

  it('a closing peer releases the sources it paused and is forgotten by those that paused it', () => {
    const counters = new RelayCounters();
    const flow = new FlowControl(settings, quiet, counters);
    const [source, destination, other] = [peer(1), peer(2), peer(3)];
    flow.forward(source, destination, frame(2_000));
    flow.forward(destination, other, frame(2_000));
    expect([source.readingPaused, destination.readingPaused]).toEqual([true, true]);
    flow.forget(destination);
    expect(source.readingPaused).toBe(false);
    // `other` draining later touches nothing of the forgotten peer.
    other.bufferedAmount = 0;
    flow.drained(other);
    expect(flow.pausedByOthers(destination)).toBe(false);
  });
});
