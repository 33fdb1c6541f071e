import { createHash, createPrivateKey, createPublicKey, hkdfSync } from 'node:crypto';
import { Console } from 'node:console';
import { Writable } from 'node:stream';
import { inspect } from 'node:util';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { isWicketError, type ErrorCode } from '../../protocol/errors.js';
import { MAX_TICKET_TEXT_LEN } from '../../protocol/limits.js';
import { Secret } from '../../protocol/secret.js';
import { Identity } from '../../protocol/identity.js';
import {
  TICKET_KEY_INFO,
  TICKET_PREFIX,
  TICKET_PROOF_DOMAIN,
  decodeTicket,
  encodeTicket,
  isTicketExpired,
  ticketKeyFromSecret,
  ticketProofMessage,
  verifyTicketProof,
  type Ticket,
} from '../../protocol/ticket.js';
import { seededRandom } from '../helpers/seeded.js';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const SECRET = Buffer.from('5ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e7aa01', 'hex');
const EXPIRES = 1_700_003_600_000;

function makeTicket(overrides: Partial<Ticket> = {}): Ticket {
  return {
    relayUrl: 'wss://relay.example.com:8443/wicket',
    relayCertFingerprint: Buffer.alloc(32, 0xf1),
    authorityPublicKey: Buffer.alloc(32, 0xa1),
    ticketId: Buffer.alloc(16, 0x1d),
    secret: new Secret(Buffer.from(SECRET)),
    expiresAt: EXPIRES,
    ...overrides,
  };
}

function failure(fn: () => unknown): { code: ErrorCode | 'accepted' | 'foreign'; message: string } {
  try {
    fn();
    return { code: 'accepted', message: '' };
  } catch (err) {
    return isWicketError(err) ? { code: err.code, message: err.message } : { code: 'foreign', message: String(err) };
  }
}

/** Rewrites a ticket's binary and recomputes its checksum: the issuer itself wrote something odd. */
function reissued(text: string, edit: (body: Buffer) => Buffer): string {
  const binary = Buffer.from(text.slice(TICKET_PREFIX.length), 'base64url');
  const body = edit(Buffer.from(binary.subarray(0, binary.length - 4)));
  const checksum = createHash('sha256').update(body).digest().subarray(0, 4);
  return TICKET_PREFIX + Buffer.concat([body, checksum]).toString('base64url');
}

/** Every spelling of the secret a leak could take. */
const SECRET_SPELLINGS = [SECRET.toString('hex'), SECRET.toString('base64'), SECRET.toString('base64url'), inspect(SECRET), SECRET.subarray(0, 6).toString('hex')];
function expectNoSecret(output: string): void {
  for (const leak of SECRET_SPELLINGS) expect(output).not.toContain(leak);
}

describe('ticket: round trip', () => {
  const cases: [string, Partial<Ticket>][] = [
    ['wss with a pinned certificate', {}],
    ['ws on loopback, no fingerprint', { relayUrl: 'ws://127.0.0.1:7443', relayCertFingerprint: undefined }],
    ['IPv6 host with a query', { relayUrl: 'wss://[::1]:443/path?x=1' }],
    ['expiry zero', { expiresAt: 0 }],
    ['expiry 2^53 - 1', { expiresAt: Number.MAX_SAFE_INTEGER }],
  ];
  for (const [name, overrides] of cases) {
    it(name, () => {
      const original = makeTicket(overrides);
      const text = encodeTicket(original);
      expect(text.startsWith(TICKET_PREFIX)).toBe(true);
      expect(text.slice(TICKET_PREFIX.length)).toMatch(/^[A-Za-z0-9_-]+$/);
      const decoded = decodeTicket(text);
      expect(decoded.relayUrl).toBe(original.relayUrl);
      expect(decoded.relayCertFingerprint).toEqual(original.relayCertFingerprint);
      expect('relayCertFingerprint' in decoded).toBe(original.relayCertFingerprint !== undefined);
      expect(decoded.authorityPublicKey.equals(original.authorityPublicKey)).toBe(true);
      expect(decoded.ticketId.equals(original.ticketId)).toBe(true);
      expect(decoded.secret.reveal().equals(SECRET)).toBe(true);
      expect(decoded.expiresAt).toBe(original.expiresAt);
      expect(encodeTicket(decoded)).toBe(text);
    });
  }

  it('encoding is deterministic', () => {
    expect(encodeTicket(makeTicket())).toBe(encodeTicket(makeTicket()));
  });

  it('surrounding whitespace (spaces, tabs, newlines, CRLF) is tolerated', () => {
    const text = encodeTicket(makeTicket());
    expect(decodeTicket(`  \t\n${text}\r\n  `).secret.reveal().equals(SECRET)).toBe(true);
  });

  it('decode does not check expiry; isTicketExpired does, strictly at expiresAt', () => {
    const ticket = decodeTicket(encodeTicket(makeTicket({ expiresAt: 1000 })));
    expect(isTicketExpired(ticket, 999)).toBe(false);
    expect(isTicketExpired(ticket, 1000)).toBe(true);
    expect(isTicketExpired(ticket, 5000)).toBe(true);
  });
});

