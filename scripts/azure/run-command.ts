import type { RunCommandResult } from '@azure/arm-compute';
import { wicketError } from '../../protocol/errors.js';
import { azureOperationError } from './arm-errors.js';
import type { ArmClients } from './arm-clients.js';
import type { Progress, ProgressGroup } from './progress.js';

// The VM run-command API ("action" run command, RunShellScript): `up` reaches into the VMs without
// any inbound port. Azure reports a Linux script's outcome as one status whose message is
//   "Enable succeeded: \n[stdout]\n<stdout>\n[stderr]\n<stderr>"
// and says "succeeded" even when the script exits non-zero, so every script we send ends by
// printing its own exit status on a marker line. Azure keeps only the last 4,096 bytes of each
// stream: scripts print their one result last.

export const EXIT_MARKER = 'wicket-exit-status=';

export interface VmTarget {
  group: string;
  vm: string;
}

export interface ScriptOutput {
  stdout: string;
  stderr: string;
  exitStatus: number | undefined;
}

/** Runs `body` under `set -euo pipefail` in a subshell, then prints the marker with its status. */
export function wrapScript(body: string): string[] {
  return ['#!/bin/bash', '(', 'set -euo pipefail', ...body.split('\n'), ')', `echo "${EXIT_MARKER}$?"`];
}

const SECTIONS = /\[stdout\]\n([\s\S]*?)\n?\[stderr\]\n?([\s\S]*)$/;

export function parseRunCommandResult(result: RunCommandResult): ScriptOutput {
  const statuses = result.value ?? [];
  const combined = statuses.find((s) => typeof s.message === 'string' && s.message.includes('[stdout]'));
  let stdout = '';
  let stderr = '';
  if (combined?.message !== undefined) {
    const m = SECTIONS.exec(combined.message);
    stdout = m?.[1] ?? '';
    stderr = (m?.[2] ?? '').replace(/\n$/, '');
  } else {
    // Windows-style answer: one status per stream.
    stdout = statuses.find((s) => s.code?.includes('StdOut'))?.message ?? '';
    stderr = statuses.find((s) => s.code?.includes('StdErr'))?.message ?? '';
  }
  let exitStatus: number | undefined;
  const kept: string[] = [];
  for (const line of stdout.split('\n')) {
    if (line.startsWith(EXIT_MARKER)) exitStatus = Number(line.slice(EXIT_MARKER.length));
    else kept.push(line);
  }
  if (exitStatus !== undefined && !Number.isInteger(exitStatus)) exitStatus = undefined;
  return { stdout: kept.join('\n').replace(/\n+$/, ''), stderr, exitStatus };
}

/**
 * Runs a script on a VM and returns its stdout. `purpose` names the step in errors ("minting the
 * outlet's enrollment ticket"). stdout is never logged here: it may hold a ticket.
 */
export async function runOnVm(arm: ArmClients, progress: Progress, group: ProgressGroup, target: VmTarget, purpose: string, body: string): Promise<string> {
  progress.say(group, `run-command on ${target.vm}: ${purpose}`);
  let result: RunCommandResult;
  try {
    result = await arm.compute.virtualMachines.runCommand(target.group, target.vm, { commandId: 'RunShellScript', script: wrapScript(body) }, arm.lro);
  } catch (err) {
    throw azureOperationError(`run-command (${purpose}) on`, { kind: 'virtual machine', name: target.vm, group: target.group }, err);
  }
  const out = parseRunCommandResult(result);
  if (out.exitStatus !== 0) {
    const status = out.exitStatus === undefined ? 'without reporting an exit status' : `with exit status ${out.exitStatus}`;
    const tail = out.stderr.split('\n').filter((l) => l.trim() !== '').slice(-8).join(' | ');
    throw wicketError(
      'WICKET_ERR_AZURE_OPERATION',
      `${purpose} on virtual machine '${target.vm}' in resource group '${target.group}' failed ${status}${tail ? `: ${tail}` : ''}`,
    );
  }
  return out.stdout;
}
