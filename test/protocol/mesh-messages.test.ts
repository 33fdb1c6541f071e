import { describe, expect, it } from 'vitest';
import { isWicketError, type ErrorCode } from '../../protocol/errors.js';
import { MAX_OPEN_AVOID, MAX_RELAY_NAME_LEN, RELAY_MAX_CONTROL_FRAME, RELAY_MAX_CONTROL_STRING, RELAY_MAX_FRAME } from '../../protocol/limits.js';
import {
  decodeMeshFrame,
  encodeMeshControl,
  MESH_AUTH_DOMAIN,
  MESH_PATH,
  MESH_SHAPES,
  validateMeshMessage,
  type MeshMessage,
} from '../../protocol/mesh-messages.js';
import { base64url, DATA_HEADER_LEN, encodeData, FRAME_CONTROL, FRAME_DATA, RELAY_AUTH_DOMAIN, RELAY_ENROLL_DOMAIN } from '../../protocol/relay-frames.js';
import type { ShapesOf } from '../../protocol/relay-messages.js';
import { isRelayId, RELAY_ID_ATTRIBUTE, RESERVED_ATTRIBUTE_PREFIX } from '../../protocol/relay-names.js';
import { identifierFor } from '../helpers/identifier.js';
import { seededBytes, seededRandom } from '../helpers/seeded.js';

// The relay-to-relay messages (protocol/mesh-messages.ts): what one relay accepts from another on
// the mesh link. Every message type round trips; everything else (an unknown or agent-only type, a
// field missing, extra or of the wrong kind, a relay id or identifier that is not one, circuit 0,
// a bad avoid list, an oversize name, bytes that are not JSON, a frame over a cap) throws a
// WicketError with its stable code, never anything else. Random inputs are seeded.

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

/** Validates as the link does: through the frame decoder, from JSON text. */
const decodeJson = (value: unknown): unknown => decodeMeshFrame(controlFrame(JSON.stringify(value)));

const RELAY_ID = '0123456789abcdef';
const id = identifierFor;

/** One valid message of every type, with the optional fields set (the `withoutOptional` below drops them). */
const SAMPLES: { readonly [T in MeshMessage['t']]: Extract<MeshMessage, { t: T }> } = {
  hello: { t: 'hello', relay: RELAY_ID, publicKey: base64url(seededBytes(1, 32)), credential: base64url(seededBytes(2, 300)), challenge: base64url(seededBytes(3, 32)) },
  auth: { t: 'auth', signature: base64url(seededBytes(4, 64)) },
  open: { t: 'open', circuit: 7, name: 'openai', peer: id(1), avoid: `${id(2)},${id(3)}` },
  opened: { t: 'opened', circuit: 7, remote: 9, peer: id(4) },
  refused: { t: 'refused', circuit: 7, code: 'WICKET_ERR_RELAY_NAME_UNKNOWN', message: 'no live outlet serves "openai"' },
  close: { t: 'close', circuit: 7, code: 'WICKET_ERR_CIRCUIT_CLOSED' },
  credit: { t: 'credit', circuit: 7, bytes: 128 * 1024 },
  error: { t: 'error', code: 'WICKET_ERR_MESH_AUTH', message: 'no' },
};
const TYPES = Object.keys(MESH_SHAPES) as MeshMessage['t'][];

function sample(type: MeshMessage['t'], withOptional = true): Record<string, unknown> {
  const message: Record<string, unknown> = { ...SAMPLES[type] };
  if (!withOptional) {
    for (const [name, kind] of Object.entries(MESH_SHAPES[type])) if ((kind as string).endsWith('?')) delete message[name];
  }
  return message;
}

const WRONG_VALUES: Record<string, unknown[]> = {
  string: [1, null, true, {}, ['x']],
  u32: [-1, 1.5, 2 ** 32, '1', null, true, Number.NaN, {}],
};

