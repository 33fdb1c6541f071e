import type { TokenCredential } from '@azure/identity';
import type { Logger } from 'pino';
import { wicketError } from '../../protocol/errors.js';
import type { Secret } from '../../protocol/secret.js';
import { readApiKeyFile } from './api-key-file.js';
import { EntraToken, entraCredentialChain, type CredentialState } from './entra-token.js';
import type { BackendAuthSpec } from './gateway-spec.js';

// What the gateway adds to each backend request in place of the caller's own `api-key` /
// `Authorization` (DESIGN.md "The Azure OpenAI gateway": keyless callers). One credential per
// backend of the pool, made from its `auth` block when the outlet starts:
//
//   entra    `Authorization: Bearer <token>` from @azure/identity (entra-token.ts)
//   api-key  `api-key: <key>` read once from a mode-0600 file (api-key-file.ts)
//   none     nothing (an OpenAI-compatible backend on a trusted network)
//
// Nothing here logs or formats a token or key: they stay in Secrets until the header is built.

export interface BackendAuthorization {
  /** The header name, lower-case as node:http and undici want it. */
  name: 'api-key' | 'authorization';
  /** The key, or `Bearer …` for entra. */
  value: string;
}

export interface CredentialStatus {
  kind: BackendAuthSpec['kind'];
  state: CredentialState;
  /** ISO time the held Entra token expires. */
  expiresAt?: string;
  lastError?: { code: string; message: string; at: string };
  /** How many times a held token was replaced by a newer one. */
  refreshes: number;
}

export interface BackendCredential {
  /** The header for one backend request; throws WicketError WICKET_ERR_BACKEND_AUTH when no valid credential can be had. */
  authorize(): Promise<BackendAuthorization | undefined>;
  status(): CredentialStatus;
  close(): void;
}

export interface BackendCredentialOptions {
  logger: Logger;
  now?: () => number;
  /** Replaces the @azure/identity chain (tests). */
  tokenCredential?: TokenCredential;
  /** How long a request may wait for a first (or expired) Entra token; default GATEWAY_ENTRA_FETCH_TIMEOUT_MS. */
  fetchTimeoutMs?: number;
}

/**
 * Makes the credential for one backend. Throws WICKET_ERR_CONFIG at once for an unusable api-key
 * file, so a bad file stops the outlet at start-up rather than failing its first request. An
 * entra credential starts fetching its token here, in the background.
 */
export function createBackendCredential(auth: BackendAuthSpec, options: BackendCredentialOptions): BackendCredential {
  switch (auth.kind) {
    case 'none':
      return {
        authorize: async () => undefined,
        status: () => ({ kind: 'none', state: 'ready', refreshes: 0 }),
        close: () => {},
      };
    case 'api-key': {
      let key: Secret<string> | undefined = readApiKeyFile(auth.file);
      return {
        authorize: async () => {
          if (key === undefined) throw wicketError('WICKET_ERR_BACKEND_AUTH', `the api-key credential from ${auth.file} is closed (the outlet is stopping)`);
          return { name: 'api-key', value: key.reveal() };
        },
        status: () => ({ kind: 'api-key', state: key === undefined ? 'unavailable' : 'ready', refreshes: 0 }),
        close: () => {
          key = undefined;
        },
      };
    }
    case 'entra': {
      const log = options.logger.child({ backendAuth: 'entra' });
      const token = new EntraToken({
        credential: options.tokenCredential ?? entraCredentialChain(auth.clientId),
        logger: log,
        now: options.now ?? Date.now,
        clientId: auth.clientId,
        fetchTimeoutMs: options.fetchTimeoutMs,
      });
      return {
        authorize: async () => ({ name: 'authorization', value: await token.bearer() }),
        status: () => ({ kind: 'entra', ...token.status() }),
        close: () => token.close(),
      };
    }
  }
}
