import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ArmStandIn } from '../helpers/arm-standin/index.js';
import { buildBlueprint, type Blueprint } from '../../scripts/azure/blueprint.js';
import { loadSettings } from '../../scripts/azure/settings.js';

// Runs ./scripts/run.sh as a child process (NODE_EXTRA_CA_CERTS is read at process start, so the
// real SDK in the child trusts the stand-in's CA), asynchronously so the stand-in in this process
// keeps answering.

export const RUN_SH = fileURLToPath(new URL('../../scripts/run.sh', import.meta.url));

export interface ScriptResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function runScript(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 90_000): Promise<ScriptResult> {
  return new Promise((resolve) => {
    execFile(RUN_SH, args, { env, encoding: 'utf8', timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

/** Settings every test deployment uses, on top of the stand-in's endpoint, token and subscription. */
export function demoEnv(standIn: ArmStandIn, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return standIn.env({ WICKET_REPO: 'https://git.example.invalid/wicket.git', WICKET_REF: 'v0.1.0', ...extra });
}

/** The blueprint `up` builds for this environment: its names come from the token's oid. */
export function blueprintFor(standIn: ArmStandIn, env: NodeJS.ProcessEnv): Blueprint {
  const settings = loadSettings({ env });
  const source = standIn.principalId
    ? ({ kind: 'principal', objectId: standIn.principalId } as const)
    : ({ kind: 'subscription', subscriptionId: standIn.subscriptionId } as const);
  return buildBlueprint(settings, standIn.subscriptionId, source);
}
