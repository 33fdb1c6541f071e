import { describe, expect, it } from 'vitest';
import { RelayList } from '../../agent/relay-list.js';

// The round-robin over a ticket's relays (the process-level failover is test/relay/relay-failover.test.ts).

describe('RelayList', () => {
  it('moves to the next relay on each loss and asks for the backoff delay once per full round', () => {
    const list = new RelayList([{ url: 'ws://a' }, { url: 'ws://b' }, { url: 'ws://c' }]);
    const seen: [string, boolean][] = [];
    for (let i = 0; i < 6; i++) seen.push([list.current.url, list.failed()]);
    expect(seen).toEqual([
      ['ws://a', false],
      ['ws://b', false],
      ['ws://c', true],
      ['ws://a', false],
      ['ws://b', false],
      ['ws://c', true],
    ]);
  });

  it('a connection starts a new round from the relay it is on', () => {
    const list = new RelayList([{ url: 'ws://a' }, { url: 'ws://b' }]);
    list.failed();
    list.connected();
    expect(list.current.url).toBe('ws://b');
    expect(list.failed()).toBe(false);
    expect(list.current.url).toBe('ws://a');
    expect(list.failed()).toBe(true);
  });

  it('one relay: every loss is a full round (the backoff of an agent with one relay, as before)', () => {
    const list = new RelayList([{ url: 'ws://a' }]);
    expect([list.failed(), list.failed()]).toEqual([true, true]);
    expect(list.current.url).toBe('ws://a');
  });
});
