import { wicketError } from '../../protocol/errors.js';
import { RELAY_PORT } from './blueprint.js';
import { relayCloudConfig } from './cloud-init.js';
import { groupContext, type DeploymentContext } from './deployment-context.js';
import { ensureNic, ensureNsg, ensurePublicIp, ensureResourceGroup, ensureVnet } from './network.js';
import type { VmTarget } from './run-command.js';
import { ensureVm } from './vm.js';

// The relay: the only thing with a public address. Its NSG admits 443 (and 22 from ADMIN_CIDR
// when set); its VM runs `relay start` as the wicket system user, holding the project authority.

export interface RelayOutcome {
  target: VmTarget;
  publicIp: string;
  publicUrl: string;
}

export async function provisionRelay(d: DeploymentContext): Promise<RelayOutcome> {
  const spec = d.bp.relay;
  const names = d.bp.names.relay;
  const ctx = groupContext(d, 'relay', spec.group);
  await ensureResourceGroup(ctx);
  await ensureNsg(ctx, names.nsg, spec.nsgRules);
  await ensureVnet(ctx, spec.vnet, d.ids.relay.nsg);
  const ip = await ensurePublicIp(ctx, names.publicIp);
  const publicIp = ip.ipAddress;
  if (typeof publicIp !== 'string' || !/^\d{1,3}(\.\d{1,3}){3}$/.test(publicIp)) {
    throw wicketError('WICKET_ERR_AZURE_OPERATION', `public IP address '${names.publicIp}' in resource group '${spec.group}' has no IPv4 address after creation`);
  }
  const publicUrl = `wss://${publicIp}:${RELAY_PORT}`;
  await ensureNic(ctx, names.nic, d.ids.relay.subnet, d.ids.relay.publicIp);
  await ensureVm(ctx, {
    spec: spec.vm,
    nicId: d.ids.relay.nic,
    sshPublicKey: d.sshPublicKey,
    cloudConfig: async () => relayCloudConfig(d.source, publicUrl),
  });
  d.progress.say('relay', `relay address ${publicUrl}`);
  return { target: { group: spec.group, vm: spec.vm.name }, publicIp, publicUrl };
}
