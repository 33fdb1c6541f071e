import type { ErrorCode } from '../protocol/errors.js';
import type { Transitions } from '../protocol/lifecycle.js';

// The relay client's lifecycle (relay-client.ts has the picture): its named states, the moves
// between them, and the refusals that end it for good.

export type RelayClientState = 'idle' | 'dialing' | 'authenticating' | 'connected' | 'backing-off' | 'stopped' | 'fatal';

export const RELAY_CLIENT_TRANSITIONS: Transitions<RelayClientState> = {
  idle: ['dialing', 'stopped'],
  dialing: ['authenticating', 'backing-off', 'stopped', 'fatal'],
  authenticating: ['connected', 'backing-off', 'stopped', 'fatal'],
  connected: ['backing-off', 'stopped', 'fatal'],
  'backing-off': ['dialing', 'stopped'],
  stopped: [],
  fatal: [],
};

/** Refusals that no retry can fix: reconnecting would only hammer the relay. */
export const FATAL_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'WICKET_ERR_REVOKED',
  'WICKET_ERR_RELAY_AUTH',
  'WICKET_ERR_MEMBER_UNKNOWN',
  'WICKET_ERR_NOT_ENROLLED',
  'WICKET_ERR_CREDENTIAL_ISSUER',
  'WICKET_ERR_CREDENTIAL_SIGNATURE',
  'WICKET_ERR_CREDENTIAL_SUBJECT',
  'WICKET_ERR_CREDENTIAL_MALFORMED',
  'WICKET_ERR_INSECURE_RELAY',
  'WICKET_ERR_CONFIG',
  'WICKET_ERR_VERSION',
  'WICKET_ERR_KEY_FILE_PERMISSIONS',
  'WICKET_ERR_KEY_INVALID',
]);
