import { describe, expect, it } from 'vitest';
import { RelayList } from '../../agent/relay-list.js';
import { MAX_TICKET_RELAYS } from '../../protocol/limits.js';

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

  it('learn: the listed relays replace the list in their order, the relay in use stays current, the next loss moves past it', () => {
    const list = new RelayList([{ url: 'ws://a' }, { url: 'ws://b' }]);
    list.failed();
    list.connected();
    expect(list.current.url).toBe('ws://b');
    expect(list.learn([{ url: 'ws://b' }, { url: 'ws://a' }, { url: 'ws://c' }])).toBe(true);
    expect(list.urls).toEqual(['ws://b', 'ws://a', 'ws://c']);
    expect(list.current.url).toBe('ws://b');
    expect(list.failed()).toBe(false);
    expect(list.current.url).toBe('ws://a');
  });

  it('learn: the same list (same pins) changes nothing; another pin is a change', () => {
    const pin = Buffer.alloc(32, 1);
    const list = new RelayList([{ url: 'ws://a' }, { url: 'wss://b', fingerprint: pin }]);
    expect(list.learn([{ url: 'ws://a' }, { url: 'wss://b', fingerprint: Buffer.from(pin) }])).toBe(false);
    expect(list.learn([{ url: 'ws://a' }, { url: 'wss://b', fingerprint: Buffer.alloc(32, 2) }])).toBe(true);
    expect(list.learn([{ url: 'ws://a' }, { url: 'wss://b' }])).toBe(true);
  });

  it(`learn: a list without the relay in use keeps it in front, within MAX_TICKET_RELAYS (${MAX_TICKET_RELAYS})`, () => {
    const list = new RelayList([{ url: 'ws://in-use' }]);
    const listed = Array.from({ length: MAX_TICKET_RELAYS }, (_, i) => ({ url: `ws://r${i}` }));
    expect(list.learn(listed)).toBe(true);
    expect(list.size).toBe(MAX_TICKET_RELAYS);
    expect(list.urls[0]).toBe('ws://in-use');
    expect(list.urls.slice(1)).toEqual(listed.slice(0, MAX_TICKET_RELAYS - 1).map((r) => r.url));
    expect(list.current.url).toBe('ws://in-use');
  });
});
