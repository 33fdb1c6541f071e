import { blueprintIds, OPENAI_USER_ROLE_ID, type Blueprint, type GroupKey, type NsgRule, type VnetSpec, type VmSpec } from './blueprint.js';
import { describeNameSource } from './naming.js';

// `./scripts/run.sh plan`: every resource `up` would create, in creation order, with the facts an
// operator checks before spending money (names, address spaces, NSG rules, VM sizes and images).
// Built from the blueprint alone: no token, no Azure call.

export interface PlannedResource {
  group: GroupKey;
  kind: string;
  name: string;
  /** ARM resource id: the tests check that `up` creates exactly these. */
  id: string;
  details: string[];
}

function ruleLine(r: NsgRule): string {
  const what = r.protocol === '*' && r.destinationPortRange === '*' ? 'all traffic' : `${r.protocol === '*' ? 'any' : r.protocol.toLowerCase()}/${r.destinationPortRange}`;
  const from = r.sourceAddressPrefix === '*' ? 'anywhere' : r.sourceAddressPrefix;
  return `inbound ${String(r.priority).padStart(4)} ${r.access.toLowerCase().padEnd(5)} ${what} from ${from}  (${r.name})`;
}

function subnetLines(v: VnetSpec, nsgName: string): string[] {
  return v.subnets.map((s) =>
    s.privateEndpoints
      ? `subnet ${s.name} ${s.prefix} (private endpoints; network policies off)`
      : `subnet ${s.name} ${s.prefix} (nsg ${nsgName})`,
  );
}

function vmLines(vm: VmSpec, bp: Blueprint): string[] {
  const i = vm.image;
  return [
    `size ${vm.size}; image ${i.publisher}:${i.offer}:${i.sku}:${i.version}; ${vm.osDiskGb} GB StandardSSD OS disk`,
    `admin ${vm.adminUsername}, SSH key only; ${vm.publicIp ? 'public IP' : 'no public IP'}${vm.systemAssignedIdentity ? '; system-assigned managed identity' : ''}`,
    `cloud-init: Node 20 + Wicket ${bp.wicket.ref ?? '<WICKET_REF>'} as system user wicket; ${vm.runs}`,
    ...vm.notes,
  ];
}

