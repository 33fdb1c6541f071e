import type { Command } from 'commander';
import { defaultHome, Vault } from '../agent/vault.js';
import { createLogger, type Logger } from './logger.js';

// What every `agent` subcommand reads from the global options: the agent home and --insecure.
// Shared by the enrollment, admin and node command groups.

export interface AgentGlobals {
  /** --home, else $WICKET_HOME, else ~/.wicket. */
  home: string;
  /** --insecure: allow plain ws:// to a non-loopback relay. */
  insecure: boolean;
}

export function agentGlobals(command: Command): AgentGlobals {
  const o = command.optsWithGlobals<{ home?: string; insecure?: boolean }>();
  return { home: o.home !== undefined && o.home !== '' ? o.home : defaultHome(), insecure: o.insecure === true };
}

export function openVault(command: Command): Vault {
  return Vault.open(agentGlobals(command).home);
}

/**
 * Logger for one-shot commands: warnings and errors only (stdout stays for the command's output),
 * unless --log-level or WICKET_LOG_LEVEL says otherwise.
 */
export function commandLogger(): Logger {
  return createLogger('agent', { defaultLevel: 'warn' });
}

/** Prints `value` as one JSON line (for --json). */
export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value) + '\n');
}
