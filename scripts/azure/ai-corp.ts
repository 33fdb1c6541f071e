import type { Account, Deployment } from '@azure/arm-cognitiveservices';
import type { VirtualMachine } from '@azure/arm-compute';
import type { GenericResource } from '@azure/arm-resources';
import { wicketError } from '../../protocol/errors.js';
import type { Secret } from '../../protocol/secret.js';
import { OPENAI_USER_ROLE_ID, ROLE_ASSIGNMENT_API_VERSION, roleDefinitionId } from './blueprint.js';
import { aiCorpCloudConfig } from './cloud-init.js';
import { groupContext, type DeploymentContext } from './deployment-context.js';
import { ensureResource } from './ensure.js';
import { ensureNic, ensureNsg, ensureResourceGroup, ensureVnet, type GroupContext } from './network.js';
import { ensureVm } from './vm.js';

// AI Corp: an Azure OpenAI account nobody can reach from the internet (public network access
// Disabled, network ACLs default Deny, keys disabled), reached from its own VNet through a private
// endpoint whose name resolves via the privatelink.openai.azure.com zone. Its VM has no public IP
// and runs the outlet as an Azure OpenAI gateway. The account has no usable key: the VM's managed
// identity gets the "Cognitive Services OpenAI User" role, and the outlet adds its Entra token.

export interface AiCorpNetwork {
  /** The account's endpoint as ARM reports it, e.g. https://wicket-1a2b3c-aoai.openai.azure.com/. */
  endpoint: string;
}

async function ensureAccount(ctx: GroupContext, d: DeploymentContext): Promise<Account> {
  const { arm, resourceGroup } = ctx;
  const spec = d.bp.aiCorp.account;
  const { resource } = await ensureResource(ctx.progress, 'ai-corp', { kind: 'Azure OpenAI account', name: spec.name, group: resourceGroup }, {
    get: () => arm.cognitive.accounts.get(resourceGroup, spec.name),
    create: () =>
      arm.cognitive.accounts.beginCreateAndWait(
        resourceGroup,
        spec.name,
        {
          location: ctx.location,
          tags: ctx.tags,
          kind: spec.kind,
          sku: { name: spec.sku },
          properties: {
            customSubDomainName: spec.customSubDomainName,
            publicNetworkAccess: 'Disabled',
            networkAcls: { defaultAction: 'Deny', ipRules: [], virtualNetworkRules: [] },
            disableLocalAuth: true,
          },
        },
        arm.lro,
      ),
    provisioningState: (a) => a.properties?.provisioningState,
  });
  return resource;
}

async function ensureModelDeployment(ctx: GroupContext, d: DeploymentContext): Promise<Deployment> {
  const { arm, resourceGroup } = ctx;
  const account = d.bp.aiCorp.account.name;
  const spec = d.bp.aiCorp.deployment;
  const { resource } = await ensureResource(ctx.progress, 'ai-corp', { kind: 'model deployment', name: `${account}/${spec.name}`, group: resourceGroup }, {
    get: () => arm.cognitive.deployments.get(resourceGroup, account, spec.name),
    create: () =>
      arm.cognitive.deployments.beginCreateOrUpdateAndWait(
        resourceGroup,
        account,
        spec.name,
        { sku: { name: spec.sku, capacity: spec.capacity }, properties: { model: { ...spec.model } } },
        arm.lro,
      ),
    provisioningState: (x) => x.properties?.provisioningState,
  });
  return resource;
}

async function ensurePrivateDns(ctx: GroupContext, d: DeploymentContext): Promise<void> {
  const { arm, resourceGroup } = ctx;
  const n = d.bp.names.aiCorp;
  await ensureResource(ctx.progress, 'ai-corp', { kind: 'private DNS zone', name: n.dnsZone, group: resourceGroup }, {
    get: () => arm.privateDns.privateZones.get(resourceGroup, n.dnsZone),
    create: () => arm.privateDns.privateZones.beginCreateOrUpdateAndWait(resourceGroup, n.dnsZone, { location: 'global', tags: ctx.tags }, arm.lro),
    provisioningState: (z) => z.provisioningState,
  });
  await ensureResource(ctx.progress, 'ai-corp', { kind: 'private DNS zone link', name: n.dnsLink, group: resourceGroup }, {
    get: () => arm.privateDns.virtualNetworkLinks.get(resourceGroup, n.dnsZone, n.dnsLink),
    create: () =>
      arm.privateDns.virtualNetworkLinks.beginCreateOrUpdateAndWait(
        resourceGroup,
        n.dnsZone,
        n.dnsLink,
        { location: 'global', tags: ctx.tags, virtualNetwork: { id: d.ids.aiCorp.vnet }, registrationEnabled: false },
        arm.lro,
      ),
    provisioningState: (l) => l.provisioningState,
  });
}