describe('ticket: wrong prefix', () => {
  const body = encodeTicket(makeTicket()).slice(TICKET_PREFIX.length);
  const cases: [string, string, RegExp][] = [
    ['no prefix at all (the bare base64url body)', body, /does not start with wkt1_/],
    ['a future format', `wkt2_${body}`, /wkt2_ is not supported/],
    ['uppercase prefix', `WKT1_${body}`, /lowercase/],
    ['some other token pasted by mistake', 'sk-proj-abcdefghijklmnop', /not a Wicket ticket/],
    ['empty text', '', /empty/],
    ['whitespace only', ' \n\t ', /empty/],
  ];
  for (const [name, text, message] of cases) {
    it(name, () => {
      const { code, message: actual } = failure(() => decodeTicket(text));
      expect(code).toBe('WICKET_ERR_TICKET_PREFIX');
      expect(actual).toMatch(message);
    });
  }

  it('never echoes the pasted text (it may be another secret)', () => {
    const { message } = failure(() => decodeTicket('sk-proj-abcdefghijklmnop'));
    expect(message).not.toContain('abcdefghijklmnop');
  });
});

describe('ticket: truncated and mangled text', () => {
  const text = encodeTicket(makeTicket());

  it('truncated at every length: a clear error naming the field where it ends', () => {
    const fields = /ends inside the (format version|flags|relay URL|relay certificate fingerprint|authority public key|ticket id|secret|expiry|checksum)/;
    const seenFields = new Set<string>();
    for (let length = 0; length < text.length; length++) {
      const { code, message } = failure(() => decodeTicket(text.slice(0, length)));
      if (length < TICKET_PREFIX.length) {
        expect(code, `length ${length}`).toBe('WICKET_ERR_TICKET_PREFIX');
      } else {
        expect(code, `length ${length}`).toBe('WICKET_ERR_TICKET_MALFORMED');
        expect(message, `length ${length}`).toMatch(/truncated/);
        if (length > TICKET_PREFIX.length) {
          expect(message, `length ${length}`).toMatch(fields);
          seenFields.add(fields.exec(message)![1]!);
        }
      }
      expectNoSecret(message);
    }
    expect(seenFields.size).toBe(9); // every field was the cut point at least once
  });

  it('each character of the base64url body replaced by every other character: a clear error, never acceptance', () => {
    // Also a ticket without a fingerprint, where a mangled flag bit would lengthen the layout.
    const plain = encodeTicket(makeTicket({ relayUrl: 'ws://127.0.0.1:7443', relayCertFingerprint: undefined }));
    for (const text of [encodeTicket(makeTicket()), plain]) expectEveryMangleCaught(text);
  });

  function expectEveryMangleCaught(text: string): void {
    let attempts = 0;
    for (let position = TICKET_PREFIX.length; position < text.length; position++) {
      for (const replacement of ALPHABET) {
        if (replacement === text[position]) continue;
        const mangled = text.slice(0, position) + replacement + text.slice(position + 1);
        const { code, message } = failure(() => decodeTicket(mangled));
        expect(code, `position ${position} → ${replacement}`).toBe('WICKET_ERR_TICKET_MALFORMED');
        expect(message, `position ${position} → ${replacement}`).toMatch(/mangled: (checksum mismatch|its last character was altered)/);
        attempts++;
      }
    }
    expect(attempts).toBe((text.length - TICKET_PREFIX.length) * 63);
  }

  it('altering only the spare low bits of the last character is caught (canonical base64url)', () => {
    // The body length is not a multiple of 3, so the last character carries unused bits.
    const binaryLength = Buffer.from(text.slice(TICKET_PREFIX.length), 'base64url').length;
    expect(binaryLength % 3).not.toBe(0);
    const last = ALPHABET.indexOf(text.at(-1)!);
    const sameBytes = ALPHABET[last ^ 1]!; // flips an unused bit
    expect(Buffer.from(text.slice(TICKET_PREFIX.length, -1) + sameBytes, 'base64url')).toEqual(Buffer.from(text.slice(TICKET_PREFIX.length), 'base64url'));
    expect(failure(() => decodeTicket(text.slice(0, -1) + sameBytes)).message).toMatch(/last character was altered/);
  });

  it('extra characters appended are caught', () => {
    for (const extra of ['A', 'AA', 'AAA', 'AAAA', text.slice(TICKET_PREFIX.length)]) {
      const { code, message } = failure(() => decodeTicket(text + extra));
      expect(code).toBe('WICKET_ERR_TICKET_MALFORMED');
      expect(message).toMatch(/mangled/);
    }
  });

  it('two characters swapped (a typical transcription error) are caught', () => {
    for (let position = TICKET_PREFIX.length; position < text.length - 1; position++) {
      if (text[position] === text[position + 1]) continue;
      const swapped = text.slice(0, position) + text[position + 1] + text[position] + text.slice(position + 2);
      expect(failure(() => decodeTicket(swapped)).code).toBe('WICKET_ERR_TICKET_MALFORMED');
    }
  });
});

