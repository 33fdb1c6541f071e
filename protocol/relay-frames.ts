import { wicketError } from './errors.js';
import { RELAY_MAX_CONTROL_FRAME, RELAY_MAX_CONTROL_STRING, RELAY_MAX_FRAME } from './limits.js';

// Agent <-> relay frames. One WebSocket binary message is one frame (protocol/README.md, "Relay").
//
//   DATA     = 0x00 circuit:u32 payload…     payload is one opaque Noise message; the relay forwards
//                                             the whole frame unchanged to the circuit's other end,
//                                             so circuit ids are relay-global.
//   CONTROL  = 0x01 JSON (UTF-8)             small signalling messages, validated field by field.
//
// Binary values inside control messages (keys, signatures, credentials, challenges) are base64url.

export const FRAME_DATA = 0x00;
export const FRAME_CONTROL = 0x01;
export const DATA_HEADER_LEN = 5;
export const RELAY_PROTOCOL_VERSION = 1;

/** Domain separators for the signatures an agent makes towards the relay. */
export const RELAY_AUTH_DOMAIN = Buffer.from('wicket/relay-auth/v1\0');
export const RELAY_ENROLL_DOMAIN = Buffer.from('wicket/relay-enroll/v1\0');

/** Admin operations a `request` may name; validateControl refuses any other. */
export const ADMIN_OPS = ['ticket.create', 'member.list', 'member.revoke', 'audit.list'] as const;
export type AdminOp = (typeof ADMIN_OPS)[number];

export type ControlMessage =
  /** relay -> agent, first frame: a fresh challenge and the authority's identifier. */
  | { t: 'hello'; version: number; challenge: string; authority: string }
  /** agent -> relay: Ed25519 over RELAY_AUTH_DOMAIN || challenge, plus the current credential. */
  | { t: 'auth'; publicKey: string; signature: string; credential: string }
  /** agent -> relay: redeem a ticket; signature over RELAY_ENROLL_DOMAIN || challenge || ticketId. */
  | { t: 'enroll'; ticketId: string; secret: string; publicKey: string; signature: string }
  /** relay -> agent: authenticated (or enrolled); a fresh credential. */
  | { t: 'welcome'; identifier: string; credential: string }
  /** relay -> agent: a refreshed credential for a live member. */
  | { t: 'credential'; credential: string }
  /** agent -> relay: serve a relay name (outlet). */
  | { t: 'register'; id: number; name: string }
  | { t: 'registered'; id: number; name: string }
  /** agent -> relay: stop serving a relay name (outlet deleted); answered with `registered`-style ack `unregistered`. */
  | { t: 'unregister'; id: number; name: string }
  | { t: 'unregistered'; id: number; name: string }
  /** agent -> relay: open a circuit to whoever serves `name` (inlet). */
  | { t: 'open'; id: number; name: string }
  /** relay -> inlet: the circuit is joined; `peer` is the serving agent's identifier. */
  | { t: 'opened'; id: number; circuit: number; peer: string }
  /** relay -> outlet: a new circuit for `name` from `peer`. */
  | { t: 'incoming'; circuit: number; name: string; peer: string }
  /** either way: the circuit is gone; `code` is a WICKET_ERR_* code. */
  | { t: 'close'; circuit: number; code: string }
  /** relay -> agents: an identity was revoked; close every channel with it now. */
  | { t: 'revoked'; identifier: string }
  /** agent -> relay: an admin operation (the relay checks the admin attribute). */
  | { t: 'request'; id: number; op: AdminOp; args: Record<string, unknown> }
  | { t: 'response'; id: number; result?: unknown; error?: { code: string; message: string } }
  /** relay -> agent: a refusal, tied to a request id when there was one. */
  | { t: 'error'; id?: number; code: string; message: string };

export type ControlType = ControlMessage['t'];

export type RelayFrame =
  | { kind: 'data'; circuit: number; payload: Buffer }
  | { kind: 'control'; message: ControlMessage };

type FieldKind = 'string' | 'u32' | 'object' | 'any';
type Shape = Record<string, FieldKind | `${FieldKind}?`>;

