import { isWicketError } from '../../protocol/errors.js';
import { azureOperationError, isNotFound, type ResourceLabel } from './arm-errors.js';
import type { Progress, ProgressGroup } from './progress.js';

// Resume instead of start over: GET first; a resource that exists and is Succeeded is left alone,
// a missing one is created, one left Failed (or half-made) by an earlier run is put again (or, for
// VMs, replaced: see vm.ts). A PUT is idempotent in ARM, so re-putting a half-made resource is safe.

export interface EnsureOps<T> {
  get: () => Promise<T>;
  create: () => Promise<T>;
  /** properties.provisioningState; resources without one (role assignments) count as Succeeded. */
  provisioningState: (resource: T) => string | undefined;
  /** Called before `create` when the resource exists but is not Succeeded. */
  beforeRecreate?: (existing: T) => Promise<void>;
}

export interface EnsureResult<T> {
  resource: T;
  created: boolean;
}

export async function ensureResource<T>(progress: Progress, group: ProgressGroup, label: ResourceLabel, ops: EnsureOps<T>): Promise<EnsureResult<T>> {
  let existing: T | undefined;
  try {
    existing = await ops.get();
  } catch (err) {
    if (!isNotFound(err)) throw azureOperationError('reading', label, err);
  }
  if (existing !== undefined) {
    const state = ops.provisioningState(existing);
    if (state === undefined || state === 'Succeeded') {
      progress.say(group, `exists   ${label.kind} ${label.name}`);
      return { resource: existing, created: false };
    }
    progress.say(group, `resuming ${label.kind} ${label.name} (was ${state})`);
    if (ops.beforeRecreate) {
      try {
        await ops.beforeRecreate(existing);
      } catch (err) {
        if (isWicketError(err)) throw err;
        throw azureOperationError('replacing', label, err);
      }
    }
  } else {
    progress.say(group, `creating ${label.kind} ${label.name}`);
  }
  let resource: T;
  try {
    resource = await ops.create();
  } catch (err) {
    // A WicketError from inside `create` (a ticket that could not be minted) already says what failed.
    if (isWicketError(err)) throw err;
    throw azureOperationError('creating', label, err);
  }
  progress.say(group, `created  ${label.kind} ${label.name}`);
  return { resource, created: true };
}
