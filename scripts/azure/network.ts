import type { NetworkInterface, NetworkSecurityGroup, PublicIPAddress, VirtualNetwork } from '@azure/arm-network';
import type { ResourceGroup } from '@azure/arm-resources';
import type { ArmClients } from './arm-clients.js';
import type { NsgRule, VnetSpec } from './blueprint.js';
import { ensureResource } from './ensure.js';
import type { Progress, ProgressGroup } from './progress.js';

// The building blocks every group shares: resource group, NSG, VNet with subnets, public IP, NIC.

export interface GroupContext {
  arm: ArmClients;
  progress: Progress;
  progressGroup: ProgressGroup;
  location: string;
  resourceGroup: string;
  tags: Record<string, string>;
}

export async function ensureResourceGroup(ctx: GroupContext): Promise<ResourceGroup> {
  const { arm, resourceGroup: name } = ctx;
  const { resource } = await ensureResource(ctx.progress, ctx.progressGroup, { kind: 'resource group', name, group: name }, {
    get: () => arm.resources.resourceGroups.get(name),
    create: () => arm.resources.resourceGroups.createOrUpdate(name, { location: ctx.location, tags: ctx.tags }),
    provisioningState: (g) => g.properties?.provisioningState,
  });
  return resource;
}

export async function ensureNsg(ctx: GroupContext, name: string, rules: NsgRule[]): Promise<NetworkSecurityGroup> {
  const { arm, resourceGroup } = ctx;
  const { resource } = await ensureResource(ctx.progress, ctx.progressGroup, { kind: 'network security group', name, group: resourceGroup }, {
    get: () => arm.network.networkSecurityGroups.get(resourceGroup, name),
    create: () =>
      arm.network.networkSecurityGroups.beginCreateOrUpdateAndWait(
        resourceGroup,
        name,
        {
          location: ctx.location,
          tags: ctx.tags,
          securityRules: rules.map((r) => ({
            name: r.name,
            priority: r.priority,
            direction: r.direction,
            access: r.access,
            protocol: r.protocol,
            sourceAddressPrefix: r.sourceAddressPrefix,
            sourcePortRange: '*',
            destinationAddressPrefix: '*',
            destinationPortRange: r.destinationPortRange,
            description: r.description,
          })),
        },
        arm.lro,
      ),
    provisioningState: (n) => n.provisioningState,
  });
  return resource;
}

export async function ensureVnet(ctx: GroupContext, spec: VnetSpec, nsgId: string): Promise<VirtualNetwork> {
  const { arm, resourceGroup } = ctx;
  const { resource } = await ensureResource(ctx.progress, ctx.progressGroup, { kind: 'virtual network', name: spec.name, group: resourceGroup }, {
    get: () => arm.network.virtualNetworks.get(resourceGroup, spec.name),
    create: () =>
      arm.network.virtualNetworks.beginCreateOrUpdateAndWait(
        resourceGroup,
        spec.name,
        {
          location: ctx.location,
          tags: ctx.tags,
          addressSpace: { addressPrefixes: [spec.addressSpace] },
          subnets: spec.subnets.map((s) =>
            s.privateEndpoints
              ? { name: s.name, addressPrefix: s.prefix, privateEndpointNetworkPolicies: 'Disabled' }
              : {
                  name: s.name,
                  addressPrefix: s.prefix,
                  networkSecurityGroup: { id: nsgId },
                  // VMs without a public IP still need to dial out (relay, package mirrors, git).
                  // Azure is retiring implicit outbound for new subnets, so ask for it explicitly;
                  // production would attach a NAT gateway here instead.
                  defaultOutboundAccess: true,
                },
          ),
        },
        arm.lro,
      ),
    provisioningState: (v) => v.provisioningState,
  });
  return resource;
}

export async function ensurePublicIp(ctx: GroupContext, name: string): Promise<PublicIPAddress> {
  const { arm, resourceGroup } = ctx;
  const { resource } = await ensureResource(ctx.progress, ctx.progressGroup, { kind: 'public IP address', name, group: resourceGroup }, {
    get: () => arm.network.publicIPAddresses.get(resourceGroup, name),
    create: () =>
      arm.network.publicIPAddresses.beginCreateOrUpdateAndWait(
        resourceGroup,
        name,
        {
          location: ctx.location,
          tags: ctx.tags,
          sku: { name: 'Standard', tier: 'Regional' },
          publicIPAllocationMethod: 'Static',
          publicIPAddressVersion: 'IPv4',
        },
        arm.lro,
      ),
    provisioningState: (p) => p.provisioningState,
  });
  return resource;
}

export async function ensureNic(ctx: GroupContext, name: string, subnetId: string, publicIpId: string | undefined): Promise<NetworkInterface> {
  const { arm, resourceGroup } = ctx;
  const { resource } = await ensureResource(ctx.progress, ctx.progressGroup, { kind: 'network interface', name, group: resourceGroup }, {
    get: () => arm.network.networkInterfaces.get(resourceGroup, name),
    create: () =>
      arm.network.networkInterfaces.beginCreateOrUpdateAndWait(
        resourceGroup,
        name,
        {
          location: ctx.location,
          tags: ctx.tags,
          ipConfigurations: [
            {
              name: 'ipconfig1',
              primary: true,
              subnet: { id: subnetId },
              privateIPAllocationMethod: 'Dynamic',
              ...(publicIpId === undefined ? {} : { publicIPAddress: { id: publicIpId } }),
            },
          ],
        },
        arm.lro,
      ),
    provisioningState: (n) => n.provisioningState,
  });
  return resource;
}
