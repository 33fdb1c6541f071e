import { DefaultAzureCredential, type AccessToken, type TokenCredential } from '@azure/identity';
import { wicketError } from '../../protocol/errors.js';
import type { Secret } from '../../protocol/secret.js';
import { principalFromToken } from './naming.js';
import type { AzureSettings } from './settings.js';

// Who `up` acts as. Normally DefaultAzureCredential (az login, environment, managed identity,
// workload identity…); with AZURE_ARM_ENDPOINT and AZURE_ACCESS_TOKEN both set, one static bearer
// token (tests against the ARM stand-in, Azure Stack, a token minted elsewhere).

/** A credential that always returns one token; the SDK's bearer policy asks it per request. */
export function staticTokenCredential(token: Secret<string>): TokenCredential {
  return {
    async getToken(): Promise<AccessToken> {
      // The real expiry is unknown; claim an hour so the SDK does not ask again in a tight loop.
      return { token: token.reveal(), expiresOnTimestamp: Date.now() + 60 * 60_000, tokenType: 'Bearer' };
    },
  };
}

export function armCredential(settings: AzureSettings): TokenCredential {
  if (settings.staticToken !== undefined) return staticTokenCredential(settings.staticToken);
  return new DefaultAzureCredential();
}

/** Gets an ARM token once (proving sign-in works before anything is created) and reads its oid. */
export async function signedInPrincipal(credential: TokenCredential, scope: string): Promise<string | undefined> {
  let token: AccessToken | null;
  try {
    token = await credential.getToken(scope);
  } catch (err) {
    const reason = err instanceof Error ? err.message.split('\n')[0] : String(err);
    throw wicketError('WICKET_ERR_AZURE_CONFIG', `cannot get an Azure token for ${scope} (run \`az login\`, or set AZURE_ARM_ENDPOINT and AZURE_ACCESS_TOKEN): ${reason}`, err);
  }
  if (token === null) {
    throw wicketError('WICKET_ERR_AZURE_CONFIG', `no Azure credential produced a token for ${scope}; run \`az login\``);
  }
  return principalFromToken(token.token);
}