export function plannedResources(bp: Blueprint): PlannedResource[] {
  const ids = blueprintIds(bp);
  const n = bp.names;
  const r = bp.relay;
  const a = bp.aiCorp;
  const h = bp.healthCorp;
  return [
    { group: 'relay', kind: 'resource group', name: r.group, id: ids.relay.group, details: [bp.location] },
    { group: 'relay', kind: 'network security group', name: n.relay.nsg, id: ids.relay.nsg, details: r.nsgRules.map(ruleLine) },
    { group: 'relay', kind: 'virtual network', name: r.vnet.name, id: ids.relay.vnet, details: [r.vnet.addressSpace, ...subnetLines(r.vnet, n.relay.nsg)] },
    { group: 'relay', kind: 'public IP address', name: n.relay.publicIp, id: ids.relay.publicIp, details: ['Standard SKU, static IPv4'] },
    { group: 'relay', kind: 'network interface', name: n.relay.nic, id: ids.relay.nic, details: [`subnet ${n.relay.subnet}, public IP ${n.relay.publicIp}`] },
    { group: 'relay', kind: 'virtual machine', name: r.vm.name, id: ids.relay.vm, details: vmLines(r.vm, bp) },

    { group: 'ai-corp', kind: 'resource group', name: a.group, id: ids.aiCorp.group, details: [bp.location] },
    { group: 'ai-corp', kind: 'network security group', name: n.aiCorp.nsg, id: ids.aiCorp.nsg, details: a.nsgRules.map(ruleLine) },
    { group: 'ai-corp', kind: 'virtual network', name: a.vnet.name, id: ids.aiCorp.vnet, details: [a.vnet.addressSpace, ...subnetLines(a.vnet, n.aiCorp.nsg)] },
    {
      group: 'ai-corp',
      kind: 'Azure OpenAI account',
      name: a.account.name,
      id: ids.aiCorp.account,
      details: [
        `kind ${a.account.kind}, sku ${a.account.sku}, custom subdomain ${a.account.customSubDomainName}`,
        'public network access Disabled; network ACLs default Deny; local (key) auth disabled',
      ],
    },
    {
      group: 'ai-corp',
      kind: 'model deployment',
      name: a.deployment.name,
      id: ids.aiCorp.deployment,
      details: [`${a.deployment.model.name} version ${a.deployment.model.version}, sku ${a.deployment.sku}, capacity ${a.deployment.capacity}K TPM`],
    },
    { group: 'ai-corp', kind: 'private DNS zone', name: n.aiCorp.dnsZone, id: ids.aiCorp.dnsZone, details: ['global'] },
    { group: 'ai-corp', kind: 'private DNS zone link', name: n.aiCorp.dnsLink, id: ids.aiCorp.dnsLink, details: [`to ${a.vnet.name}, auto-registration off`] },
    {
      group: 'ai-corp',
      kind: 'private endpoint',
      name: n.aiCorp.privateEndpoint,
      id: ids.aiCorp.privateEndpoint,
      details: [`subnet ${n.aiCorp.endpointSubnet}, to account ${a.account.name}, group id account`],
    },
    { group: 'ai-corp', kind: 'private DNS zone group', name: n.aiCorp.zoneGroup, id: ids.aiCorp.zoneGroup, details: [`on ${n.aiCorp.privateEndpoint}, zone ${n.aiCorp.dnsZone}`] },
    { group: 'ai-corp', kind: 'network interface', name: n.aiCorp.nic, id: ids.aiCorp.nic, details: [`subnet ${n.aiCorp.appSubnet}, no public IP`] },
    { group: 'ai-corp', kind: 'virtual machine', name: a.vm.name, id: ids.aiCorp.vm, details: vmLines(a.vm, bp) },
    {
      group: 'ai-corp',
      kind: 'role assignment',
      name: ids.aiCorp.roleAssignment.split('/').pop() ?? '',
      id: ids.aiCorp.roleAssignment,
      details: [`Cognitive Services OpenAI User (${OPENAI_USER_ROLE_ID}) for ${a.vm.name}'s identity on ${a.account.name}`],
    },

    { group: 'health-corp', kind: 'resource group', name: h.group, id: ids.healthCorp.group, details: [bp.location] },
    { group: 'health-corp', kind: 'network security group', name: n.healthCorp.nsg, id: ids.healthCorp.nsg, details: h.nsgRules.map(ruleLine) },
    { group: 'health-corp', kind: 'virtual network', name: h.vnet.name, id: ids.healthCorp.vnet, details: [h.vnet.addressSpace, ...subnetLines(h.vnet, n.healthCorp.nsg)] },
    { group: 'health-corp', kind: 'network interface', name: n.healthCorp.nic, id: ids.healthCorp.nic, details: [`subnet ${n.healthCorp.subnet}, no public IP`] },
    { group: 'health-corp', kind: 'virtual machine', name: h.vm.name, id: ids.healthCorp.vm, details: vmLines(h.vm, bp) },
  ];
}

/** `namesExact` is false when `up` would name things after a principal that plan cannot know offline. */
export function formatPlan(bp: Blueprint, namesExact: boolean): string {
  const lines: string[] = [
    'Wicket on Azure: plan (nothing was created; no Azure call was made)',
    `  subscription  ${bp.subscriptionId}`,
    `  location      ${bp.location}`,
    `  name hash     ${bp.hash}, from ${describeNameSource(bp.nameSource)}`,
    `  wicket        ${bp.wicket.repo ?? '<WICKET_REPO unset: up will refuse>'} at ${bp.wicket.ref ?? '<WICKET_REF unset: up will refuse>'}`,
  ];
  if (!namesExact) {
    lines.push('  note          up names resources after the signed-in principal; set AZURE_PRINCIPAL_ID to your object id');
    lines.push('                (az ad signed-in-user show --query id -o tsv) to see the exact names here');
  }
  const resources = plannedResources(bp);
  for (const group of ['relay', 'ai-corp', 'health-corp'] as const) {
    lines.push('', `${group}:`);
    for (const r of resources.filter((x) => x.group === group)) {
      lines.push(`  ${r.kind.padEnd(24)} ${r.name}`);
      for (const d of r.details) lines.push(`  ${''.padEnd(24)}   ${d}`);
    }
  }
  lines.push(
    '',
    'then: mint one-use 60-minute enrollment tickets on the relay VM (run-command), give each agent VM its',
    'ticket in cloud-init, save the relay admin ticket (mode 0600), and print the demo client answer.',
    `${resources.length} resources in 3 resource groups.`,
  );
  return lines.join('\n') + '\n';
}
