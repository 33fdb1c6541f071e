import { TICKET_DEFAULT_USAGE_COUNT } from '../protocol/limits.js';
import { defaultDataDir } from '../relay/data-dir.js';
import { usageError } from './cli-errors.js';

// Argument parsing shared by the relay commands. Values are checked again by the authority;
// this layer only turns text into values and gives a usage error (exit 2) for what is not.

export const DATA_OPTION = ['--data <dir>', 'relay data folder (default $WICKET_RELAY_DATA or ~/.wicket-relay)'] as const;

export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

export function dataDirOf(flag: string | undefined): string {
  if (flag !== undefined && flag.trim() === '') throw usageError('--data needs a folder');
  return flag ?? defaultDataDir();
}

/** `K` (meaning K=true, as in admin=true) or `K=V`. */
export function parseAttributes(specs: readonly string[]): Record<string, string> {
  const attributes: Record<string, string> = {};
  for (const spec of specs) {
    const eq = spec.indexOf('=');
    const key = eq < 0 ? spec : spec.slice(0, eq);
    if (key.length === 0 || /\s/.test(key)) throw usageError('--attribute takes K or K=V, with a non-empty key without spaces');
    if (Object.hasOwn(attributes, key)) throw usageError(`--attribute ${key} is given twice`);
    attributes[key] = eq < 0 ? 'true' : spec.slice(eq + 1);
  }
  return attributes;
}

export function parseUsageCount(text: string | undefined): number {
  if (text === undefined) return TICKET_DEFAULT_USAGE_COUNT;
  if (!/^\d{1,7}$/.test(text.trim()) || Number(text) < 1) throw usageError('--usage-count must be a whole number of at least 1');
  return Number(text);
}
