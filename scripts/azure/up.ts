import { isWicketError } from '../../protocol/errors.js';
import { createArmClients, type ArmClientOptions } from './arm-clients.js';
import { buildBlueprint } from './blueprint.js';
import { provisionAiCorpNetwork, provisionAiCorpVm } from './ai-corp.js';
import { armCredential, signedInPrincipal } from './credentials.js';
import { deploymentContext } from './deployment-context.js';
import { provisionHealthCorpNetwork, provisionHealthCorpVm, readDemoAnswer } from './health-corp.js';
import type { NameSource } from './naming.js';
import type { Progress } from './progress.js';
import { provisionRelay } from './relay.js';
import { requireSubscription, requireWicketSource, type AzureSettings } from './settings.js';
import { throwawaySshPublicKey } from './ssh-key.js';
import { adminTicketPath, mintTicket, saveAdminTicket } from './tickets.js';

// `./scripts/run.sh up`: relay first (the tickets come from it), then AI Corp and Health Corp in
// parallel; each agent VM is created with a ticket minted for it just before. Every step GETs
// before it PUTs, so a re-run after a failure picks up where the last one stopped.

export interface RunOptions {
  progress: Progress;
  /** Where the demo answer goes (stdout). */
  out: NodeJS.WritableStream;
  clientOptions?: ArmClientOptions;
}

/** Signs in (one token request) and names things after the principal, or the subscription. */
export async function resolveNames(settings: AzureSettings, progress: Progress) {
  const subscriptionId = requireSubscription(settings);
  if (settings.staticTokenIgnored) {
    progress.say('up', 'AZURE_ACCESS_TOKEN is ignored: a static token is used only with AZURE_ARM_ENDPOINT');
  }
  const credential = armCredential(settings);
  const oid = await signedInPrincipal(credential, settings.armScope);
  const nameSource: NameSource = oid !== undefined ? { kind: 'principal', objectId: oid } : { kind: 'subscription', subscriptionId };
  return { subscriptionId, credential, nameSource };
}

/** Waits for all, then throws the first failure (so no branch is abandoned half-way). */
async function allOrFirstError(tasks: Array<Promise<unknown>>, progress: Progress): Promise<void> {
  const results = await Promise.allSettled(tasks);
  const failures = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
  for (const extra of failures.slice(1)) {
    progress.say('up', `also failed: ${isWicketError(extra) ? extra.message : String(extra)}`);
  }
  if (failures.length > 0) throw failures[0];
}

export async function up(settings: AzureSettings, options: RunOptions): Promise<void> {
  const { progress } = options;
  const source = requireWicketSource(settings);
  const { subscriptionId, credential, nameSource } = await resolveNames(settings, progress);
  const bp = buildBlueprint(settings, subscriptionId, nameSource);
  progress.say('up', `subscription ${subscriptionId}, location ${bp.location}, names wicket-${bp.hash}-*`);
  const arm = createArmClients(settings, credential, subscriptionId, options.clientOptions);
  const d = deploymentContext(arm, progress, bp, source, () => settings.adminSshPublicKey ?? throwawaySshPublicKey());

  const relay = await provisionRelay(d);
  const relayHost = relay.publicIp;
  const adminPath = adminTicketPath(settings.stateDir, bp.hash);

  await allOrFirstError(
    [
      d.onRelayVm(() => saveAdminTicket(arm, progress, relay.target, relayHost, adminPath)),
      (async () => {
        const net = await provisionAiCorpNetwork(d);
        await provisionAiCorpVm(d, net, () => d.onRelayVm(() => mintTicket(arm, progress, relay.target, 'outlet', relayHost)));
      })(),
      (async () => {
        await provisionHealthCorpNetwork(d);
        await provisionHealthCorpVm(d, () => d.onRelayVm(() => mintTicket(arm, progress, relay.target, 'inlet', relayHost)));
      })(),
    ],
    progress,
  );

  progress.say('health-corp', 'waiting for the demo client (it asks "What is Ockham\'s Razor?" through Wicket)');
  const answer = await readDemoAnswer(d);
  progress.say('up', 'done. The answer from AI Corp\'s private Azure OpenAI deployment, asked from Health Corp\'s VM:');
  options.out.write(`${answer}\n`);
  progress.say('up', `relay ${relay.publicUrl}; admin ticket in ${adminPath}; remove everything with ./scripts/run.sh cleanup`);
}