// The shape of each control message: every listed field is checked, unknown fields are refused,
// so a hostile peer cannot smuggle data past the validator.
const SHAPES: Record<ControlType, Shape> = {
  hello: { version: 'u32', challenge: 'string', authority: 'string' },
  auth: { publicKey: 'string', signature: 'string', credential: 'string' },
  enroll: { ticketId: 'string', secret: 'string', publicKey: 'string', signature: 'string' },
  welcome: { identifier: 'string', credential: 'string' },
  credential: { credential: 'string' },
  register: { id: 'u32', name: 'string' },
  registered: { id: 'u32', name: 'string' },
  unregister: { id: 'u32', name: 'string' },
  unregistered: { id: 'u32', name: 'string' },
  open: { id: 'u32', name: 'string' },
  opened: { id: 'u32', circuit: 'u32', peer: 'string' },
  incoming: { circuit: 'u32', name: 'string', peer: 'string' },
  close: { circuit: 'u32', code: 'string' },
  revoked: { identifier: 'string' },
  request: { id: 'u32', op: 'string', args: 'object' },
  response: { id: 'u32', result: 'any?', error: 'object?' },
  error: { id: 'u32?', code: 'string', message: 'string' },
};

const MAX_STRING_FIELD = RELAY_MAX_CONTROL_STRING;

function checkField(type: string, name: string, kind: FieldKind, value: unknown): void {
  const ok =
    kind === 'any' ||
    (kind === 'string' && typeof value === 'string' && value.length <= MAX_STRING_FIELD) ||
    (kind === 'u32' && Number.isInteger(value) && (value as number) >= 0 && (value as number) <= 0xffffffff) ||
    (kind === 'object' && typeof value === 'object' && value !== null && !Array.isArray(value));
  if (!ok) throw wicketError('WICKET_ERR_RELAY_PROTOCOL', `control '${type}': field '${name}' is not a valid ${kind}`);
}

/** The field shapes of every control message type (read-only; tests generate cases from it). */
export const CONTROL_SHAPES: Readonly<Record<ControlType, Readonly<Shape>>> = SHAPES;

/** Checks a shape cannot express, so that the value returned really is a ControlMessage. */
function refineControl(type: ControlType, record: Record<string, unknown>): void {
  if (type === 'request' && !(ADMIN_OPS as readonly unknown[]).includes(record.op)) {
    throw wicketError('WICKET_ERR_RELAY_PROTOCOL', `control 'request': unknown op ${JSON.stringify(String(record.op).slice(0, 40))}`);
  }
  if (type === 'response' && record.error !== undefined) {
    const error = record.error as Record<string, unknown>;
    const keys = Object.keys(error);
    if (keys.length !== 2 || !keys.includes('code') || !keys.includes('message')) {
      throw wicketError('WICKET_ERR_RELAY_PROTOCOL', "control 'response': field 'error' must hold exactly code and message");
    }
    checkField(type, 'error.code', 'string', error.code);
    checkField(type, 'error.message', 'string', error.message);
  }
}

export function validateControl(value: unknown): ControlMessage {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw wicketError('WICKET_ERR_RELAY_PROTOCOL', 'control message is not an object');
  }
  const record = value as Record<string, unknown>;
  const type = record.t;
  if (typeof type !== 'string' || !Object.hasOwn(SHAPES, type)) {
    throw wicketError('WICKET_ERR_RELAY_PROTOCOL', `unknown control message type ${JSON.stringify(String(type)).slice(0, 40)}`);
  }
  const shape = SHAPES[type as ControlType];
  for (const key of Object.keys(record)) {
    if (key !== 't' && !Object.hasOwn(shape, key)) {
      throw wicketError('WICKET_ERR_RELAY_PROTOCOL', `control '${type}': unexpected field '${key.slice(0, 40)}'`);
    }
  }
  for (const [name, spec] of Object.entries(shape)) {
    const optional = spec.endsWith('?');
    const kind = (optional ? spec.slice(0, -1) : spec) as FieldKind;
    if (record[name] === undefined) {
      if (optional) continue;
      throw wicketError('WICKET_ERR_RELAY_PROTOCOL', `control '${type}': missing field '${name}'`);
    }
    checkField(type, name, kind, record[name]);
  }
  refineControl(type as ControlType, record);
  return record as ControlMessage;
}

