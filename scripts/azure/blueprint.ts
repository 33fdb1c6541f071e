import { createHash } from 'node:crypto';
import { nameHash, resourceNames, type NameSource, type ResourceNames } from './naming.js';
import type { AzureSettings } from './settings.js';

// The whole deployment as data: names, address spaces, NSG rules, VM sizes and images. `plan`
// prints it, `up` builds exactly it (the provisioning modules read their specs from here), and the
// tests compare what the ARM stand-in holds after `up` with the ids listed here.

export const AOAI_MODEL = { format: 'OpenAI', name: 'gpt-4o-mini', version: '2024-07-18' } as const;
/** Built-in role "Cognitive Services OpenAI User": call the data plane, read nothing else, no keys. */
export const OPENAI_USER_ROLE_ID = '5e0bd9bd-7b93-4f28-af87-19fc36ad61bd';
export const ROLE_ASSIGNMENT_API_VERSION = '2022-04-01';
export const UBUNTU_IMAGE = { publisher: 'Canonical', offer: 'ubuntu-24_04-lts', sku: 'server', version: 'latest' } as const;
export const VM_ADMIN_USERNAME = 'wicketadmin';
export const RELAY_PORT = 443;
/** Where the demo's inlet listens on Health Corp's VM. */
export const INLET_ADDRESS = '127.0.0.1:8443';

/** The portal: AI Corp's outlet registers relay name `openai`; each side admits only the other. */
export const PORTAL = {
  relayName: 'openai',
  outletAttribute: 'openai-outlet',
  inletAttribute: 'openai-inlet',
  ticketExpiresIn: '60m',
} as const;

export type GroupKey = 'relay' | 'ai-corp' | 'health-corp';

export interface NsgRule {
  name: string;
  priority: number;
  direction: 'Inbound';
  access: 'Allow' | 'Deny';
  protocol: 'Tcp' | '*';
  sourceAddressPrefix: string;
  destinationPortRange: string;
  description: string;
}

export interface SubnetSpec {
  name: string;
  prefix: string;
  /** Private endpoints need network policies off on their subnet (Azure requirement). */
  privateEndpoints?: boolean;
}

export interface VnetSpec {
  name: string;
  addressSpace: string;
  subnets: SubnetSpec[];
}

export interface VmSpec {
  name: string;
  size: string;
  image: typeof UBUNTU_IMAGE;
  adminUsername: string;
  publicIp: boolean;
  systemAssignedIdentity: boolean;
  osDiskGb: number;
  /** One line: what its cloud-init starts. */
  runs: string;
  /** Further lines `plan` prints under the VM (what an operator should know about what it runs). */
  notes: string[];
}

export interface Blueprint {
  subscriptionId: string;
  location: string;
  hash: string;
  nameSource: NameSource;
  names: ResourceNames;
  wicket: { repo: string | undefined; ref: string | undefined };
  relay: { group: string; nsgRules: NsgRule[]; vnet: VnetSpec; vm: VmSpec };
  aiCorp: {
    group: string;
    nsgRules: NsgRule[];
    vnet: VnetSpec;
    account: { name: string; kind: 'OpenAI'; sku: 'S0'; customSubDomainName: string };
    deployment: { name: string; model: typeof AOAI_MODEL; sku: string; capacity: number };
    vm: VmSpec;
  };
  healthCorp: { group: string; nsgRules: NsgRule[]; vnet: VnetSpec; vm: VmSpec };
}

const DENY_ALL_INBOUND: NsgRule = {
  name: 'deny-all-inbound',
  priority: 4096,
  direction: 'Inbound',
  access: 'Deny',
  protocol: '*',
  sourceAddressPrefix: '*',
  destinationPortRange: '*',
  description: 'Nothing may connect in; agents only dial out to the relay.',
};

export function relayNsgRules(adminCidr: string | undefined): NsgRule[] {
  const rules: NsgRule[] = [
    {
      name: 'allow-wicket-relay',
      priority: 100,
      direction: 'Inbound',
      access: 'Allow',
      protocol: 'Tcp',
      sourceAddressPrefix: '*',
      destinationPortRange: String(RELAY_PORT),
      description: 'Agents dial the relay over WebSocket/TLS.',
    },
  ];
  if (adminCidr !== undefined) {
    rules.push({
      name: 'allow-ssh-from-admin',
      priority: 110,
      direction: 'Inbound',
      access: 'Allow',
      protocol: 'Tcp',
      sourceAddressPrefix: adminCidr,
      destinationPortRange: '22',
      description: 'SSH from the one operator address in ADMIN_CIDR.',
    });
  }
  rules.push({ ...DENY_ALL_INBOUND, name: 'deny-all-other-inbound', description: 'Everything else is refused.' });
  return rules;
}

