import { decodeCredential } from '../credential.js';
import { asWicketError, wicketError } from '../errors.js';
import type { Identity } from '../identity.js';
import { NOISE_MAX_MESSAGE, REKEY_INTERVAL_MESSAGES } from '../limits.js';
import { HandshakeState, WICKET_PROTOCOL_NAME } from '../noise/index.js';
import { buildHandshakePayload, verifyHandshakePayload, type ChannelPeer } from './handshake-payload.js';
import { SecureTransport } from './secure-transport.js';

// What both handshake roles share: options, the Noise HandshakeState, the named-state machine,
// and the failure rule. Any error in any step marks the handshake FAILED for good (every later
// call throws WICKET_ERR_HANDSHAKE_STATE) and produces nothing for the peer: the caller just drops
// the circuit, so a prober learns nothing about why (wireguard-go does the same).

export interface SecureChannelOptions {
  identity: Identity;
  /** Our encoded credential (protocol/credential.ts), sent to the peer inside the handshake. */
  credential: Buffer;
  /** The pinned project authority; the peer's credential must be signed by it. */
  authorityPublicKey: Buffer;
  /** Injected clock (ms since epoch) for checking the peer's credential. */
  now: () => number;
  /**
   * Extra bytes both sides must agree on (e.g. the relay name); appended to the fixed prologue
   * PROLOGUE_PREFIX and hashed into the handshake, so a mismatch fails message 2.
   */
  prologue?: Buffer;
  /**
   * The identity the relay joined this circuit to (the opener, for an outlet; the registered
   * outlet, for an inlet). A peer that authenticates as anyone else is refused with
   * WICKET_ERR_PEER_MISMATCH: a member cannot lend its circuit to another identity.
   */
  expectedPeer?: string;
  /** The agent's revoked set: a peer it names is refused with WICKET_ERR_REVOKED. */
  isRevoked?: (identifier: string) => boolean;
  /** Tests only: a fixed Noise static private key (default: a fresh key per handshake). */
  staticPrivateKey?: Buffer;
  /** Tests only: a fixed Noise ephemeral private key. */
  ephemeralPrivateKey?: Buffer;
  /** Tests only: rekey every this many messages per direction (default REKEY_INTERVAL_MESSAGES). */
  rekeyIntervalMessages?: number;
}

/** Hashed into every Wicket handshake (Noise §6 prologue): binds the protocol and its version. */
export const PROLOGUE_PREFIX = Buffer.from('wicket/secure-channel/v1\0', 'ascii');

export abstract class ChannelHandshake<State extends string> {
  protected readonly noise: HandshakeState;
  readonly #options: SecureChannelOptions;
  #state: State | 'failed' | 'finished';

  protected constructor(options: SecureChannelOptions, initiator: boolean, initialState: State) {
    // Our own credential must be ours: catching a mix-up here beats a confusing peer rejection.
    const own = decodeCredential(options.credential);
    if (own.subject !== options.identity.identifier) {
      throw wicketError('WICKET_ERR_CREDENTIAL_SUBJECT', `our credential names ${own.subject}, not our identity ${options.identity.identifier}`);
    }
    const interval = options.rekeyIntervalMessages;
    if (interval !== undefined && (!Number.isSafeInteger(interval) || interval < 1)) {
      throw wicketError('WICKET_ERR_ARGUMENT', 'rekeyIntervalMessages must be a positive integer');
    }
    this.#options = options;
    this.#state = initialState;
    this.noise = new HandshakeState({
      protocolName: WICKET_PROTOCOL_NAME,
      initiator,
      prologue: options.prologue ? Buffer.concat([PROLOGUE_PREFIX, options.prologue]) : PROLOGUE_PREFIX,
      ...(options.staticPrivateKey ? { staticPrivateKey: options.staticPrivateKey } : {}),
      ...(options.ephemeralPrivateKey ? { ephemeralPrivateKey: options.ephemeralPrivateKey } : {}),
    });
  }

  /** The current named state ('failed' after any error, 'finished' after finish()). */
  get state(): State | 'failed' | 'finished' {
    return this.#state;
  }

  /**
   * Runs a step that is legal only in `expected`; moves to `next` if it succeeds, to 'failed'
   * if anything throws.
   */
  protected step<T>(name: string, expected: State, next: State | 'finished', run: () => T): T {
    if (this.#state !== expected) {
      throw wicketError('WICKET_ERR_HANDSHAKE_STATE', `${name}() called in state ${this.#state}`);
    }
    try {
      const result = run();
      this.#state = next;
      return result;
    } catch (err) {
      this.#state = 'failed';
      throw asWicketError(err);
    }
  }

  /**
   * Noise §3: a message is at most 65,535 bytes. The one check of that for handshake messages,
   * made before any other work on `message` (and before its own fixed-length checks).
   */
  protected checkMessageSize(message: Buffer, which: 1 | 2 | 3): void {
    if (message.length > NOISE_MAX_MESSAGE) {
      throw wicketError('WICKET_ERR_MESSAGE_TOO_LARGE', `handshake message ${which} is ${message.length} bytes, cap ${NOISE_MAX_MESSAGE}`);
    }
  }

  /** Our message 2 / 3 payload: identity, binding signature over our static key, credential. */
  protected ownPayload(): Buffer {
    return buildHandshakePayload(this.#options.identity, this.noise.localStaticPublicKey, this.#options.credential);
  }

  /**
   * Verifies the peer's payload against the static key Noise just authenticated, then holds the
   * verified identity to what the agent knows: not revoked (DESIGN.md property 5: a credential
   * still within its lifetime is not enough), and the one the relay joined the circuit to.
   */
  protected verifyPeer(payload: Buffer): ChannelPeer {
    const remoteStaticPublicKey = this.noise.remoteStaticPublicKey;
    if (remoteStaticPublicKey === undefined) throw wicketError('WICKET_ERR_INTERNAL', 'peer payload before its static key');
    const peer = verifyHandshakePayload(payload, {
      remoteStaticPublicKey,
      authorityPublicKey: this.#options.authorityPublicKey,
      now: this.#options.now(),
    });
    if (this.#options.isRevoked?.(peer.identifier) === true) {
      throw wicketError('WICKET_ERR_REVOKED', `peer ${peer.identifier} is revoked`);
    }
    const expected = this.#options.expectedPeer;
    if (expected !== undefined && peer.identifier !== expected) {
      throw wicketError('WICKET_ERR_PEER_MISMATCH', `the relay joined this circuit to ${expected}, but ${peer.identifier} answered the handshake`);
    }
    return peer;
  }

  /** Split() into the transport. */
  protected transport(): SecureTransport {
    const handshakeHash = this.noise.handshakeHash();
    return new SecureTransport(this.noise.split(), handshakeHash, {
      rekeyIntervalMessages: this.#options.rekeyIntervalMessages ?? REKEY_INTERVAL_MESSAGES,
    });
  }
}
