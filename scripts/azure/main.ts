import { asWicketError } from '../../protocol/errors.js';
import { buildBlueprint } from './blueprint.js';
import { principalFromToken, type NameSource } from './naming.js';
import { formatPlan } from './plan.js';
import { stderrProgress } from './progress.js';
import { loadSettings, processSources, requireSubscription, type AzureSettings } from './settings.js';

// Entry point behind scripts/run.sh: `up` (default), `plan`, `cleanup`. Errors print their stable
// WICKET_ERR_* code and message on stderr and exit 1. `up` and `cleanup` are imported on demand:
// the Azure SDKs take seconds to load, and `plan` needs none of them.

/** What `plan` can know without a network call; `exact` says whether `up` will use the same names. */
export function offlineNameSource(settings: AzureSettings, subscriptionId: string): { source: NameSource; exact: boolean } {
  if (settings.staticToken !== undefined) {
    const oid = principalFromToken(settings.staticToken.reveal());
    return { source: oid ? { kind: 'principal', objectId: oid } : { kind: 'subscription', subscriptionId }, exact: true };
  }
  if (settings.principalHint !== undefined) return { source: { kind: 'principal', objectId: settings.principalHint }, exact: true };
  return { source: { kind: 'subscription', subscriptionId }, exact: false };
}

function plan(settings: AzureSettings): void {
  const subscriptionId = requireSubscription(settings);
  const { source, exact } = offlineNameSource(settings, subscriptionId);
  process.stdout.write(formatPlan(buildBlueprint(settings, subscriptionId, source), exact));
}

async function main(argv: string[]): Promise<number> {
  const command = argv[0] ?? 'up';
  const settings = loadSettings(processSources());
  const options = { progress: stderrProgress(), out: process.stdout };
  switch (command) {
    case 'plan':
      plan(settings);
      return 0;
    case 'up':
      await (await import('./up.js')).up(settings, options);
      return 0;
    case 'cleanup':
      await (await import('./cleanup.js')).cleanup(settings, options);
      return 0;
    default:
      process.stderr.write(`unknown command '${command}': use up, plan or cleanup\n`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`${asWicketError(err).message}\n`);
    process.exitCode = 1;
  },
);
