import { pino } from 'pino';
import { issueCredential } from '../../protocol/credential.js';
import type { ErrorCode } from '../../protocol/errors.js';
import { Identity } from '../../protocol/identity.js';
import { parsePolicy } from '../../protocol/policy.js';
import { DATA_HEADER_LEN } from '../../protocol/relay-frames.js';
import type { SecureChannelOptions } from '../../protocol/secure-channel/index.js';
import { type CircuitPort, SecureSession, type SecureSessionOptions } from '../../agent/secure-session.js';

// Two real SecureSessions wired back to back, with no relay: each side's DATA frames are handed
// to the other side on a later turn of the event loop, in order, the way the relay forwards them.
// A test can tamper with, replay or drop frames in flight through `tap`.

export const silentLogger = pino({ level: process.env.WICKET_TEST_LOG ?? 'silent' });

export interface Party {
  identity: Identity;
  credential: Buffer;
}

export interface Project {
  authority: Identity;
  member(attributes: Record<string, string>, ttlMs?: number): Party;
}

export function project(): Project {
  const authority = Identity.generate();
  return {
    authority,
    member(attributes, ttlMs = 10 * 60_000) {
      const identity = Identity.generate();
      const credential = issueCredential(authority, { subject: identity.identifier, attributes, issuedAt: Date.now(), ttlMs }).encoded;
      return { identity, credential };
    },
  };
}

export function channelOptions(p: Project, party: Party, prologue = 'svc'): SecureChannelOptions {
  return {
    identity: party.identity,
    credential: party.credential,
    authorityPublicKey: p.authority.publicKey,
    now: Date.now,
    prologue: Buffer.from(prologue),
  };
}

export type Direction = 'toResponder' | 'toInitiator';

export interface Wire {
  initiator: SecureSession;
  responder: SecureSession;
  /** Frames (payloads, header stripped) sent each way so far. */
  sent: Record<Direction, Buffer[]>;
  /** Close codes each side received from the other (through the "relay"). */
  closes: Record<Direction, ErrorCode[]>;
  /** Rewrites a payload in flight; return undefined to drop it, an array to deliver several. */
  tap: ((direction: Direction, payload: Buffer, index: number) => Buffer | Buffer[] | undefined) | undefined;
  /** Makes port.send report congestion (false) until released. */
  congested: boolean;
}

export interface PairOptions {
  initiator: { party: Party; allow: string; prologue?: string };
  responder: { party: Party; allow: string; prologue?: string };
  extra?: Partial<SecureSessionOptions>;
}

export function sessionPair(p: Project, o: PairOptions): Wire {
  const wire = { sent: { toResponder: [], toInitiator: [] }, closes: { toResponder: [], toInitiator: [] }, tap: undefined, congested: false } as unknown as Wire;
  const port = (direction: Direction, target: () => SecureSession): CircuitPort => ({
    send(frame: Buffer): boolean {
      const payload = Buffer.from(frame.subarray(DATA_HEADER_LEN)); // the relay's copy on the wire
      const index = wire.sent[direction].length;
      wire.sent[direction].push(payload);
      const delivered = wire.tap === undefined ? payload : wire.tap(direction, payload, index);
      const list = delivered === undefined ? [] : Array.isArray(delivered) ? delivered : [delivered];
      for (const item of list) setImmediate(() => target().receive(item));
      return !wire.congested;
    },
    close(code: ErrorCode): void {
      wire.closes[direction].push(code);
      setImmediate(() => target().circuitClosed(code));
    },
  });
  wire.initiator = new SecureSession({
    role: 'initiator',
    circuit: 7,
    port: port('toResponder', () => wire.responder),
    channel: channelOptions(p, o.initiator.party, o.initiator.prologue),
    policy: parsePolicy(o.initiator.allow),
    logger: silentLogger,
    resource: 'inlet-under-test',
    ...o.extra,
  });
  wire.responder = new SecureSession({
    role: 'responder',
    circuit: 7,
    port: port('toInitiator', () => wire.initiator),
    channel: channelOptions(p, o.responder.party, o.responder.prologue),
    policy: parsePolicy(o.responder.allow),
    logger: silentLogger,
    resource: 'outlet-under-test',
    ...o.extra,
  });
  wire.responder.start();
  wire.initiator.start();
  return wire;
}

/** Resolves with the close error of a session (bounded). */
export function closedWith(session: SecureSession, timeoutMs = 10_000): Promise<ErrorCode> {
  if (session.state === 'closed') return Promise.resolve(session.closeError!.code);
  return new Promise<ErrorCode>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`session still ${session.state} after ${timeoutMs} ms`)), timeoutMs);
    session.once('closed', (err: { code: ErrorCode }) => {
      clearTimeout(timer);
      resolve(err.code);
    });
  });
}