describe('ticket: bad characters and hostile text', () => {
  const text = encodeTicket(makeTicket());
  const at = 20;
  const cases: [string, string, RegExp][] = [
    ['an exclamation mark', '!', /bad base64url character '!' at position 21/],
    ['standard base64 +', '+', /bad base64url character '\+' at position 21/],
    ['standard base64 /', '/', /bad base64url character '\/' at position 21/],
    ['padding =', '=', /bad base64url character '=' at position 21/],
    ['a non-ASCII letter', 'é', /U\+00E9 at position 21/],
    ['a NUL byte', '\0', /U\+0000 at position 21/],
    ['a line break inside (wrapped ticket)', '\n', /whitespace at position 21/],
    ['a space inside', ' ', /whitespace at position 21/],
  ];
  for (const [name, ch, message] of cases) {
    it(name, () => {
      const { code, message: actual } = failure(() => decodeTicket(text.slice(0, at) + ch + text.slice(at)));
      expect(code).toBe('WICKET_ERR_TICKET_MALFORMED');
      expect(actual).toMatch(message);
    });
  }

  it(`text over MAX_TICKET_TEXT_LEN (${MAX_TICKET_TEXT_LEN}) is refused before decoding, even when padded with whitespace`, () => {
    for (const huge of [`${TICKET_PREFIX}${'A'.repeat(MAX_TICKET_TEXT_LEN)}`, ' '.repeat(MAX_TICKET_TEXT_LEN) + text, 'x'.repeat(10_000_000)]) {
      const { code, message } = failure(() => decodeTicket(huge));
      expect(code).toBe('WICKET_ERR_TICKET_MALFORMED');
      expect(message).toMatch(/cap 4096/);
    }
  });

  it('a value that is not a string is refused with a WicketError', () => {
    for (const value of [undefined, null, 42, {}, Buffer.from(text)]) {
      expect(failure(() => decodeTicket(value as unknown as string)).code).toBe('WICKET_ERR_TICKET_MALFORMED');
    }
  });

  it('seeded fuzz: random text after the prefix only ever gives PREFIX or MALFORMED', () => {
    const random = seededRandom(0x71c7);
    const pool = `${ALPHABET}!=+/ \n\u00e9\u{1f600}`;
    for (let i = 0; i < 3000; i++) {
      const length = Math.floor(random() * 400);
      let body = '';
      for (let j = 0; j < length; j++) body += pool[Math.floor(random() * pool.length)];
      const input = random() < 0.9 ? TICKET_PREFIX + body : body;
      const { code } = failure(() => decodeTicket(input));
      expect(['WICKET_ERR_TICKET_PREFIX', 'WICKET_ERR_TICKET_MALFORMED']).toContain(code);
    }
  });
});

