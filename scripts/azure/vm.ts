import type { VirtualMachine } from '@azure/arm-compute';
import type { Secret } from '../../protocol/secret.js';
import type { VmSpec } from './blueprint.js';
import { ensureResource } from './ensure.js';
import type { GroupContext } from './network.js';

// Linux VMs. The cloud-init document (customData) is produced only when a VM is actually created,
// because it carries a one-use enrollment ticket minted for that VM: a re-run that finds the VM
// Succeeded mints nothing. A VM found in any other state (a failed or interrupted earlier run) is
// deleted and created again with a fresh ticket, since its first boot may have spent or lost the
// old one and cloud-init never runs twice.

export interface VmRequest {
  spec: VmSpec;
  nicId: string;
  sshPublicKey: () => string;
  /** The rendered `#cloud-config` document; called only if the VM must be created. */
  cloudConfig: () => Promise<Secret<string>>;
}

export function vmParameters(ctx: GroupContext, req: VmRequest, cloudConfig: Secret<string>): VirtualMachine {
  const { spec } = req;
  return {
    location: ctx.location,
    tags: ctx.tags,
    ...(spec.systemAssignedIdentity ? { identity: { type: 'SystemAssigned' } } : {}),
    hardwareProfile: { vmSize: spec.size },
    storageProfile: {
      imageReference: { ...spec.image },
      osDisk: {
        createOption: 'FromImage',
        deleteOption: 'Delete',
        diskSizeGB: spec.osDiskGb,
        managedDisk: { storageAccountType: 'StandardSSD_LRS' },
      },
    },
    osProfile: {
      computerName: spec.name,
      adminUsername: spec.adminUsername,
      customData: Buffer.from(cloudConfig.reveal(), 'utf8').toString('base64'),
      linuxConfiguration: {
        disablePasswordAuthentication: true,
        provisionVMAgent: true,
        ssh: { publicKeys: [{ path: `/home/${spec.adminUsername}/.ssh/authorized_keys`, keyData: req.sshPublicKey() }] },
      },
    },
    networkProfile: { networkInterfaces: [{ id: req.nicId, primary: true }] },
    // Managed boot diagnostics: the serial log shows cloud-init's progress without SSH.
    diagnosticsProfile: { bootDiagnostics: { enabled: true } },
  };
}

export interface EnsuredVm {
  vm: VirtualMachine;
  created: boolean;
}

export async function ensureVm(ctx: GroupContext, req: VmRequest): Promise<EnsuredVm> {
  const { arm, resourceGroup } = ctx;
  const name = req.spec.name;
  const { resource, created } = await ensureResource(ctx.progress, ctx.progressGroup, { kind: 'virtual machine', name, group: resourceGroup }, {
    get: () => arm.compute.virtualMachines.get(resourceGroup, name),
    create: async () => {
      const cloudConfig = await req.cloudConfig();
      return arm.compute.virtualMachines.createOrUpdate(resourceGroup, name, vmParameters(ctx, req, cloudConfig), arm.lro);
    },
    provisioningState: (vm) => vm.provisioningState,
    beforeRecreate: async () => {
      ctx.progress.say(ctx.progressGroup, `deleting virtual machine ${name} to start it again with a fresh ticket`);
      await arm.compute.virtualMachines.delete(resourceGroup, name, arm.lro);
    },
  });
  return { vm: resource, created };
}
