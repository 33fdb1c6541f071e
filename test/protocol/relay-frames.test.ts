import { describe, expect, it } from 'vitest';
import { isWicketError, type ErrorCode } from '../../protocol/errors.js';
import { MAX_CREDENTIAL_LEN, MAX_OPEN_AVOID, RELAY_MAX_CONTROL_FRAME, RELAY_MAX_CONTROL_STRING, RELAY_MAX_FRAME } from '../../protocol/limits.js';
import {
  DATA_HEADER_LEN,
  FRAME_CONTROL,
  FRAME_DATA,
  base64url,
  decodeFrameFromAgent,
  decodeFrameFromRelay,
  encodeControl,
  encodeData,
  fromBase64url,
  writeDataHeader,
} from '../../protocol/relay-frames.js';
import {
  ADMIN_OPS,
  AGENT_SHAPES,
  RELAY_SHAPES,
  validateAgentMessage,
  validateRelayMessage,
  type AgentToRelay,
  type RelayToAgent,
} from '../../protocol/relay-messages.js';
import { identifierFor } from '../helpers/identifier.js';
import { seededRandom } from '../helpers/seeded.js';

function failure(fn: () => unknown): { code: ErrorCode | 'accepted' | 'foreign'; message: string } {
  try {
    fn();
    return { code: 'accepted', message: '' };
  } catch (err) {
    return isWicketError(err) ? { code: err.code, message: err.message } : { code: 'foreign', message: String(err) };
  }
}

function controlFrame(json: string): Buffer {
  return Buffer.concat([Buffer.from([FRAME_CONTROL]), Buffer.from(json, 'utf8')]);
}

type AnyMessage = AgentToRelay | RelayToAgent;

/** Each side decodes only what the other side may send: both directions are tested alike. */
const DIRECTIONS = [
  { name: 'agent to relay', shapes: AGENT_SHAPES as Record<string, Record<string, string>>, validate: validateAgentMessage as (v: unknown) => AnyMessage, decode: decodeFrameFromAgent as (f: Buffer) => unknown },
  { name: 'relay to agent', shapes: RELAY_SHAPES as Record<string, Record<string, string>>, validate: validateRelayMessage as (v: unknown) => AnyMessage, decode: decodeFrameFromRelay as (f: Buffer) => unknown },
] as const;

/** Decodes as either side would (for tests about the framing, which both share). */
const decodeRelayFrame = decodeFrameFromRelay;

/** Valid values for fields whose shape alone does not say enough. */
const VALID_OVERRIDES: Record<string, unknown> = {
  'request.op': 'member.list',
  'response.error': { code: 'WICKET_ERR_NOT_ADMIN', message: 'not an admin' },
  'open.avoid': `I${'ab'.repeat(32)},I${'cd'.repeat(32)}`,
};

function validValue(type: string, name: string, kind: string): unknown {
  const override = VALID_OVERRIDES[`${type}.${name}`];
  if (override !== undefined) return override;
  switch (kind.replace('?', '')) {
    case 'string':
      return 'x';
    case 'u32':
      return 7;
    case 'time':
      return 1_780_000_000_000;
    case 'object':
      return { nested: [1, 'two'] };
    case 'list':
      return [{ url: 'ws://127.0.0.1:7000' }];
    default:
      return { any: true };
  }
}

/** A valid message of `type`, with or without its optional fields, built from its shape. */
function sample(shapes: Record<string, Record<string, string>>, type: string, withOptional: boolean): Record<string, unknown> {
  const message: Record<string, unknown> = { t: type };
  for (const [name, kind] of Object.entries(shapes[type]!)) {
    if (kind.endsWith('?') && !withOptional) continue;
    message[name] = validValue(type, name, kind);
  }
  return message;
}

const WRONG_VALUES: Record<string, unknown[]> = {
  string: [1, null, true, {}, ['x']],
  u32: [-1, 1.5, 2 ** 32, '1', null, true, Number.NaN],
  time: [-1, 1.5, 2 ** 53, '1', null, true, Number.NaN],
  object: ['x', 1, null, ['x']],
  list: ['x', 1, null, true, {}],
};

