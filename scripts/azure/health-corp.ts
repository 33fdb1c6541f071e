import type { Secret } from '../../protocol/secret.js';
import { healthCorpCloudConfig } from './cloud-init.js';
import { groupContext, type DeploymentContext } from './deployment-context.js';
import { ensureNic, ensureNsg, ensureResourceGroup, ensureVnet } from './network.js';
import { runOnVm } from './run-command.js';
import { renderTemplate } from './templates.js';
import { ensureVm } from './vm.js';

// Health Corp: a VNet nobody can connect into and a VM without public IP whose inlet puts AI
// Corp's model on 127.0.0.1:8443, where its app (the demo client) asks its question.

export async function provisionHealthCorpNetwork(d: DeploymentContext): Promise<void> {
  const spec = d.bp.healthCorp;
  const ctx = groupContext(d, 'health-corp', spec.group);
  await ensureResourceGroup(ctx);
  await ensureNsg(ctx, d.bp.names.healthCorp.nsg, spec.nsgRules);
  await ensureVnet(ctx, spec.vnet, d.ids.healthCorp.nsg);
  await ensureNic(ctx, d.bp.names.healthCorp.nic, d.ids.healthCorp.subnet, undefined);
}

export async function provisionHealthCorpVm(d: DeploymentContext, mintInletTicket: () => Promise<Secret<string>>): Promise<void> {
  const spec = d.bp.healthCorp;
  const ctx = groupContext(d, 'health-corp', spec.group);
  await ensureVm(ctx, {
    spec: spec.vm,
    nicId: d.ids.healthCorp.nic,
    sshPublicKey: d.sshPublicKey,
    cloudConfig: async () => healthCorpCloudConfig(d.source, await mintInletTicket(), d.bp.aiCorp.deployment.name),
  });
}

/** Waits on the VM for the demo client's answer and returns it (it is not a secret). */
export async function readDemoAnswer(d: DeploymentContext): Promise<string> {
  const target = { group: d.bp.healthCorp.group, vm: d.bp.healthCorp.vm.name };
  return runOnVm(d.arm, d.progress, 'health-corp', target, "reading the demo client's answer", renderTemplate('read-demo-answer.sh'));
}