export function buildBlueprint(settings: AzureSettings, subscriptionId: string, nameSource: NameSource): Blueprint {
  const hash = nameHash(nameSource);
  const names = resourceNames(hash);
  const vm = (name: string, extra: Pick<VmSpec, 'publicIp' | 'systemAssignedIdentity' | 'runs'> & Partial<Pick<VmSpec, 'notes'>>): VmSpec => ({
    name,
    size: settings.vmSize,
    image: UBUNTU_IMAGE,
    adminUsername: VM_ADMIN_USERNAME,
    osDiskGb: 30,
    notes: [],
    ...extra,
  });
  return {
    subscriptionId,
    location: settings.location,
    hash,
    nameSource,
    names,
    wicket: { repo: settings.wicketRepo, ref: settings.wicketRef },
    relay: {
      group: names.relay.group,
      nsgRules: relayNsgRules(settings.adminCidr),
      vnet: { name: names.relay.vnet, addressSpace: '10.10.0.0/16', subnets: [{ name: names.relay.subnet, prefix: '10.10.1.0/24' }] },
      vm: vm(names.relay.vm, {
        publicIp: true,
        systemAssignedIdentity: false,
        runs: `relay start --listen 0.0.0.0:${RELAY_PORT} --data /var/lib/wicket-relay --public-url wss://<public IP>:${RELAY_PORT}`,
      }),
    },
    aiCorp: {
      group: names.aiCorp.group,
      nsgRules: [DENY_ALL_INBOUND],
      vnet: {
        name: names.aiCorp.vnet,
        addressSpace: '10.20.0.0/16',
        subnets: [
          { name: names.aiCorp.appSubnet, prefix: '10.20.1.0/24' },
          { name: names.aiCorp.endpointSubnet, prefix: '10.20.2.0/24', privateEndpoints: true },
        ],
      },
      account: { name: names.aiCorp.account, kind: 'OpenAI', sku: 'S0', customSubDomainName: names.aiCorp.account },
      deployment: { name: names.aiCorp.deployment, model: AOAI_MODEL, sku: settings.aoaiSku, capacity: settings.aoaiCapacity },
      vm: vm(names.aiCorp.vm, {
        publicIp: false,
        systemAssignedIdentity: true,
        runs: `agent enroll (ticket: openai-outlet, relay name openai); outlet openai = Azure OpenAI gateway -> https://${names.aiCorp.account}.openai.azure.com (backend ${settings.location})`,
        notes: [
          "outlet: the Azure OpenAI gateway, authenticated by this VM's managed identity (no API key, no separate token proxy)",
          'usage: recorded per caller identity in the agent home /var/lib/wicket; see it with `agent usage` on this VM (as user wicket)',
        ],
      }),
    },
    healthCorp: {
      group: names.healthCorp.group,
      nsgRules: [DENY_ALL_INBOUND],
      vnet: { name: names.healthCorp.vnet, addressSpace: '10.30.0.0/16', subnets: [{ name: names.healthCorp.subnet, prefix: '10.30.1.0/24' }] },
      vm: vm(names.healthCorp.vm, {
        publicIp: false,
        systemAssignedIdentity: false,
        runs: `agent enroll (ticket: openai-inlet); inlet ${INLET_ADDRESS} via openai; demo client asks "What is Ockham's Razor?"`,
      }),
    },
  };
}

// ---------------------------------------------------------------------------------------------
// ARM resource ids
// ---------------------------------------------------------------------------------------------

export function groupId(subscriptionId: string, group: string): string {
  return `/subscriptions/${subscriptionId}/resourceGroups/${group}`;
}

/** `armId(sub, rg, 'Microsoft.Network', 'virtualNetworks', 'v', 'subnets', 's')`. */
export function armId(subscriptionId: string, group: string, provider: string, ...typeNamePairs: string[]): string {
  return `${groupId(subscriptionId, group)}/providers/${provider}/${typeNamePairs.join('/')}`;
}

export function roleDefinitionId(subscriptionId: string, roleId: string): string {
  return `/subscriptions/${subscriptionId}/providers/Microsoft.Authorization/roleDefinitions/${roleId}`;
}