describe('ticket: what the issuer wrote is judged by its meaning (checksum intact)', () => {
  const text = encodeTicket(makeTicket());
  const urlStart = 4; // version, flags, u16 length
  const cases: [string, (body: Buffer) => Buffer, RegExp][] = [
    ['a newer format version', (b) => ((b[0] = 3), b), /format version 3 is not supported/],
    ['unknown flags', (b) => ((b[1] = 0x03), b), /unknown flags 0x03/],
    ['a relay URL that is ftp://', (b) => (b.write('ftp://', urlStart, 'latin1'), b), /scheme is "ftp:", expected ws: or wss:/],
    ['a relay URL that is not UTF-8', (b) => ((b[urlStart] = 0xff), b), /not valid UTF-8/],
    ['a relay URL with a control character', (b) => ((b[urlStart + 6] = 0x09), b), /control/],
    ['an expiry above 2^53', (b) => (b.writeUInt32BE(0xffffffff, b.length - 8), b), /expiry out of range/],
    ['bytes the format does not hold', (b) => Buffer.concat([b, Buffer.from([0])]), /1 more bytes than the format holds/],
    ['a body missing its last byte', (b) => b.subarray(0, b.length - 1), /layout is invalid/],
  ];
  for (const [name, edit, message] of cases) {
    it(name, () => {
      const { code, message: actual } = failure(() => decodeTicket(reissued(text, edit)));
      expect(code).toBe('WICKET_ERR_TICKET_MALFORMED');
      expect(actual).toMatch(message);
    });
  }

  it('the reissue helper is faithful (an unedited reissue decodes)', () => {
    expect(reissued(text, (b) => b)).toBe(text);
  });
});

describe('ticket: encodeTicket refuses what decode would refuse', () => {
  const cases: [string, Partial<Ticket>][] = [
    ['an http URL', { relayUrl: 'http://relay.example.com' }],
    ['a URL with user:password', { relayUrl: 'wss://user:pw@relay.example.com' }],
    ['a URL with a fragment', { relayUrl: 'wss://relay.example.com/#x' }],
    ['a URL with a space', { relayUrl: 'wss://relay.example.com/a b' }],
    ['a URL that does not parse', { relayUrl: 'wss://' }],
    ['a URL over 512 characters', { relayUrl: `wss://relay.example.com/${'a'.repeat(600)}` }],
    ['a short fingerprint', { relayCertFingerprint: Buffer.alloc(20) }],
    ['a short authority key', { authorityPublicKey: Buffer.alloc(31) }],
    ['a long ticket id', { ticketId: Buffer.alloc(17) }],
    ['a short secret', { secret: new Secret(Buffer.alloc(16)) }],
    ['a secret not wrapped in Secret', { secret: Buffer.alloc(32) as unknown as Secret<Buffer> }],
    ['a negative expiry', { expiresAt: -1 }],
    ['a fractional expiry', { expiresAt: 1.5 }],
  ];
  for (const [name, overrides] of cases) {
    it(name, () => expect(failure(() => encodeTicket(makeTicket(overrides))).code).toBe('WICKET_ERR_ARGUMENT'));
  }
});

describe('ticket: the secret stays secret', () => {
  class MemoryStream extends Writable {
    text = '';
    override _write(chunk: Buffer, _encoding: BufferEncoding, done: () => void): void {
      this.text += chunk.toString();
      done();
    }
  }
  const ticket = decodeTicket(encodeTicket(makeTicket()));

  it('util.inspect, JSON.stringify, String and template literals of a Ticket show [REDACTED]', () => {
    for (const output of [inspect(ticket, { depth: 10, showHidden: true }), JSON.stringify(ticket), String(ticket.secret), `${ticket.secret}`]) {
      expect(output).toContain('[REDACTED]');
      expectNoSecret(output);
    }
  });

  it('console.log and a pino logger of a Ticket show [REDACTED]', () => {
    const stream = new MemoryStream();
    new Console({ stdout: stream }).log('ticket', ticket);
    pino({}, stream).info({ ticket }, 'redeeming');
    expect(stream.text).toContain('[REDACTED]');
    expectNoSecret(stream.text);
  });

  it('no decode error ever contains the secret (checked over every truncation and mangle above)', () => {
    const text = encodeTicket(makeTicket());
    for (let position = TICKET_PREFIX.length; position < text.length; position += 1) {
      expectNoSecret(failure(() => decodeTicket(text.slice(0, position) + '!' + text.slice(position + 1))).message);
    }
  });

});