async function ensurePrivateEndpoint(ctx: GroupContext, d: DeploymentContext): Promise<void> {
  const { arm, resourceGroup } = ctx;
  const n = d.bp.names.aiCorp;
  await ensureResource(ctx.progress, 'ai-corp', { kind: 'private endpoint', name: n.privateEndpoint, group: resourceGroup }, {
    get: () => arm.network.privateEndpoints.get(resourceGroup, n.privateEndpoint),
    create: () =>
      arm.network.privateEndpoints.beginCreateOrUpdateAndWait(
        resourceGroup,
        n.privateEndpoint,
        {
          location: ctx.location,
          tags: ctx.tags,
          subnet: { id: d.ids.aiCorp.endpointSubnet },
          privateLinkServiceConnections: [{ name: n.privateLinkConnection, privateLinkServiceId: d.ids.aiCorp.account, groupIds: ['account'] }],
        },
        arm.lro,
      ),
    provisioningState: (p) => p.provisioningState,
  });
  // The zone group makes Azure keep the zone's A record pointing at the endpoint's private IP.
  await ensureResource(ctx.progress, 'ai-corp', { kind: 'private DNS zone group', name: `${n.privateEndpoint}/${n.zoneGroup}`, group: resourceGroup }, {
    get: () => arm.network.privateDnsZoneGroups.get(resourceGroup, n.privateEndpoint, n.zoneGroup),
    create: () =>
      arm.network.privateDnsZoneGroups.beginCreateOrUpdateAndWait(
        resourceGroup,
        n.privateEndpoint,
        n.zoneGroup,
        { privateDnsZoneConfigs: [{ name: n.dnsZone.replaceAll('.', '-'), privateDnsZoneId: d.ids.aiCorp.dnsZone }] },
        arm.lro,
      ),
    provisioningState: (g) => g.provisioningState,
  });
}

/** Everything on AI Corp's side except the VM (which waits for its ticket). */
export async function provisionAiCorpNetwork(d: DeploymentContext): Promise<AiCorpNetwork> {
  const spec = d.bp.aiCorp;
  const ctx = groupContext(d, 'ai-corp', spec.group);
  await ensureResourceGroup(ctx);
  await ensureNsg(ctx, d.bp.names.aiCorp.nsg, spec.nsgRules);
  await ensureVnet(ctx, spec.vnet, d.ids.aiCorp.nsg);
  const account = await ensureAccount(ctx, d);
  await ensureModelDeployment(ctx, d);
  await ensurePrivateDns(ctx, d);
  await ensurePrivateEndpoint(ctx, d);
  await ensureNic(ctx, d.bp.names.aiCorp.nic, d.ids.aiCorp.appSubnet, undefined);
  const endpoint = account.properties?.endpoint;
  if (typeof endpoint !== 'string' || !endpoint.startsWith('https://')) {
    throw wicketError('WICKET_ERR_AZURE_OPERATION', `Azure OpenAI account '${spec.account.name}' in resource group '${spec.group}' reports no https endpoint`);
  }
  return { endpoint };
}

async function ensureRoleAssignment(ctx: GroupContext, d: DeploymentContext, vm: VirtualMachine): Promise<void> {
  const principalId = vm.identity?.principalId;
  const vmName = d.bp.aiCorp.vm.name;
  if (typeof principalId !== 'string' || principalId === '') {
    throw wicketError('WICKET_ERR_AZURE_OPERATION', `virtual machine '${vmName}' in resource group '${ctx.resourceGroup}' has no managed identity principal`);
  }
  const id = d.ids.aiCorp.roleAssignment;
  const resources = ctx.arm.resources.resources;
  await ensureResource(ctx.progress, 'ai-corp', { kind: 'role assignment', name: `OpenAI User for ${vmName}`, group: ctx.resourceGroup }, {
    get: () => resources.getById(id, ROLE_ASSIGNMENT_API_VERSION),
    create: () =>
      resources.beginCreateOrUpdateByIdAndWait(
        id,
        ROLE_ASSIGNMENT_API_VERSION,
        {
          properties: {
            roleDefinitionId: roleDefinitionId(d.bp.subscriptionId, OPENAI_USER_ROLE_ID),
            principalId,
            // Saying what the principal is lets Azure skip the directory lookup that fails for a
            // managed identity created seconds ago.
            principalType: 'ServicePrincipal',
          },
        },
        ctx.arm.lro,
      ),
    // A replaced VM has a new identity: the old assignment names a principal that no longer exists.
    provisioningState: (ra: GenericResource) => ((ra.properties as { principalId?: unknown } | undefined)?.principalId === principalId ? undefined : 'assigned to a replaced VM identity'),
    beforeRecreate: async () => {
      await resources.beginDeleteByIdAndWait(id, ROLE_ASSIGNMENT_API_VERSION, ctx.arm.lro);
    },
  });
}

/** The outlet VM (created with a freshly minted ticket only if missing) and its role assignment. */
export async function provisionAiCorpVm(d: DeploymentContext, net: AiCorpNetwork, mintOutletTicket: () => Promise<Secret<string>>): Promise<void> {
  const spec = d.bp.aiCorp;
  const ctx = groupContext(d, 'ai-corp', spec.group);
  const { vm } = await ensureVm(ctx, {
    spec: spec.vm,
    nicId: d.ids.aiCorp.nic,
    sshPublicKey: d.sshPublicKey,
    cloudConfig: async () => aiCorpCloudConfig(d.source, await mintOutletTicket(), { region: d.bp.location, endpoint: net.endpoint }),
  });
  await ensureRoleAssignment(ctx, d, vm);
}