/**
 * Role assignment names are GUIDs. Deriving it from (scope, VM, role) makes a re-run find the one
 * it made instead of adding a duplicate (which Azure refuses with RoleAssignmentExists).
 */
export function roleAssignmentName(scope: string, assigneeResourceId: string, roleId: string): string {
  const h = createHash('sha256').update(`${scope.toLowerCase()}\0${assigneeResourceId.toLowerCase()}\0${roleId}`).digest();
  h[6] = (h[6]! & 0x0f) | 0x50; // RFC 4122 version 5 layout (name-based, SHA)
  h[8] = (h[8]! & 0x3f) | 0x80; // RFC 4122 variant
  const hex = h.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

export function blueprintIds(bp: Blueprint) {
  const s = bp.subscriptionId;
  const n = bp.names;
  const net = 'Microsoft.Network';
  const accountId = armId(s, n.aiCorp.group, 'Microsoft.CognitiveServices', 'accounts', n.aiCorp.account);
  const aiVmId = armId(s, n.aiCorp.group, 'Microsoft.Compute', 'virtualMachines', n.aiCorp.vm);
  return {
    relay: {
      group: groupId(s, n.relay.group),
      nsg: armId(s, n.relay.group, net, 'networkSecurityGroups', n.relay.nsg),
      vnet: armId(s, n.relay.group, net, 'virtualNetworks', n.relay.vnet),
      subnet: armId(s, n.relay.group, net, 'virtualNetworks', n.relay.vnet, 'subnets', n.relay.subnet),
      publicIp: armId(s, n.relay.group, net, 'publicIPAddresses', n.relay.publicIp),
      nic: armId(s, n.relay.group, net, 'networkInterfaces', n.relay.nic),
      vm: armId(s, n.relay.group, 'Microsoft.Compute', 'virtualMachines', n.relay.vm),
    },
    aiCorp: {
      group: groupId(s, n.aiCorp.group),
      nsg: armId(s, n.aiCorp.group, net, 'networkSecurityGroups', n.aiCorp.nsg),
      vnet: armId(s, n.aiCorp.group, net, 'virtualNetworks', n.aiCorp.vnet),
      appSubnet: armId(s, n.aiCorp.group, net, 'virtualNetworks', n.aiCorp.vnet, 'subnets', n.aiCorp.appSubnet),
      endpointSubnet: armId(s, n.aiCorp.group, net, 'virtualNetworks', n.aiCorp.vnet, 'subnets', n.aiCorp.endpointSubnet),
      account: accountId,
      deployment: `${accountId}/deployments/${n.aiCorp.deployment}`,
      dnsZone: armId(s, n.aiCorp.group, net, 'privateDnsZones', n.aiCorp.dnsZone),
      dnsLink: armId(s, n.aiCorp.group, net, 'privateDnsZones', n.aiCorp.dnsZone, 'virtualNetworkLinks', n.aiCorp.dnsLink),
      privateEndpoint: armId(s, n.aiCorp.group, net, 'privateEndpoints', n.aiCorp.privateEndpoint),
      zoneGroup: armId(s, n.aiCorp.group, net, 'privateEndpoints', n.aiCorp.privateEndpoint, 'privateDnsZoneGroups', n.aiCorp.zoneGroup),
      nic: armId(s, n.aiCorp.group, net, 'networkInterfaces', n.aiCorp.nic),
      vm: aiVmId,
      roleAssignment: `${accountId}/providers/Microsoft.Authorization/roleAssignments/${roleAssignmentName(accountId, aiVmId, OPENAI_USER_ROLE_ID)}`,
    },
    healthCorp: {
      group: groupId(s, n.healthCorp.group),
      nsg: armId(s, n.healthCorp.group, net, 'networkSecurityGroups', n.healthCorp.nsg),
      vnet: armId(s, n.healthCorp.group, net, 'virtualNetworks', n.healthCorp.vnet),
      subnet: armId(s, n.healthCorp.group, net, 'virtualNetworks', n.healthCorp.vnet, 'subnets', n.healthCorp.subnet),
      nic: armId(s, n.healthCorp.group, net, 'networkInterfaces', n.healthCorp.nic),
      vm: armId(s, n.healthCorp.group, 'Microsoft.Compute', 'virtualMachines', n.healthCorp.vm),
    },
  };
}

export type BlueprintIds = ReturnType<typeof blueprintIds>;