describe('mesh messages: constants other code relies on', () => {
  it('the link path, and a signing domain no agent signature can ever be (domain separation)', () => {
    expect(MESH_PATH).toBe('/wicket-mesh');
    expect(MESH_AUTH_DOMAIN.at(-1)).toBe(0);
    for (const agentDomain of [RELAY_AUTH_DOMAIN, RELAY_ENROLL_DOMAIN]) {
      // Neither is a prefix of the other: a signed agent challenge never reads as a mesh proof.
      const shorter = Math.min(agentDomain.length, MESH_AUTH_DOMAIN.length);
      expect(agentDomain.subarray(0, shorter).equals(MESH_AUTH_DOMAIN.subarray(0, shorter))).toBe(false);
    }
  });

  it('the relay id attribute is reserved, so no ticket can grant it to an agent', () => {
    expect(RELAY_ID_ATTRIBUTE).toBe('wicket:relay');
    expect(RELAY_ID_ATTRIBUTE.startsWith(RESERVED_ATTRIBUTE_PREFIX)).toBe(true);
  });

  it('the shapes cannot drift from the message types (tsc checks `satisfies ShapesOf<MeshMessage>`)', () => {
    type OpenShape = ShapesOf<MeshMessage>['open'];
    const open: OpenShape = MESH_SHAPES.open;
    expect(open).toEqual({ circuit: 'u32', name: 'string', peer: 'string', avoid: 'string?' });
    // @ts-expect-error the optional avoid list marked required
    const requiredAvoid: OpenShape = { circuit: 'u32', name: 'string', peer: 'string', avoid: 'string' };
    // @ts-expect-error credit bytes checked as a string
    const wrongKind: ShapesOf<MeshMessage>['credit'] = { circuit: 'u32', bytes: 'string' };
    expect([requiredAvoid, wrongKind]).toHaveLength(2);
  });
});

describe('mesh messages: every type round trips', () => {
  it('knows exactly the mesh message types', () => {
    expect([...TYPES].sort()).toEqual(['auth', 'close', 'credit', 'error', 'hello', 'open', 'opened', 'refused']);
  });

  for (const type of TYPES) {
    it(`${type}: encodeMeshControl then decodeMeshFrame gives the same message (with and without optional fields)`, () => {
      for (const withOptional of [true, false]) {
        const message = sample(type, withOptional) as MeshMessage;
        const frame = encodeMeshControl(message);
        expect(frame[0]).toBe(FRAME_CONTROL);
        expect(decodeMeshFrame(frame)).toEqual({ kind: 'control', message });
      }
    });
  }

  it('u32 fields round trip at their edges', () => {
    const edges: MeshMessage[] = [
      { t: 'open', circuit: 0xffffffff, name: 'a'.repeat(MAX_RELAY_NAME_LEN), peer: id(0), avoid: '' },
      { t: 'opened', circuit: 1, remote: 0xffffffff, peer: id(2 ** 40) },
      { t: 'credit', circuit: 0xffffffff, bytes: 0xffffffff },
      { t: 'credit', circuit: 1, bytes: 0 },
      { t: 'close', circuit: 0xffffffff, code: '' },
    ];
    for (const message of edges) expect(decodeMeshFrame(encodeMeshControl(message))).toEqual({ kind: 'control', message });
  });

  it('DATA frames are the agents\' frames, decoded as they are', () => {
    for (const size of [0, 1, RELAY_MAX_FRAME - DATA_HEADER_LEN]) {
      const payload = seededBytes(10 + size, size);
      const frame = decodeMeshFrame(encodeData(0xdeadbeef, payload));
      expect(frame.kind === 'data' && frame.circuit === 0xdeadbeef && frame.payload.equals(payload)).toBe(true);
    }
  });
});