describe('ticket key: the secret proves itself without leaving the agent', () => {
  const ticket = decodeTicket(encodeTicket(makeTicket()));
  // Known answer, computed outside Node (Python: HKDF-SHA256 by hand with hmac, Ed25519 by the
  // cryptography package): the derivation is a wire contract between authority and agent.
  const TICKET_SEED_HEX = '0dbd861719d420b80c77aa3446d8e1bae30656d3f6239246dff8db506b74f9bf';
  const TICKET_KEY_HEX = '5f5a2cf38e702861b5978563cb853b2db1ca1493b105ccebe1f5b3b9a4fe54ec';

  it('ticketKeyFromSecret is deterministic and is Ed25519 of HKDF-SHA256(secret, no salt, TICKET_KEY_INFO) as node:crypto computes it', () => {
    const key = ticketKeyFromSecret(new Secret(Buffer.from(SECRET)));
    expect(key.publicKey.equals(ticketKeyFromSecret(ticket.secret).publicKey)).toBe(true);
    const seed = Buffer.from(hkdfSync('sha256', SECRET, Buffer.alloc(0), 'wicket ticket key v1', 32));
    expect(TICKET_KEY_INFO).toBe('wicket ticket key v1');
    expect(seed.toString('hex')).toBe(TICKET_SEED_HEX);
    expect(key.exportSeed().reveal().equals(seed)).toBe(true);
    const pkcs8 = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]);
    const jwk = createPublicKey(createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' })).export({ format: 'jwk' });
    expect(Buffer.from(jwk.x!, 'base64url').toString('hex')).toBe(TICKET_KEY_HEX);
    expect(key.publicKey.toString('hex')).toBe(TICKET_KEY_HEX);
    const other = Buffer.from(SECRET);
    other[0]! ^= 1;
    expect(ticketKeyFromSecret(new Secret(other)).publicKey.equals(key.publicKey)).toBe(false);
  });

  it('ticketProofMessage is DOMAIN ‖ authority ‖ ticket id ‖ member key, and refuses wrong lengths with WICKET_ERR_ARGUMENT', () => {
    const [authority, ticketId, member] = [Buffer.alloc(32, 0xa1), Buffer.alloc(16, 0x1d), Buffer.alloc(32, 0x3e)];
    expect(TICKET_PROOF_DOMAIN.toString('latin1')).toBe('wicket/ticket-proof/v1\0');
    expect(ticketProofMessage(authority, ticketId, member).equals(Buffer.concat([TICKET_PROOF_DOMAIN, authority, ticketId, member]))).toBe(true);
    expect(failure(() => ticketProofMessage(authority.subarray(1), ticketId, member)).code).toBe('WICKET_ERR_ARGUMENT');
    expect(failure(() => ticketProofMessage(authority, Buffer.alloc(32), member)).code).toBe('WICKET_ERR_ARGUMENT');
    expect(failure(() => ticketProofMessage(authority, ticketId, Buffer.alloc(33))).code).toBe('WICKET_ERR_ARGUMENT');
  });

  it('verifyTicketProof accepts only the ticket key\'s proof for that authority, ticket id and member key; never throws', () => {
    const key = ticketKeyFromSecret(ticket.secret);
    const member = Identity.generate().publicKey;
    const honest = { ticketKey: key.publicKey, authorityPublicKey: ticket.authorityPublicKey, ticketId: ticket.ticketId, memberPublicKey: member };
    const proof = key.sign(ticketProofMessage(ticket.authorityPublicKey, ticket.ticketId, member));
    expect(verifyTicketProof({ ...honest, proof })).toBe(true);
    expect(verifyTicketProof({ ...honest, memberPublicKey: Identity.generate().publicKey, proof })).toBe(false);
    expect(verifyTicketProof({ ...honest, authorityPublicKey: Buffer.alloc(32, 0xa2), proof })).toBe(false);
    expect(verifyTicketProof({ ...honest, ticketId: Buffer.alloc(16, 0x1e), proof })).toBe(false);
    expect(verifyTicketProof({ ...honest, ticketKey: Identity.generate().publicKey, proof })).toBe(false);
    // The bare message, without the domain: a signature the ticket key made for anything else.
    expect(verifyTicketProof({ ...honest, proof: key.sign(Buffer.concat([ticket.authorityPublicKey, ticket.ticketId, member])) })).toBe(false);
    for (const odd of [Buffer.alloc(0), Buffer.alloc(31), proof.subarray(1), null, 'x', 7]) {
      expect(verifyTicketProof({ ...honest, proof: odd as Buffer })).toBe(false);
      expect(verifyTicketProof({ ...honest, ticketKey: odd as Buffer, proof })).toBe(false);
      expect(verifyTicketProof({ ...honest, ticketId: odd as Buffer, proof })).toBe(false);
    }
    expect(verifyTicketProof(null as never)).toBe(false);
  });
});