describe('relay frames: DATA', () => {
  it('round trips circuit ids at the edges and payloads of any size up to the cap', () => {
    for (const circuit of [0, 1, 0x7fffffff, 0xffffffff]) {
      for (const size of [0, 1, RELAY_MAX_FRAME - DATA_HEADER_LEN]) {
        const payload = Buffer.alloc(size, 0x5a);
        const frame = decodeRelayFrame(encodeData(circuit, payload));
        expect(frame).toMatchObject({ kind: 'data', circuit });
        expect(frame.kind === 'data' && frame.payload.equals(payload)).toBe(true);
      }
    }
  });

  it('writeDataHeader writes the same header as encodeData (the zero-copy path agrees)', () => {
    const payload = Buffer.from('noise message');
    const target = Buffer.alloc(DATA_HEADER_LEN + payload.length);
    writeDataHeader(target, 0xdeadbeef);
    payload.copy(target, DATA_HEADER_LEN);
    expect(target.equals(encodeData(0xdeadbeef, payload))).toBe(true);
  });

  it('an empty frame, and a data frame shorter than its header, are truncation errors', () => {
    expect(failure(() => decodeRelayFrame(Buffer.alloc(0))).code).toBe('WICKET_ERR_FRAME_TRUNCATED');
    for (let length = 1; length < DATA_HEADER_LEN; length++) {
      const frame = Buffer.alloc(length);
      frame[0] = FRAME_DATA;
      expect(failure(() => decodeRelayFrame(frame)).code).toBe('WICKET_ERR_FRAME_TRUNCATED');
    }
  });

  it(`a frame over RELAY_MAX_FRAME (${RELAY_MAX_FRAME}) is refused whatever its kind`, () => {
    for (const kind of [FRAME_DATA, FRAME_CONTROL, 0x7f]) {
      const frame = Buffer.alloc(RELAY_MAX_FRAME + 1);
      frame[0] = kind;
      expect(failure(() => decodeRelayFrame(frame)).code).toBe('WICKET_ERR_FRAME_TOO_LARGE');
    }
  });

  it('every unknown frame type byte is WICKET_ERR_FRAME_UNKNOWN_TYPE', () => {
    for (let kind = 0x02; kind <= 0xff; kind++) {
      const { code, message } = failure(() => decodeRelayFrame(Buffer.from([kind, 0, 0, 0, 0])));
      expect(code).toBe('WICKET_ERR_FRAME_UNKNOWN_TYPE');
      expect(message).toContain(`0x${kind.toString(16).padStart(2, '0')}`);
    }
  });
});

