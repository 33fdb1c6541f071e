import { createHash } from 'node:crypto';
import { issueCredential, type Attributes } from '../../../protocol/credential.js';
import { Identity } from '../../../protocol/identity.js';
import { HandshakeState } from '../../../protocol/noise/index.js';
import { Secret } from '../../../protocol/secret.js';
import {
  PROLOGUE_PREFIX,
  InitiatorHandshake,
  ResponderHandshake,
  type ChannelPeer,
  type SecureChannelOptions,
  type SecureTransport,
} from '../../../protocol/secure-channel/index.js';

// Seeded parties for secure-channel tests: every key derives from a label, so a failure
// reproduces byte for byte.

export const NOW = Date.UTC(2025, 0, 15, 12, 0, 0);
export const TTL_MS = 10 * 60_000;

/** 32 deterministic bytes for a label. */
export function seeded(label: string): Buffer {
  return createHash('sha256').update(`wicket-test/${label}`).digest();
}

export function seededIdentity(label: string): Identity {
  return Identity.fromSeed(new Secret(seeded(`identity/${label}`)));
}

export const authority = seededIdentity('authority');
export const otherAuthority = seededIdentity('other-authority');

export interface Party {
  identity: Identity;
  credential: Buffer;
  options: SecureChannelOptions;
}

export function party(
  label: string,
  attributes: Attributes,
  overrides: { issuer?: Identity; issuedAt?: number; ttlMs?: number; credentialFor?: Identity; fixedKeys?: boolean; now?: () => number } & Partial<SecureChannelOptions> = {},
): Party {
  const identity = seededIdentity(label);
  const credential = issueCredential(overrides.issuer ?? authority, {
    subject: (overrides.credentialFor ?? identity).identifier,
    attributes,
    issuedAt: overrides.issuedAt ?? NOW - 1_000,
    ttlMs: overrides.ttlMs ?? TTL_MS,
  }).encoded;
  const fixed = overrides.fixedKeys ?? true;
  const options: SecureChannelOptions = {
    identity,
    credential,
    authorityPublicKey: authority.publicKey,
    now: overrides.now ?? (() => NOW),
    ...(fixed ? { staticPrivateKey: seeded(`static/${label}`), ephemeralPrivateKey: seeded(`ephemeral/${label}`) } : {}),
    ...(overrides.prologue ? { prologue: overrides.prologue } : {}),
    ...(overrides.rekeyIntervalMessages ? { rekeyIntervalMessages: overrides.rekeyIntervalMessages } : {}),
  };
  return { identity, credential, options };
}

export const inletAttributes = { 'openai-inlet': 'true' };
export const outletAttributes = { 'openai-outlet': 'true', 'wicket:relays': 'openai' };

export interface Handshake {
  initiatorPeer: ChannelPeer;
  responderPeer: ChannelPeer;
  initiator: SecureTransport;
  responder: SecureTransport;
  messages: [Buffer, Buffer, Buffer];
}

/** A whole handshake between two parties' options, in memory. */
export function handshake(initiatorOptions: SecureChannelOptions, responderOptions: SecureChannelOptions): Handshake {
  const initiator = new InitiatorHandshake(initiatorOptions);
  const responder = new ResponderHandshake(responderOptions);
  const m1 = initiator.writeMessage1();
  responder.readMessage1(m1);
  const m2 = responder.writeMessage2();
  const responderPeer = initiator.readMessage2(m2);
  const m3 = initiator.writeMessage3();
  const initiatorPeer = responder.readMessage3(m3);
  return { responderPeer, initiatorPeer, initiator: initiator.finish(), responder: responder.finish(), messages: [m1, m2, m3] };
}

/** Expects `run` to throw a WicketError with `code`; returns it. */
export function codeOf(run: () => unknown): string {
  try {
    run();
  } catch (err) {
    return (err as { code?: string }).code ?? `not a WicketError: ${String(err)}`;
  }
  return 'did not throw';
}

/**
 * A hand-driven Noise participant speaking Wicket's prologue, for attacks that our own classes
 * refuse to produce (bad bindings, borrowed credentials, replayed payloads).
 */
export function rawNoise(label: string, initiator: boolean, fixedKeys = true): HandshakeState {
  return new HandshakeState({
    initiator,
    prologue: PROLOGUE_PREFIX,
    ...(fixedKeys ? { staticPrivateKey: seeded(`raw-static/${label}`), ephemeralPrivateKey: seeded(`raw-ephemeral/${label}`) } : {}),
  });
}