describe('mesh messages: hostile decoding', () => {
  it('an unknown type, or a type only agents or the agent-facing relay send, is WICKET_ERR_RELAY_PROTOCOL', () => {
    for (const t of ['nope', '', 'register', 'welcome', 'incoming', 'request', 'enroll', 'revoked', '__proto__', 'toString', 'constructor', 'HELLO']) {
      const { code, message } = failure(() => decodeJson({ t }));
      expect(code, t).toBe('WICKET_ERR_RELAY_PROTOCOL');
      expect(message).toContain('is not a message a relay sends');
    }
    for (const value of [null, 1, 'hello', [], [{ t: 'hello' }], {}, { t: 1 }, { t: null }]) {
      expect(failure(() => decodeJson(value)).code, JSON.stringify(value)).toBe('WICKET_ERR_RELAY_PROTOCOL');
    }
  });

  for (const type of TYPES) {
    describe(type, () => {
      const shape = MESH_SHAPES[type] as Record<string, string>;

      it('an extra field is refused, a __proto__ key too (nothing is smuggled past the validator)', () => {
        const { code, message } = failure(() => decodeJson({ ...sample(type), smuggled: 'x' }));
        expect(code).toBe('WICKET_ERR_RELAY_PROTOCOL');
        expect(message).toContain("unexpected field 'smuggled'");
        const json = JSON.stringify(sample(type)).replace(/^\{/, '{"__proto__":{"admin":"true"},');
        expect(failure(() => decodeMeshFrame(controlFrame(json))).message).toContain("unexpected field '__proto__'");
      });

      for (const [name, kind] of Object.entries(shape)) {
        const base = kind.replace('?', '');
        if (!kind.endsWith('?')) {
          it(`missing '${name}' is refused`, () => {
            const message = sample(type);
            delete message[name];
            const refusal = failure(() => decodeJson(message));
            expect(refusal.code).toBe('WICKET_ERR_RELAY_PROTOCOL');
            expect(refusal.message).toContain(`missing field '${name}'`);
          });
        }

        it(`'${name}' of the wrong kind is refused (${WRONG_VALUES[base]!.length} cases)`, () => {
          for (const value of WRONG_VALUES[base]!) {
            // validateMeshMessage directly too: NaN does not survive JSON.
            const refusal = failure(() => validateMeshMessage({ ...sample(type), [name]: value }));
            expect(refusal.code, `${name} = ${String(value)}`).toBe('WICKET_ERR_RELAY_PROTOCOL');
            expect(refusal.message).toContain(`'${name}'`);
            if (!Number.isNaN(value)) expect(failure(() => decodeJson({ ...sample(type), [name]: value })).code).toBe('WICKET_ERR_RELAY_PROTOCOL');
          }
        });

        if (base === 'string') {
          it(`'${name}' over RELAY_MAX_CONTROL_STRING (${RELAY_MAX_CONTROL_STRING}) is refused`, () => {
            const over = failure(() => validateMeshMessage({ ...sample(type), [name]: 'a'.repeat(RELAY_MAX_CONTROL_STRING + 1) }));
            expect(over.code).toBe('WICKET_ERR_RELAY_PROTOCOL');
          });
        }
      }
    });
  }

  it('hello: a relay id must be one by the relay-name rule (relay-names.ts isRelayId); what presence makes (16 hex digits) passes', () => {
    // The rule: 1..MAX_RELAY_NAME_LEN letters, digits, '.', '_' or '-', starting with a letter or digit.
    // No comma, space or control character can reach a log line, the signed bytes or a credential.
    const bad = ['', ' 0123456789abcdef', '0123456789abcdef ', '0123456789abcd\nf', '0123,456789abcdef', '.0123456789abcdef', '-0123456789abcdef', '０123456789abcdef', 'a/b', 'a:b', 'a'.repeat(MAX_RELAY_NAME_LEN + 1)];
    const random = seededRandom(0x3e54);
    const alphabet = '0123456789abcdef-_. ,:/\u00e9\u0000';
    while (bad.length < 200) {
      const length = Math.floor(random() * 24);
      const text = Array.from({ length }, () => alphabet[Math.floor(random() * alphabet.length)]).join('');
      if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(text)) bad.push(text);
    }
    for (const relay of bad) {
      expect(isRelayId(relay), JSON.stringify(relay)).toBe(false);
      const { code, message } = failure(() => decodeJson({ ...sample('hello'), relay }));
      expect(code, JSON.stringify(relay)).toBe('WICKET_ERR_RELAY_PROTOCOL');
      expect(message).toContain('not a relay id');
    }
    for (let i = 0; i < 50; i++) {
      const relay = seededBytes(0x1d + i, 8).toString('hex');
      expect(failure(() => decodeJson({ ...sample('hello'), relay })).code).toBe('accepted');
    }
    expect(failure(() => decodeJson({ ...sample('hello'), relay: 'a'.repeat(MAX_RELAY_NAME_LEN) })).code).toBe('accepted');
  });

  it('open and opened: a peer that is not an identifier is refused', () => {
    const good = id(0xabc);
    const bad = ['', 'I', good.toUpperCase(), `${good}0`, good.slice(0, -1), `J${good.slice(1)}`, ` ${good}`, `${good.slice(0, -1)}g`, RELAY_ID];
    const random = seededRandom(0x9ee7);
    for (let i = 0; i < 50; i++) {
      const chars = [...good];
      chars[1 + Math.floor(random() * 64)] = 'GXZ-_ \u00e9'[Math.floor(random() * 7)]!;
      bad.push(chars.join(''));
    }
    for (const type of ['open', 'opened'] as const) {
      for (const peer of bad) {
        const { code, message } = failure(() => decodeJson({ ...sample(type), peer }));
        expect(code, `${type} ${JSON.stringify(peer)}`).toBe('WICKET_ERR_RELAY_PROTOCOL');
        expect(message).toContain("'peer' is not an identifier");
      }
    }
  });

  it('open and opened: circuit id 0 (never allocated) is refused, as the opened `remote` id 0 is', () => {
    for (const type of ['open', 'opened'] as const) {
      const { code, message } = failure(() => decodeJson({ ...sample(type), circuit: 0 }));
      expect(code, type).toBe('WICKET_ERR_RELAY_PROTOCOL');
      expect(message).toContain('circuit id 0');
    }
    expect(failure(() => decodeJson({ ...sample('opened'), remote: 0 })).code).toBe('WICKET_ERR_RELAY_PROTOCOL');
  });

  it('open: the avoid list is at most MAX_OPEN_AVOID well-formed identifiers, comma-separated', () => {
    const open = (avoid: string) => failure(() => decodeJson({ ...sample('open'), avoid }));
    expect(open('').code).toBe('accepted');
    expect(open(Array.from({ length: MAX_OPEN_AVOID }, (_, i) => id(i)).join(',')).code).toBe('accepted');
    expect(open(Array.from({ length: MAX_OPEN_AVOID + 1 }, (_, i) => id(i)).join(',')).message).toMatch(/more than/);
    for (const bad of [`${id(1)},`, ',', 'I00', `${id(1)},,${id(2)}`, id(0xabc).toUpperCase(), ` ${id(1)}`, `${id(1)};${id(2)}`, RELAY_ID]) {
      const { code, message } = open(bad);
      expect(code, bad).toBe('WICKET_ERR_RELAY_PROTOCOL');
      expect(message).toMatch(/not an identifier/);
    }
  });

  it(`open: an empty name, or one over MAX_RELAY_NAME_LEN (${MAX_RELAY_NAME_LEN}), is refused; exactly at the cap is accepted`, () => {
    const open = (name: string) => failure(() => decodeJson({ ...sample('open'), name }));
    expect(open('a'.repeat(MAX_RELAY_NAME_LEN)).code).toBe('accepted');
    for (const name of ['', 'a'.repeat(MAX_RELAY_NAME_LEN + 1), 'a'.repeat(RELAY_MAX_CONTROL_STRING)]) {
      expect(open(name).code, `${name.length} characters`).toBe('WICKET_ERR_RELAY_PROTOCOL');
    }
  });

  it('control text that is not JSON, or not UTF-8, is WICKET_ERR_FRAME_MALFORMED', () => {
    for (const text of ['', '{', '{"t":}', 'undefined', "{'t':'hello'}", '{"t":"auth","signature":"x"}garbage', 'NaN']) {
      expect(failure(() => decodeMeshFrame(controlFrame(text))).code, text).toBe('WICKET_ERR_FRAME_MALFORMED');
    }
    const invalidUtf8 = Buffer.concat([controlFrame('{"t":"auth","signature":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]);
    expect(failure(() => decodeMeshFrame(invalidUtf8)).code).toBe('WICKET_ERR_FRAME_MALFORMED');
  });

  it(`a control frame over RELAY_MAX_CONTROL_FRAME (${RELAY_MAX_CONTROL_FRAME}) is WICKET_ERR_FRAME_TOO_LARGE before it is parsed`, () => {
    // Valid JSON of a valid message, only too big: a decoder that parsed first would accept it.
    const valid = JSON.stringify(sample('credit'));
    expect(failure(() => decodeMeshFrame(controlFrame(valid + ' '.repeat(RELAY_MAX_CONTROL_FRAME - 1 - valid.length)))).code).toBe('accepted');
    expect(failure(() => decodeMeshFrame(controlFrame(valid + ' '.repeat(RELAY_MAX_CONTROL_FRAME - valid.length)))).code).toBe('WICKET_ERR_FRAME_TOO_LARGE');
  });

  it('framing: empty, a short DATA header, an unknown frame type and a frame over RELAY_MAX_FRAME have their frame codes', () => {
    expect(failure(() => decodeMeshFrame(Buffer.alloc(0))).code).toBe('WICKET_ERR_FRAME_TRUNCATED');
    for (let length = 1; length < DATA_HEADER_LEN; length++) {
      const frame = Buffer.alloc(length);
      frame[0] = FRAME_DATA;
      expect(failure(() => decodeMeshFrame(frame)).code).toBe('WICKET_ERR_FRAME_TRUNCATED');
    }
    for (let kind = 0x02; kind <= 0xff; kind++) expect(failure(() => decodeMeshFrame(Buffer.from([kind, 0, 0, 0, 0]))).code).toBe('WICKET_ERR_FRAME_UNKNOWN_TYPE');
    for (const kind of [FRAME_DATA, FRAME_CONTROL, 0x7f]) {
      const frame = Buffer.alloc(RELAY_MAX_FRAME + 1);
      frame[0] = kind;
      expect(failure(() => decodeMeshFrame(frame)).code).toBe('WICKET_ERR_FRAME_TOO_LARGE');
    }
  });

  it('seeded fuzz: random buffers and mutated valid frames only ever give a frame or a WicketError', () => {
    const random = seededRandom(0x3e5b);
    const valid = TYPES.map((type) => encodeMeshControl(sample(type) as MeshMessage));
    const seen = new Set<string>();
    for (let i = 0; i < 5000; i++) {
      let frame: Buffer;
      if (random() < 0.3) {
        frame = Buffer.from(Array.from({ length: Math.floor(random() * 80) }, () => Math.floor(random() * 256)));
        if (frame.length > 0 && random() < 0.6) frame[0] = random() < 0.5 ? FRAME_DATA : FRAME_CONTROL;
      } else {
        frame = Buffer.from(valid[Math.floor(random() * valid.length)]!);
        const mutations = 1 + Math.floor(random() * 3);
        for (let m = 0; m < mutations; m++) {
          const position = 1 + Math.floor(random() * (frame.length - 1));
          frame[position] = random() < 0.5 ? Math.floor(random() * 256) : '{}[]":,0 tx\\'.charCodeAt(Math.floor(random() * 12));
        }
        if (random() < 0.2) frame = frame.subarray(0, Math.floor(random() * frame.length));
      }
      const { code, message } = failure(() => decodeMeshFrame(frame));
      expect(code, message).not.toBe('foreign');
      seen.add(code);
    }
    for (const code of ['accepted', 'WICKET_ERR_FRAME_MALFORMED', 'WICKET_ERR_RELAY_PROTOCOL', 'WICKET_ERR_FRAME_UNKNOWN_TYPE']) expect(seen).toContain(code);
  });
});
