import { rmSync } from 'node:fs';
import { azureOperationError, isNotFound } from './arm-errors.js';
import { createArmClients } from './arm-clients.js';
import { buildBlueprint } from './blueprint.js';
import { adminTicketPath } from './tickets.js';
import { resolveNames, type RunOptions } from './up.js';
import type { AzureSettings } from './settings.js';

// `./scripts/run.sh cleanup`: delete the three resource groups (in parallel), then purge the
// soft-deleted Azure OpenAI account: Azure keeps a deleted account's name reserved for 48 hours,
// and without the purge the next `up` would fail with FlagMustBeSetForRestore. Missing groups are
// fine: cleanup can be re-run, or run after a partial `up`.

export async function cleanup(settings: AzureSettings, options: RunOptions): Promise<void> {
  const { progress } = options;
  const { subscriptionId, credential, nameSource } = await resolveNames(settings, progress);
  const bp = buildBlueprint(settings, subscriptionId, nameSource);
  const arm = createArmClients(settings, credential, subscriptionId, options.clientOptions);

  const groups = [bp.relay.group, bp.aiCorp.group, bp.healthCorp.group];
  const results = await Promise.allSettled(
    groups.map(async (group) => {
      progress.say('cleanup', `deleting resource group ${group}`);
      try {
        await arm.resources.resourceGroups.beginDeleteAndWait(group, arm.lro);
        progress.say('cleanup', `deleted  resource group ${group}`);
      } catch (err) {
        if (isNotFound(err)) {
          progress.say('cleanup', `absent   resource group ${group}`);
          return;
        }
        throw azureOperationError('deleting', { kind: 'resource group', name: group, group }, err);
      }
    }),
  );
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;

  const account = bp.aiCorp.account.name;
  try {
    await arm.cognitive.deletedAccounts.beginPurgeAndWait(bp.location, bp.aiCorp.group, account, arm.lro);
    progress.say('cleanup', `purged   soft-deleted Azure OpenAI account ${account}`);
  } catch (err) {
    if (!isNotFound(err)) throw azureOperationError('purging the soft-deleted', { kind: 'Azure OpenAI account', name: account, group: bp.aiCorp.group }, err);
  }
  // The admin ticket belongs to a relay that no longer exists.
  rmSync(adminTicketPath(settings.stateDir, bp.hash), { force: true });
  progress.say('cleanup', 'done');
}
