import { wicketError } from './errors.js';
import { isIdentifier } from './identity.js';
import { MAX_OPEN_AVOID, RELAY_MAX_CONTROL_STRING } from './limits.js';

// The control messages between an agent and the relay (protocol/README.md, "Relay frames"), split
// by direction: the relay decodes only what an agent may send (AgentToRelay), an agent only what
// the relay may send (RelayToAgent), so neither side has to ask "could this even come from there?".
//
// Each type has a shape: every listed field is checked, unknown fields are refused, so a hostile
// peer cannot smuggle data past the validator. The shapes are declared against the types
// (`satisfies ShapesOf<…>`): a field added to a type and not to its shape, or the other way round,
// or with a different kind, does not compile (test/protocol/relay-messages.test.ts shows it).

/** Admin operations a `request` may name; the validator refuses any other. */
export const ADMIN_OPS = ['ticket.create', 'ticket.list', 'ticket.revoke', 'member.list', 'member.revoke', 'member.reinstate', 'audit.list'] as const;
export type AdminOp = (typeof ADMIN_OPS)[number];

export type AgentToRelay =
  /**
   * Ed25519 over RELAY_AUTH_DOMAIN ‖ challenge, the current credential, and the last revocation
   * sequence number this agent has seen (0: none), so the relay re-syncs it right after `welcome`.
   */
  | { t: 'auth'; publicKey: string; signature: string; credential: string; revocationsAfter: number }
  /**
   * Redeem a ticket without sending its secret: ticketKey is the public key the secret derives,
   * ticketProof its signature of ticketProofMessage(authority, ticketId, publicKey) (ticket.ts),
   * signature the member key's over RELAY_ENROLL_DOMAIN ‖ challenge ‖ ticketId.
   */
  | { t: 'enroll'; ticketId: string; ticketKey: string; ticketProof: string; publicKey: string; signature: string }
  /** Serve a relay name (outlet). */
  | { t: 'register'; id: number; name: string }
  /** Stop serving a relay name (outlet deleted). */
  | { t: 'unregister'; id: number; name: string }
  /**
   * Open a circuit to whoever serves `name` (inlet). `avoid`: comma-separated identifiers of
   * outlets this agent already refused (policy, revoked, mismatch), to be skipped when others serve.
   */
  | { t: 'open'; id: number; name: string; avoid?: string }
  /** The circuit is gone; `code` is a WICKET_ERR_* code. */
  | { t: 'close'; circuit: number; code: string }
  /** An admin operation (the relay checks the admin attribute). */
  | { t: 'request'; id: number; op: AdminOp; args: Record<string, unknown> };

/** One relay of the project in a `relays` message: its URL and, when self-signed, its pinned certificate (base64url SHA-256). */
export interface WireRelay {
  url: string;
  fingerprint?: string;
}

export type RelayToAgent =
  /** First frame: a fresh challenge and the authority's identifier. */
  | { t: 'hello'; version: number; challenge: string; authority: string }
  /** Authenticated (or enrolled); a fresh credential. */
  | { t: 'welcome'; identifier: string; credential: string }
  /** A refreshed credential for a live member. */
  | { t: 'credential'; credential: string }
  | { t: 'registered'; id: number; name: string }
  | { t: 'unregistered'; id: number; name: string }
  /** The circuit is joined; `peer` is the serving agent's identifier (the inlet holds it to that). */
  | { t: 'opened'; id: number; circuit: number; peer: string }
  /** A new circuit for `name`; `peer` is the identity that opened it (the outlet holds it to that). */
  | { t: 'incoming'; circuit: number; name: string; peer: string }
  | { t: 'close'; circuit: number; code: string }
  /**
   * Revocation event `seq`: refuse and drop channels with `identifier`; keep refusing until
   * `until` (ms since epoch), when every credential it was issued has expired.
   */
  | { t: 'revoked'; seq: number; identifier: string; until: number }
  /** Revocation event `seq`: an admin reinstated `identifier`; stop refusing it. */
  | { t: 'reinstated'; seq: number; identifier: string }
  /** The re-sync after `auth` is complete: every event up to `seq` that still matters was sent. */
  | { t: 'revocations-synced'; seq: number }
  /**
   * The project's relays, the sender first (relay-directory.ts): right behind the welcome to an
   * `auth` and again whenever the list changes; only to agents whose upgrade request named the
   * `relays` feature, since older agents refuse a message type they do not know.
   */
  | { t: 'relays'; relays: WireRelay[] }
  | { t: 'response'; id: number; result?: unknown; error?: { code: string; message: string } }
  /** A refusal, tied to a request id when there was one. */
  | { t: 'error'; id?: number; code: string; message: string };

export type AgentMessageType = AgentToRelay['t'];
export type RelayMessageType = RelayToAgent['t'];

/**
 * Field kinds a shape can check. `time` is ms since the epoch: a non-negative safe integer. `list`
 * is an array whose entries the message's own parser checks (its length is bounded by the frame cap
 * until then).
 */
export type FieldKind = 'string' | 'u32' | 'time' | 'object' | 'list' | 'any';
type KindOf<V> = [V] extends [string]
  ? 'string'
  : [V] extends [number]
    ? 'u32' | 'time'
    : [V] extends [readonly unknown[]]
      ? 'list'
      : [V] extends [Record<string, unknown>]
        ? 'object'
        : 'any';
type ShapeOf<M> = { readonly [K in Exclude<keyof M, 't'>]-?: undefined extends M[K] ? `${KindOf<Exclude<M[K], undefined>>}?` : KindOf<M[K]> };
/** For each message type of a union, the shape of its fields: what the validator checks. */
export type ShapesOf<U extends { t: string }> = { readonly [T in U['t']]: ShapeOf<Extract<U, { t: T }>> };

