import { createHash } from 'node:crypto';

// Every resource name carries a short hash of who deploys, so two operators sharing a subscription
// never collide and a re-run by the same operator finds (and resumes) its own resources. The hash
// is of the signed-in principal's object id; a token without one (a static test token) falls back
// to the subscription id. Six hex digits keep names short; the Azure OpenAI custom subdomain is
// globally unique, so a clash with a stranger is possible but unlikely (1 in 16.7 million).

export type NameSource = { kind: 'principal'; objectId: string } | { kind: 'subscription'; subscriptionId: string };

export const NAME_HASH_LEN = 6;

export function nameHash(source: NameSource): string {
  const input = source.kind === 'principal' ? `principal:${source.objectId}` : `subscription:${source.subscriptionId}`;
  return createHash('sha256').update(`wicket/azure-names/v1\0${input}`).digest('hex').slice(0, NAME_HASH_LEN);
}

export function describeNameSource(source: NameSource): string {
  return source.kind === 'principal' ? `principal ${source.objectId}` : `subscription ${source.subscriptionId} (no principal id known)`;
}

/** All names, derived from the hash alone so `plan`, `up` and `cleanup` agree. */
export function resourceNames(hash: string) {
  const p = `wicket-${hash}`;
  return {
    prefix: p,
    relay: {
      group: `${p}-relay`,
      nsg: `${p}-relay-nsg`,
      vnet: `${p}-relay-vnet`,
      subnet: 'relay',
      publicIp: `${p}-relay-ip`,
      nic: `${p}-relay-nic`,
      vm: `${p}-relay-vm`,
    },
    aiCorp: {
      group: `${p}-ai-corp`,
      nsg: `${p}-ai-corp-nsg`,
      vnet: `${p}-ai-corp-vnet`,
      appSubnet: 'app',
      endpointSubnet: 'private-endpoints',
      account: `${p}-aoai`,
      deployment: 'gpt-4o-mini',
      dnsZone: 'privatelink.openai.azure.com',
      dnsLink: `${p}-ai-corp-vnet-link`,
      privateEndpoint: `${p}-aoai-pe`,
      privateLinkConnection: `${p}-aoai-connection`,
      zoneGroup: 'default',
      nic: `${p}-ai-corp-nic`,
      vm: `${p}-ai-corp-vm`,
    },
    healthCorp: {
      group: `${p}-health-corp`,
      nsg: `${p}-health-corp-nsg`,
      vnet: `${p}-health-corp-vnet`,
      subnet: 'app',
      nic: `${p}-health-corp-nic`,
      vm: `${p}-health-corp-vm`,
    },
  } as const;
}

export type ResourceNames = ReturnType<typeof resourceNames>;

/**
 * The `oid` (object id of the signed-in user or service principal) from a JWT access token, read
 * locally: the signature is not checked because nothing is trusted on it, it only names things.
 * Undefined for opaque (non-JWT) tokens or tokens without the claim.
 */
export function principalFromToken(token: string): string | undefined {
  const parts = token.split('.');
  if (parts.length !== 3 || parts[1] === undefined) return undefined;
  try {
    const claims: unknown = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
    if (typeof claims !== 'object' || claims === null) return undefined;
    const oid = (claims as Record<string, unknown>).oid;
    return typeof oid === 'string' && /^[0-9a-f-]{36}$/i.test(oid) ? oid.toLowerCase() : undefined;
  } catch {
    return undefined;
  }
}
