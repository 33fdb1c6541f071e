import type { ArmClients } from './arm-clients.js';
import { blueprintIds, type Blueprint, type BlueprintIds } from './blueprint.js';
import type { WicketSource } from './cloud-init.js';
import type { GroupContext } from './network.js';
import type { Progress, ProgressGroup } from './progress.js';

// What every provisioning step needs: the SDK clients, the blueprint and its ids, where the VMs
// get Wicket from, the SSH key, and one queue for run-commands on the relay VM (Azure runs one
// run-command per VM at a time and answers 409 Conflict to a second).

export interface DeploymentContext {
  arm: ArmClients;
  progress: Progress;
  bp: Blueprint;
  ids: BlueprintIds;
  source: WicketSource;
  /** The VMs' SSH public key, made on first use (a generated one costs a fraction of a second). */
  sshPublicKey: () => string;
  /** Runs `task` after every task queued before it on the relay VM has settled. */
  onRelayVm: <T>(task: () => Promise<T>) => Promise<T>;
}

export function serialQueue(): <T>(task: () => Promise<T>) => Promise<T> {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(task: () => Promise<T>): Promise<T> => {
    const run = tail.then(task, task);
    tail = run.catch(() => undefined);
    return run;
  };
}

export function deploymentContext(arm: ArmClients, progress: Progress, bp: Blueprint, source: WicketSource, sshPublicKey: () => string): DeploymentContext {
  let key: string | undefined;
  return { arm, progress, bp, ids: blueprintIds(bp), source, sshPublicKey: () => (key ??= sshPublicKey()), onRelayVm: serialQueue() };
}

export function groupContext(d: DeploymentContext, progressGroup: ProgressGroup, resourceGroup: string): GroupContext {
  return {
    arm: d.arm,
    progress: d.progress,
    progressGroup,
    location: d.bp.location,
    resourceGroup,
    tags: { project: 'wicket', 'wicket-names': d.bp.hash, 'wicket-role': progressGroup },
  };
}
