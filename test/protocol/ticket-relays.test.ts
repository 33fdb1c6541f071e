import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MAX_RELAY_URL_LEN, MAX_TICKET_RELAYS, MAX_TICKET_TEXT_LEN } from '../../protocol/limits.js';
import { Secret } from '../../protocol/secret.js';
import { TICKET_PREFIX, decodeTicket, encodeTicket, type Ticket, type TicketRelay } from '../../protocol/ticket.js';
import { codeOf } from '../helpers/error-code.js';
import { seededRandom } from '../helpers/seeded.js';

// Version 2 tickets list several relays of one project (issue 14); one relay is still version 1.

function makeTicket(otherRelays?: TicketRelay[]): Ticket {
  return {
    relayUrl: 'wss://a.example.com:8443',
    relayCertFingerprint: Buffer.alloc(32, 0xf1),
    authorityPublicKey: Buffer.alloc(32, 0xa1),
    ticketId: Buffer.alloc(16, 0x1d),
    secret: new Secret(Buffer.alloc(32, 0x5e)),
    expiresAt: 1_700_003_600_000,
    ...(otherRelays === undefined ? {} : { otherRelays }),
  };
}

const TWO: TicketRelay[] = [{ url: 'ws://127.0.0.1:7001' }, { url: 'wss://c.example.com', fingerprint: Buffer.alloc(32, 0xc3) }];

function binaryOf(text: string): Buffer {
  return Buffer.from(text.slice(TICKET_PREFIX.length), 'base64url');
}

/** Writes a body as an issuer would (correct checksum), whatever it holds. */
function issue(body: Buffer): string {
  return TICKET_PREFIX + Buffer.concat([body, createHash('sha256').update(body).digest().subarray(0, 4)]).toString('base64url');
}

function bodyOf(text: string): Buffer {
  const b = binaryOf(text);
  return Buffer.from(b.subarray(0, b.length - 4));
}

describe('ticket with several relays', () => {
  it('round-trips the list in order with each pin, as version 2', () => {
    const text = encodeTicket(makeTicket(TWO));
    expect(binaryOf(text)[0]).toBe(2);
    const back = decodeTicket(text);
    expect(back.relayUrl).toBe('wss://a.example.com:8443');
    expect(back.relayCertFingerprint).toEqual(Buffer.alloc(32, 0xf1));
    expect(back.otherRelays).toEqual(TWO);
  });

  it('writes a one-relay ticket as version 1 (older agents read it) and reads it without a list', () => {
    const text = encodeTicket(makeTicket());
    expect(binaryOf(text)[0]).toBe(1);
    expect(decodeTicket(text).otherRelays).toBeUndefined();
    expect(encodeTicket(makeTicket([]))).toBe(text);
  });

  it('refuses to write too many relays, a repeated URL, a bad URL, or a text over the cap', () => {
    const many = Array.from({ length: MAX_TICKET_RELAYS }, (_, i) => ({ url: `ws://127.0.0.1:${7000 + i}` }));
    expect(codeOf(() => encodeTicket(makeTicket(many)))).toBe('WICKET_ERR_ARGUMENT');
    expect(codeOf(() => encodeTicket(makeTicket(many.slice(0, MAX_TICKET_RELAYS - 1))))).toBe('accepted');
    expect(codeOf(() => encodeTicket(makeTicket([{ url: 'wss://a.example.com:8443' }])))).toBe('WICKET_ERR_ARGUMENT');
    expect(codeOf(() => encodeTicket(makeTicket([{ url: 'http://b.example.com' }])))).toBe('WICKET_ERR_ARGUMENT');
    expect(codeOf(() => encodeTicket(makeTicket([{ url: 'ws://b.example.com', fingerprint: Buffer.alloc(3) }])))).toBe('WICKET_ERR_ARGUMENT');
    const long = (i: number): TicketRelay => ({ url: `wss://${String(i).repeat(MAX_RELAY_URL_LEN - 10).slice(0, MAX_RELAY_URL_LEN - 10)}.io`, fingerprint: Buffer.alloc(32, i) });
    expect(codeOf(() => encodeTicket(makeTicket([long(1), long(2), long(3), long(4), long(5), long(6)])))).toBe('WICKET_ERR_ARGUMENT');
  });

  it('every truncation of a version 2 ticket is a WICKET_ERR_TICKET_* error', () => {
    const text = encodeTicket(makeTicket(TWO));
    for (let cut = 1; cut < text.length; cut++) {
      expect([codeOf(() => decodeTicket(text.slice(0, cut)))]).toEqual([expect.stringMatching(/^WICKET_ERR_TICKET_(PREFIX|MALFORMED)$/)]);
    }
  });

  const valid = bodyOf(encodeTicket(makeTicket(TWO)));
  const hostile: [string, (b: Buffer) => Buffer, RegExp][] = [
    ['a relay count of 0', (b) => ((b[2] = 0), b), /lists 0 relays/],
    ['a relay count over the cap', (b) => ((b[2] = MAX_TICKET_RELAYS + 1), b), /lists 9 relays/],
    ['a count larger than the entries present', (b) => ((b[2] = 5), b), /layout is invalid/],
    ['a count smaller than the entries present', (b) => ((b[2] = 1), b), /layout is invalid/],
    ['unknown top-level flags', (b) => ((b[1] = 1), b), /unknown flags 0x01/],
    ['unknown entry flags', (b) => ((b[3] = 0x80), b), /relay 1 has unknown flags/],
    ['an entry URL length past the end', (b) => (b.writeUInt16BE(0xffff, 4), b), /layout is invalid/],
    ['an empty list body (header only)', (b) => b.subarray(0, 3), /layout is invalid/],
    ['garbage after a valid header', (b) => Buffer.concat([b.subarray(0, 3), Buffer.alloc(200, 0xee)]), /layout is invalid/],
    ['one URL twice', (b) => {
      const t = makeTicket([{ url: 'wss://b.example.com:8443' }]);
      const body = bodyOf(encodeTicket(t));
      body.write('a', body.indexOf('b.example'), 'latin1');
      return body;
    }, /one relay URL twice/],
  ];
  for (const [name, edit, message] of hostile) {
    it(`refuses ${name} with WICKET_ERR_TICKET_MALFORMED`, () => {
      let caught: unknown;
      try {
        decodeTicket(issue(edit(Buffer.from(valid))));
      } catch (err) {
        caught = err;
      }
      expect((caught as { code?: string }).code).toBe('WICKET_ERR_TICKET_MALFORMED');
      expect((caught as Error).message).toMatch(message);
    });
  }

  it('an oversized list text is refused before decoding, and random version 2 bodies never escape as foreign errors', () => {
    expect(codeOf(() => decodeTicket(TICKET_PREFIX + 'A'.repeat(MAX_TICKET_TEXT_LEN)))).toBe('WICKET_ERR_TICKET_MALFORMED');
    const random = seededRandom(14);
    for (let i = 0; i < 300; i++) {
      const body = Buffer.alloc(3 + Math.floor(random() * 400));
      for (let j = 0; j < body.length; j++) body[j] = Math.floor(random() * 256);
      body[0] = 2;
      body[2] = 1 + Math.floor(random() * MAX_TICKET_RELAYS);
      expect(['WICKET_ERR_TICKET_MALFORMED', 'accepted']).toContain(codeOf(() => decodeTicket(issue(body))));
    }
  });
});
