// Who may call the stand-in, decided the way an Azure OpenAI resource decides it:
//
// - `api-key: KEY` is local (key) auth. A resource with local auth disabled refuses it with 403
//   `AuthenticationTypeDisabled` even when the key would be right; the stand-in has local auth
//   disabled when it is given no `apiKey`.
// - `Authorization: Bearer TOKEN` is an Entra ID token, accepted when the test's `acceptBearer`
//   says so (tokens issued by its managed-identity stand-in). The v1 API also takes the resource
//   key as a bearer token (the plain `OpenAI` client sends its key that way), and so does the
//   stand-in on every route.
// - Neither header: 401 with the key message, as Azure answers.
//
// The `api-key` header wins when both are sent, as it does on the service.

import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { Secret } from '../../protocol/secret.js';
import * as azure from './azure-errors.js';

export type BearerCheck = (token: string) => boolean;

export class Authenticator {
  readonly #keyDigest: Buffer | undefined;
  readonly #acceptBearer: BearerCheck | undefined;

  constructor(apiKey: string | Secret<string> | undefined, acceptBearer: BearerCheck | undefined) {
    const key = typeof apiKey === 'string' ? new Secret(apiKey) : apiKey;
    if (key !== undefined && key.reveal().length === 0) throw new Error('the stand-in needs a non-empty API key');
    if (key === undefined && acceptBearer === undefined) throw new Error('the stand-in needs an apiKey, an acceptBearer, or both');
    // Keep only a digest: the key itself never sits in the server's closures.
    this.#keyDigest = key === undefined ? undefined : sha256(key.reveal());
    this.#acceptBearer = acceptBearer;
  }

  /** undefined when the caller may proceed; otherwise the answer Azure gives. */
  refusal(headers: IncomingHttpHeaders): azure.AzureErrorAnswer | undefined {
    const apiKeyHeader = headers['api-key'];
    if (typeof apiKeyHeader === 'string' && apiKeyHeader.length > 0) {
      if (this.#keyDigest === undefined) return azure.keyAuthenticationDisabled();
      return this.#isKey(apiKeyHeader) ? undefined : azure.invalidSubscriptionKey();
    }
    const authorization = headers.authorization;
    if (typeof authorization === 'string' && /^bearer\s+/i.test(authorization)) {
      const token = authorization.replace(/^bearer\s+/i, '').trim();
      if (this.#isKey(token) || this.#bearerAccepted(token)) return undefined;
      return azure.invalidBearerToken();
    }
    return azure.invalidSubscriptionKey();
  }

  #isKey(candidate: string): boolean {
    // Compare digests in constant time so the comparison leaks nothing about the key.
    return this.#keyDigest !== undefined && timingSafeEqual(sha256(candidate), this.#keyDigest);
  }

  #bearerAccepted(token: string): boolean {
    if (this.#acceptBearer === undefined || token.length === 0) return false;
    try {
      return this.#acceptBearer(token) === true;
    } catch {
      // A throwing check is a refusal, never a crash of the request handler.
      return false;
    }
  }
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}
