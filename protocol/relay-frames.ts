import { wicketError } from './errors.js';
import { RELAY_MAX_CONTROL_FRAME, RELAY_MAX_FRAME } from './limits.js';
import { validateAgentMessage, validateRelayMessage, type AgentToRelay, type RelayToAgent } from './relay-messages.js';

// Agent <-> relay frames. One WebSocket binary message is one frame (protocol/README.md, "Relay").
//
//   DATA     = 0x00 circuit:u32 payload…     payload is one opaque Noise message; the relay forwards
//                                             the whole frame unchanged to the circuit's other end,
//                                             so circuit ids are relay-global.
//   CONTROL  = 0x01 JSON (UTF-8)             small signalling messages, validated field by field
//                                             (relay-messages.ts), each side decoding only what the
//                                             other side may send.
//
// Binary values inside control messages (keys, signatures, credentials, challenges) are base64url.

export const FRAME_DATA = 0x00;
export const FRAME_CONTROL = 0x01;
export const DATA_HEADER_LEN = 5;
/** 2: `auth` carries revocationsAfter; revocation events are sequenced (revoked, reinstated, revocations-synced). */
export const RELAY_PROTOCOL_VERSION = 2;

/** Domain separators for the signatures an agent makes towards the relay. */
export const RELAY_AUTH_DOMAIN = Buffer.from('wicket/relay-auth/v1\0');
export const RELAY_ENROLL_DOMAIN = Buffer.from('wicket/relay-enroll/v1\0');

export type FrameFromAgent = { kind: 'data'; circuit: number; payload: Buffer } | { kind: 'control'; message: AgentToRelay };
export type FrameFromRelay = { kind: 'data'; circuit: number; payload: Buffer } | { kind: 'control'; message: RelayToAgent };

/** Decodes one WebSocket message an agent sent (the relay's side). Throws WICKET_ERR_* only. */
export function decodeFrameFromAgent(frame: Buffer): FrameFromAgent {
  return decodeFrame(frame, validateAgentMessage);
}

/** Decodes one WebSocket message the relay sent (an agent's side). Throws WICKET_ERR_* only. */
export function decodeFrameFromRelay(frame: Buffer): FrameFromRelay {
  return decodeFrame(frame, validateRelayMessage);
}

/** Decodes a relay frame, validating a control frame's message with `validate` (agent, relay or mesh messages). */
export function decodeFrame<M>(frame: Buffer, validate: (value: unknown) => M): { kind: 'data'; circuit: number; payload: Buffer } | { kind: 'control'; message: M } {
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
      parsed = JSON.parse(UTF8.decode(frame.subarray(1)));
    } catch {
      throw wicketError('WICKET_ERR_FRAME_MALFORMED', 'relay control frame is not UTF-8 JSON');
    }
    return { kind: 'control', message: validate(parsed) };
  }
  throw wicketError('WICKET_ERR_FRAME_UNKNOWN_TYPE', `relay frame type 0x${kind!.toString(16).padStart(2, '0')}`);
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** A control frame; `message` is one of the validated message unions (agent, relay or mesh). */
export function encodeControl(message: AgentToRelay | RelayToAgent | { readonly t: string }): Buffer {
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