describe('relay frames: CONTROL framing', () => {
  it('invalid UTF-8 in a control frame is malformed (not replaced and parsed)', () => {
    const frame = Buffer.concat([controlFrame('{"t":"revoked","identifier":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]);
    expect(failure(() => decodeRelayFrame(frame)).code).toBe('WICKET_ERR_FRAME_MALFORMED');
  });

  it('text that is not JSON is malformed', () => {
    for (const text of ['', '{', '{"t":}', 'undefined', "{'t':'hello'}", '{"t":"close"}garbage']) {
      expect(failure(() => decodeRelayFrame(controlFrame(text))).code).toBe('WICKET_ERR_FRAME_MALFORMED');
    }
  });

  it('JSON that is not an object, or has no known t, is a protocol error', () => {
    for (const text of ['null', '1', '"hello"', '[]', '[{"t":"hello"}]', '{}', '{"t":1}', '{"t":"nope"}', '{"t":"__proto__"}', '{"t":"toString"}']) {
      expect(failure(() => decodeRelayFrame(controlFrame(text))).code, text).toBe('WICKET_ERR_RELAY_PROTOCOL');
    }
  });

  it(`a control frame over RELAY_MAX_CONTROL_FRAME (${RELAY_MAX_CONTROL_FRAME}) is refused before JSON parsing`, () => {
    // Valid JSON of the right type, only too big: a decoder that parsed first would accept it.
    const padding = ' '.repeat(RELAY_MAX_CONTROL_FRAME);
    expect(failure(() => decodeRelayFrame(controlFrame(`{"t":"revoked","identifier":"x"}${padding}`))).code).toBe('WICKET_ERR_FRAME_TOO_LARGE');
  });

  it('deeply nested JSON (a stack bomb) never escapes as a foreign error', () => {
    const depth = (RELAY_MAX_CONTROL_FRAME - 100) / 2;
    const bomb = `{"t":"request","id":1,"op":"member.list","args":{"a":${'['.repeat(depth)}${']'.repeat(depth)}}}`;
    expect(failure(() => decodeRelayFrame(controlFrame(bomb))).code).not.toBe('foreign');
  });
});

describe('relay frames: each side decodes only what the other may send', () => {
  it('knows the message types of the agent-relay protocol, in their directions', () => {
    expect(Object.keys(AGENT_SHAPES).sort()).toEqual(['auth', 'close', 'enroll', 'open', 'register', 'request', 'unregister']);
    expect(Object.keys(RELAY_SHAPES).sort()).toEqual(
      ['close', 'credential', 'error', 'hello', 'incoming', 'opened', 'registered', 'reinstated', 'relays', 'response', 'revocations-synced', 'revoked', 'unregistered', 'welcome'],
    );
  });

  it('a message of the other direction is refused (an agent cannot send hello, welcome or revoked; the relay cannot send auth)', () => {
    for (const type of Object.keys(RELAY_SHAPES).filter((t) => !Object.hasOwn(AGENT_SHAPES, t))) {
      const { code, message } = failure(() => decodeFrameFromAgent(encodeControl(sample(RELAY_SHAPES, type, true) as AnyMessage)));
      expect(code, type).toBe('WICKET_ERR_RELAY_PROTOCOL');
      expect(message).toContain('is not a message an agent sends');
    }
    for (const type of Object.keys(AGENT_SHAPES).filter((t) => !Object.hasOwn(RELAY_SHAPES, t))) {
      const { code, message } = failure(() => decodeFrameFromRelay(encodeControl(sample(AGENT_SHAPES, type, true) as AnyMessage)));
      expect(code, type).toBe('WICKET_ERR_RELAY_PROTOCOL');
      expect(message).toContain('is not a message the relay sends');
    }
  });
});

for (const direction of DIRECTIONS) {
  describe(`relay frames: every control message ${direction.name} is validated field by field`, () => {
    const { shapes, validate, decode } = direction;
    for (const type of Object.keys(shapes)) {
      describe(type, () => {
        const shape = shapes[type]!;

        it('a valid message round trips through encodeControl and the decoder (with and without optional fields)', () => {
          for (const withOptional of [false, true]) {
            const message = sample(shapes, type, withOptional);
            expect(decode(encodeControl(message as AnyMessage))).toEqual({ kind: 'control', message });
          }
        });

        for (const [name, kind] of Object.entries(shape)) {
          if (!kind.endsWith('?')) {
            it(`missing '${name}' is refused`, () => {
              const message = sample(shapes, type, true);
              delete message[name];
              const { code, message: text } = failure(() => validate(message));
              expect(code).toBe('WICKET_ERR_RELAY_PROTOCOL');
              expect(text).toContain(`missing field '${name}'`);
            });
          }

          const wrong = WRONG_VALUES[kind.replace('?', '')] ?? [];
          if (wrong.length > 0) {
            it(`'${name}' of the wrong type is refused (${wrong.length} cases)`, () => {
              for (const value of wrong) {
                const message = { ...sample(shapes, type, true), [name]: value };
                const { code, message: text } = failure(() => decode(controlFrame(JSON.stringify(message))));
                expect(code, `${name} = ${JSON.stringify(value)}`).toBe('WICKET_ERR_RELAY_PROTOCOL');
                expect(text).toContain(`'${name}'`);
              }
            });
          }

          if (kind.replace('?', '') === 'string') {
            it(`'${name}' longer than RELAY_MAX_CONTROL_STRING is refused; exactly at the cap is accepted`, () => {
              const atCap = { ...sample(shapes, type, true), [name]: 'a'.repeat(RELAY_MAX_CONTROL_STRING) };
              const freeText = VALID_OVERRIDES[`${type}.${name}`] === undefined; // request.op is an enum, open.avoid a list
              expect(failure(() => validate(atCap)).code).toBe(freeText ? 'accepted' : 'WICKET_ERR_RELAY_PROTOCOL');
              const over = { ...sample(shapes, type, true), [name]: 'a'.repeat(RELAY_MAX_CONTROL_STRING + 1) };
              expect(failure(() => validate(over)).code).toBe('WICKET_ERR_RELAY_PROTOCOL');
            });
          }
        }

        it('an extra field is refused (nothing is smuggled past the validator)', () => {
          const { code, message } = failure(() => validate({ ...sample(shapes, type, true), smuggled: 'x' }));
          expect(code).toBe('WICKET_ERR_RELAY_PROTOCOL');
          expect(message).toContain("unexpected field 'smuggled'");
        });

        it('a __proto__ key in the JSON is refused as an extra field (prototype pollution attempt)', () => {
          const json = JSON.stringify(sample(shapes, type, true)).replace(/^\{/, '{"__proto__":{"admin":"true"},');
          expect(failure(() => decode(controlFrame(json))).message).toContain("unexpected field '__proto__'");
          expect(({} as Record<string, unknown>)['admin']).toBeUndefined();
        });
      });
    }
  });
}

describe('relay frames: fields a shape cannot describe', () => {
  it('a request naming an unknown admin operation is refused', () => {
    for (const op of ['member.delete', '', 'constructor', 'ticket.create ']) {
      expect(failure(() => validateAgentMessage({ t: 'request', id: 1, op, args: {} })).message).toMatch(/unknown op/);
    }
    for (const op of ADMIN_OPS) expect(failure(() => validateAgentMessage({ t: 'request', id: 1, op, args: {} })).code).toBe('accepted');
  });

  it('open.avoid is a comma-separated list of at most MAX_OPEN_AVOID identifiers', () => {
    const id = identifierFor;
    const open = (avoid: string) => failure(() => validateAgentMessage({ t: 'open', id: 1, name: 'svc', avoid }));
    expect(open('').code).toBe('accepted');
    expect(open(Array.from({ length: MAX_OPEN_AVOID }, (_, i) => id(i)).join(',')).code).toBe('accepted');
    expect(open(Array.from({ length: MAX_OPEN_AVOID + 1 }, (_, i) => id(i)).join(',')).message).toMatch(/more than/);
    for (const bad of [`${id(1)},`, 'I00', `${id(1)},,${id(2)}`, id(0xabc).toUpperCase(), ` ${id(1)}`]) {
      expect(open(bad).message, bad).toMatch(/not an identifier/);
    }
  });

  it('a response error must be exactly { code, message } of strings', () => {
    for (const error of [{}, { code: 'X' }, { code: 'X', message: 'm', extra: 1 }, { code: 1, message: 'm' }, { code: 'X', message: null }]) {
      expect(failure(() => validateRelayMessage({ t: 'response', id: 1, error })).code, JSON.stringify(error)).toBe('WICKET_ERR_RELAY_PROTOCOL');
    }
  });

  it('a control frame carrying a maximal credential (base64url of MAX_CREDENTIAL_LEN bytes) fits', () => {
    const credential = base64url(Buffer.alloc(MAX_CREDENTIAL_LEN, 0xab));
    for (const message of [
      { t: 'credential', credential },
      { t: 'welcome', identifier: `I${'0'.repeat(64)}`, credential },
    ] as RelayToAgent[]) {
      const frame = encodeControl(message);
      expect(frame.length).toBeLessThanOrEqual(RELAY_MAX_CONTROL_FRAME);
      expect(decodeFrameFromRelay(frame)).toEqual({ kind: 'control', message });
    }
    const auth: AgentToRelay = { t: 'auth', publicKey: base64url(Buffer.alloc(32)), signature: base64url(Buffer.alloc(64)), credential, revocationsAfter: 0xffffffff };
    expect(encodeControl(auth).length).toBeLessThanOrEqual(RELAY_MAX_CONTROL_FRAME);
    expect(decodeFrameFromAgent(encodeControl(auth))).toEqual({ kind: 'control', message: auth });
  });
});

describe('relay frames: fromBase64url', () => {
  const bytes = Buffer.from(Array.from({ length: 32 }, (_, i) => i * 7));
  const text = base64url(bytes);

  it('decodes canonical base64url of the exact or capped length', () => {
    expect(fromBase64url(text, 'key', { exact: 32 }).equals(bytes)).toBe(true);
    expect(fromBase64url(text, 'key', { max: 32 }).equals(bytes)).toBe(true);
    expect(fromBase64url('', 'empty', { max: 10 }).length).toBe(0);
  });

  it('refuses the wrong exact length, and lengths of 1 mod 4', () => {
    expect(failure(() => fromBase64url(base64url(bytes.subarray(0, 31)), 'key', { exact: 32 })).message).toMatch(/must be 32 bytes, got 31/);
    expect(failure(() => fromBase64url(`${text}AA`, 'key', { max: 64 })).message).toMatch(/not base64url/);
  });

  it('refuses an oversize field before decoding it (a 10 MB field of junk is TOO_LARGE, not decoded)', () => {
    const { code, message } = failure(() => fromBase64url('!'.repeat(10_000_000), 'credential', { max: MAX_CREDENTIAL_LEN }));
    expect(code).toBe('WICKET_ERR_FRAME_TOO_LARGE');
    expect(message).toMatch(/cap 16384/);
  });

  it('refuses non-alphabet characters: padding, standard base64, whitespace', () => {
    for (const bad of [`${text.slice(0, -2)}==`, text.replace(/.$/, '+'), text.replace(/.$/, '/'), ` ${text.slice(1)}`]) {
      expect(failure(() => fromBase64url(bad, 'key', { max: 64 })).code).toBe('WICKET_ERR_RELAY_PROTOCOL');
    }
  });

  it('refuses a non-canonical spelling of the same bytes (spare bits set in the last character)', () => {
    // 'AA' and 'AB' both decode to one zero byte; only 'AA' is canonical.
    expect(Buffer.from('AB', 'base64url')).toEqual(Buffer.from([0]));
    expect(fromBase64url('AA', 'b', { exact: 1 })).toEqual(Buffer.from([0]));
    expect(failure(() => fromBase64url('AB', 'b', { exact: 1 })).message).toMatch(/not canonical/);
  });

  it('a value that is not a string is a protocol error, not a crash', () => {
    expect(failure(() => fromBase64url(42 as unknown as string, 'key', { exact: 32 })).code).toBe('WICKET_ERR_RELAY_PROTOCOL');
  });
});

describe('relay frames: seeded fuzz', () => {
  it('random buffers and mutated valid frames only ever give a frame or a WicketError', () => {
    const random = seededRandom(0xf7a3e5);
    const valid = DIRECTIONS.flatMap(({ shapes }) => Object.keys(shapes).map((type) => encodeControl(sample(shapes, type, true) as AnyMessage)));
    const seen = new Set<string>();
    for (let i = 0; i < 5000; i++) {
      let frame: Buffer;
      if (random() < 0.5) {
        frame = Buffer.from(Array.from({ length: Math.floor(random() * 80) }, () => Math.floor(random() * 256)));
        if (frame.length > 0 && random() < 0.6) frame[0] = random() < 0.5 ? FRAME_DATA : FRAME_CONTROL;
      } else {
        frame = Buffer.from(valid[Math.floor(random() * valid.length)]!);
        const mutations = 1 + Math.floor(random() * 4);
        for (let m = 0; m < mutations; m++) {
          const position = 1 + Math.floor(random() * (frame.length - 1));
          frame[position] = random() < 0.5 ? Math.floor(random() * 256) : '{}[]":,0 tx\\'.charCodeAt(Math.floor(random() * 12));
        }
        if (random() < 0.2) frame = frame.subarray(0, Math.floor(random() * frame.length));
      }
      for (const { decode } of DIRECTIONS) {
        const { code, message } = failure(() => decode(frame));
        expect(code, message).not.toBe('foreign');
        seen.add(code);
      }
    }
    for (const code of ['accepted', 'WICKET_ERR_FRAME_MALFORMED', 'WICKET_ERR_RELAY_PROTOCOL', 'WICKET_ERR_FRAME_UNKNOWN_TYPE']) expect(seen).toContain(code);
  });
});