export const AGENT_SHAPES = {
  auth: { publicKey: 'string', signature: 'string', credential: 'string', revocationsAfter: 'u32' },
  enroll: { ticketId: 'string', ticketKey: 'string', ticketProof: 'string', publicKey: 'string', signature: 'string' },
  register: { id: 'u32', name: 'string' },
  unregister: { id: 'u32', name: 'string' },
  open: { id: 'u32', name: 'string', avoid: 'string?' },
  close: { circuit: 'u32', code: 'string' },
  request: { id: 'u32', op: 'string', args: 'object' },
} as const satisfies ShapesOf<AgentToRelay>;

export const RELAY_SHAPES = {
  hello: { version: 'u32', challenge: 'string', authority: 'string' },
  welcome: { identifier: 'string', credential: 'string' },
  credential: { credential: 'string' },
  registered: { id: 'u32', name: 'string' },
  unregistered: { id: 'u32', name: 'string' },
  opened: { id: 'u32', circuit: 'u32', peer: 'string' },
  incoming: { circuit: 'u32', name: 'string', peer: 'string' },
  close: { circuit: 'u32', code: 'string' },
  revoked: { seq: 'u32', identifier: 'string', until: 'time' },
  reinstated: { seq: 'u32', identifier: 'string' },
  'revocations-synced': { seq: 'u32' },
  relays: { relays: 'list' },
  response: { id: 'u32', result: 'any?', error: 'object?' },
  error: { id: 'u32?', code: 'string', message: 'string' },
} as const satisfies ShapesOf<RelayToAgent>;

type Shape = Readonly<Record<string, string>>;

function refused(type: string, detail: string): never {
  throw wicketError('WICKET_ERR_RELAY_PROTOCOL', `control '${type}': ${detail}`);
}

function checkField(type: string, name: string, kind: FieldKind, value: unknown): void {
  const ok =
    kind === 'any' ||
    (kind === 'string' && typeof value === 'string' && value.length <= RELAY_MAX_CONTROL_STRING) ||
    (kind === 'u32' && Number.isInteger(value) && (value as number) >= 0 && (value as number) <= 0xffffffff) ||
    (kind === 'time' && Number.isSafeInteger(value) && (value as number) >= 0) ||
    (kind === 'object' && typeof value === 'object' && value !== null && !Array.isArray(value)) ||
    (kind === 'list' && Array.isArray(value));
  if (!ok) refused(type, `field '${name}' is not a valid ${kind}`);
}

function checkShape(type: string, shape: Shape, record: Record<string, unknown>): void {
  for (const key of Object.keys(record)) {
    if (key !== 't' && !Object.hasOwn(shape, key)) refused(type, `unexpected field '${key.slice(0, 40)}'`);
  }
  for (const [name, spec] of Object.entries(shape)) {
    const optional = spec.endsWith('?');
    const kind = (optional ? spec.slice(0, -1) : spec) as FieldKind;
    if (record[name] === undefined) {
      if (optional) continue;
      refused(type, `missing field '${name}'`);
    }
    checkField(type, name, kind, record[name]);
  }
}

/** The record and its `t`, when `t` names a type of `shapes` (also the mesh's validator, protocol/mesh-messages.ts). */
export function typed(value: unknown, shapes: Readonly<Record<string, Shape>>, direction: string): { type: string; record: Record<string, unknown> } {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw wicketError('WICKET_ERR_RELAY_PROTOCOL', 'control message is not an object');
  }
  const record = value as Record<string, unknown>;
  const type = record.t;
  if (typeof type !== 'string' || !Object.hasOwn(shapes, type)) {
    throw wicketError('WICKET_ERR_RELAY_PROTOCOL', `${JSON.stringify(String(type)).slice(0, 40)} is not a message ${direction} sends`);
  }
  checkShape(type, shapes[type]!, record);
  return { type, record };
}

/** Validates a message an agent sent (what the relay accepts). Throws WICKET_ERR_RELAY_PROTOCOL. */
export function validateAgentMessage(value: unknown): AgentToRelay {
  const { type, record } = typed(value, AGENT_SHAPES, 'an agent');
  if (type === 'request' && !(ADMIN_OPS as readonly unknown[]).includes(record.op)) {
    refused(type, `unknown op ${JSON.stringify(String(record.op).slice(0, 40))}`);
  }
  if (type === 'open' && record.avoid !== undefined) parseAvoidList(record.avoid as string);
  return record as AgentToRelay;
}

/** Validates a message the relay sent (what an agent accepts). Throws WICKET_ERR_RELAY_PROTOCOL. */
export function validateRelayMessage(value: unknown): RelayToAgent {
  const { type, record } = typed(value, RELAY_SHAPES, 'the relay');
  if (type === 'response' && record.error !== undefined) {
    const error = record.error as Record<string, unknown>;
    const keys = Object.keys(error);
    if (keys.length !== 2 || !keys.includes('code') || !keys.includes('message')) {
      refused(type, "field 'error' must hold exactly code and message");
    }
    checkField(type, 'error.code', 'string', error.code);
    checkField(type, 'error.message', 'string', error.message);
  }
  return record as RelayToAgent;
}

/** `open.avoid` as identifiers: at most MAX_OPEN_AVOID, each a well-formed identifier. */
export function parseAvoidList(text: string): string[] {
  if (text === '') return [];
  const identifiers = text.split(',');
  if (identifiers.length > MAX_OPEN_AVOID) refused('open', `field 'avoid' names more than ${MAX_OPEN_AVOID} identifiers`);
  if (!identifiers.every(isIdentifier)) refused('open', "field 'avoid' holds something that is not an identifier");
  return identifiers;
}