/** Decodes one WebSocket message. Throws WICKET_ERR_* (never anything else) on hostile input. */
export function decodeRelayFrame(frame: Buffer): RelayFrame {
  if (frame.length === 0) throw wicketError('WICKET_ERR_FRAME_TRUNCATED', 'relay frame is empty');
  if (frame.length > RELAY_MAX_FRAME) {
    throw wicketError('WICKET_ERR_FRAME_TOO_LARGE', `relay frame is ${frame.length} bytes, cap ${RELAY_MAX_FRAME}`);
  }
  const kind = frame[0];
  if (kind === FRAME_DATA) {
    if (frame.length < DATA_HEADER_LEN) throw wicketError('WICKET_ERR_FRAME_TRUNCATED', 'relay data frame shorter than its header');
    return { kind: 'data', circuit: frame.readUInt32BE(1), payload: frame.subarray(DATA_HEADER_LEN) };
  }
  if (kind === FRAME_CONTROL) {
    if (frame.length > RELAY_MAX_CONTROL_FRAME) {
      throw wicketError('WICKET_ERR_FRAME_TOO_LARGE', `relay control frame is ${frame.length} bytes, cap ${RELAY_MAX_CONTROL_FRAME}`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(frame.subarray(1)));
    } catch {
      throw wicketError('WICKET_ERR_FRAME_MALFORMED', 'relay control frame is not UTF-8 JSON');
    }
    return { kind: 'control', message: validateControl(parsed) };
  }
  throw wicketError('WICKET_ERR_FRAME_UNKNOWN_TYPE', `relay frame type 0x${kind!.toString(16).padStart(2, '0')}`);
}

export function encodeControl(message: ControlMessage): Buffer {
  const json = Buffer.from(JSON.stringify(message), 'utf8');
  const out = Buffer.allocUnsafe(1 + json.length);
  out[0] = FRAME_CONTROL;
  json.copy(out, 1);
  return out;
}

/**
 * Encodes a data frame header in front of `payload`. Callers on the hot path should instead
 * reserve DATA_HEADER_LEN bytes in front of the Noise message and call writeDataHeader, which
 * avoids this copy.
 */
export function encodeData(circuit: number, payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(DATA_HEADER_LEN + payload.length);
  writeDataHeader(out, circuit);
  out.set(payload, DATA_HEADER_LEN);
  return out;
}

export function writeDataHeader(target: Buffer, circuit: number): void {
  target[0] = FRAME_DATA;
  target.writeUInt32BE(circuit >>> 0, 1);
}

export function base64url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

/** Strict base64url decode with an exact expected length (or a cap), for fields of control messages. */
export function fromBase64url(text: string, field: string, expect: { exact?: number; max?: number }): Buffer {
  if (typeof text !== 'string' || text.length % 4 === 1) throw wicketError('WICKET_ERR_RELAY_PROTOCOL', `${field} is not base64url`);
  // Unpadded base64url of length L holds floor(3L/4) bytes: judge the length before decoding, so
  // a hostile field never makes us allocate.
  const length = Math.floor((text.length * 3) / 4);
  if (expect.max !== undefined && length > expect.max) {
    throw wicketError('WICKET_ERR_FRAME_TOO_LARGE', `${field} is ${length} bytes, cap ${expect.max}`);
  }
  if (expect.exact !== undefined && length !== expect.exact) {
    throw wicketError('WICKET_ERR_RELAY_PROTOCOL', `${field} must be ${expect.exact} bytes, got ${length}`);
  }
  if (!/^[A-Za-z0-9_-]*$/.test(text)) throw wicketError('WICKET_ERR_RELAY_PROTOCOL', `${field} is not base64url`);
  const bytes = Buffer.from(text, 'base64url');
  // One value, one spelling: spare low bits set in the last character would let the same bytes
  // travel under several texts (a signed or hashed field must not have that freedom).
  if (bytes.toString('base64url') !== text) throw wicketError('WICKET_ERR_RELAY_PROTOCOL', `${field} is not canonical base64url`);
  return bytes;
}
