import { describe, expect, it } from 'vitest';
import { MAX_RELAY_URL_LEN, MAX_TICKET_RELAYS } from '../../protocol/limits.js';
import { acceptsFeature, FEATURE_RELAYS, parseRelaysMessage, relaysToWire, sameRelays } from '../../protocol/relay-directory.js';
import { decodeFrameFromRelay, encodeControl } from '../../protocol/relay-frames.js';
import { RELAY_SHAPES, validateRelayMessage } from '../../protocol/relay-messages.js';
import { codeOf } from '../helpers/error-code.js';

// The `relays` message (issue 14: agents learn the project's relays after enrollment): the list an
// agent takes is checked like a ticket's, and anything else is a protocol violation with one code.

const PIN = Buffer.alloc(32, 0xab);
const GOOD = [{ url: 'wss://a.example.com:8443', fingerprint: PIN.toString('base64url') }, { url: 'ws://127.0.0.1:7001' }];

describe('relays message', () => {
  it('round-trips a list in order with each pin, through the frame codec', () => {
    const relays = [{ url: 'wss://a.example.com:8443', fingerprint: PIN }, { url: 'ws://127.0.0.1:7001' }];
    const frame = decodeFrameFromRelay(encodeControl({ t: 'relays', relays: relaysToWire(relays) }));
    if (frame.kind !== 'control' || frame.message.t !== 'relays') throw new Error('not a relays message');
    const parsed = parseRelaysMessage(frame.message.relays);
    expect(sameRelays(parsed, relays)).toBe(true);
    expect(parsed[0]!.fingerprint!.equals(PIN)).toBe(true);
    expect(parsed[1]!.fingerprint).toBeUndefined();
    expect(RELAY_SHAPES.relays).toEqual({ relays: 'list' });
  });

  it(`takes 1 to MAX_TICKET_RELAYS (${MAX_TICKET_RELAYS}) relays; more, none or not a list is WICKET_ERR_RELAY_PROTOCOL`, () => {
    const many = (n: number) => Array.from({ length: n }, (_, i) => ({ url: `ws://127.0.0.1:${7000 + i}` }));
    expect(parseRelaysMessage(many(MAX_TICKET_RELAYS))).toHaveLength(8);
    expect(codeOf(() => parseRelaysMessage(many(MAX_TICKET_RELAYS + 1)))).toBe('WICKET_ERR_RELAY_PROTOCOL');
    expect(codeOf(() => parseRelaysMessage(many(100_000)))).toBe('WICKET_ERR_RELAY_PROTOCOL');
    expect(codeOf(() => parseRelaysMessage([]))).toBe('WICKET_ERR_RELAY_PROTOCOL');
    expect(codeOf(() => parseRelaysMessage('ws://a'))).toBe('WICKET_ERR_RELAY_PROTOCOL');
    // The frame validator: wrong kinds never reach the parser.
    for (const relays of ['ws://a', 5, null, { url: 'ws://a' }]) {
      expect(codeOf(() => validateRelayMessage({ t: 'relays', relays }))).toBe('WICKET_ERR_RELAY_PROTOCOL');
    }
    expect(codeOf(() => validateRelayMessage({ t: 'relays' }))).toBe('WICKET_ERR_RELAY_PROTOCOL');
    expect(codeOf(() => validateRelayMessage({ t: 'relays', relays: GOOD, extra: 1 }))).toBe('WICKET_ERR_RELAY_PROTOCOL');
  });

  it('refuses every entry outside the ticket rules, naming the entry and never echoing it whole', () => {
    const cases: [string, unknown][] = [
      ['http scheme', { url: 'http://a.example.com' }],
      ['no host', { url: 'ws://' }],
      ['user and password', { url: 'wss://user:pw@a.example.com' }],
      ['fragment', { url: 'wss://a.example.com/#x' }],
      ['a space', { url: 'wss://a.example.com/ x' }],
      ['non-ASCII', { url: 'wss://ä.example.com' }],
      ['empty URL', { url: '' }],
      ['URL over the cap', { url: `wss://a.example.com/${'x'.repeat(MAX_RELAY_URL_LEN)}` }],
      ['URL not a string', { url: 7 }],
      ['no URL', { fingerprint: PIN.toString('base64url') }],
      ['fingerprint of 31 bytes', { url: 'wss://a.example.com', fingerprint: Buffer.alloc(31).toString('base64url') }],
      ['fingerprint of 33 bytes', { url: 'wss://a.example.com', fingerprint: Buffer.alloc(33).toString('base64url') }],
      ['fingerprint in base64 (+ and /)', { url: 'wss://a.example.com', fingerprint: Buffer.alloc(32, 0xfb).toString('base64') }],
      ['fingerprint not canonical', { url: 'wss://a.example.com', fingerprint: `${PIN.toString('base64url').slice(0, -1)}x` }],
      ['fingerprint a number', { url: 'wss://a.example.com', fingerprint: 32 }],
      ['an extra field', { url: 'wss://a.example.com', region: 'eu' }],
      ['an entry that is a string', 'wss://a.example.com'],
      ['an entry that is a list', ['wss://a.example.com']],
      ['an entry that is null', null],
    ];
    for (const [name, entry] of cases) {
      let message = '';
      const code = codeOf(() => {
        try {
          parseRelaysMessage([GOOD[0], entry]);
        } catch (err) {
          message = (err as Error).message;
          throw err;
        }
      });
      expect(code, name).toBe('WICKET_ERR_RELAY_PROTOCOL');
      expect(message, name).toMatch(/relay 2/);
      expect(message.length, name).toBeLessThan(400);
    }
  });

  it('refuses a URL listed twice, even with different pins', () => {
    expect(codeOf(() => parseRelaysMessage([GOOD[1], { url: GOOD[1]!.url, fingerprint: PIN.toString('base64url') }]))).toBe('WICKET_ERR_RELAY_PROTOCOL');
  });

  it('the features header: a comma-separated list of tokens, bounded; anything else means no features', () => {
    expect(acceptsFeature('relays', FEATURE_RELAYS)).toBe(true);
    expect(acceptsFeature('future, relays ', FEATURE_RELAYS)).toBe(true);
    expect(acceptsFeature('relayss', FEATURE_RELAYS)).toBe(false);
    expect(acceptsFeature(undefined, FEATURE_RELAYS)).toBe(false);
    expect(acceptsFeature(['relays', 'relays'], FEATURE_RELAYS)).toBe(false);
    expect(acceptsFeature(`${'x,'.repeat(200)}relays`, FEATURE_RELAYS)).toBe(false);
  });
});
