import { TICKET_DEFAULT_USAGE_COUNT } from '../protocol/limits.js';
import { isSortableAttributeName, SORTABLE_ATTRIBUTE_NAME_RULE } from '../protocol/relay-names.js';
import { AUTHORITY_KEY_OPTION } from '../relay/authority/authority-key.js';
import { parseStoreLocation, STORE_OPTION, type StoreLocation } from '../relay/authority/store-location.js';
import { defaultDataDir } from '../relay/data-dir.js';
import { usageError } from './cli-errors.js';

// Argument parsing shared by the relay commands. Values are checked again by the authority;
// this layer only turns text into values and gives a usage error (exit 2) for what is not.

export const DATA_OPTION = ['--data <dir>', 'relay data folder (default $WICKET_RELAY_DATA or ~/.wicket-relay)'] as const;

export const STORE_OPTION_SPEC = [
  `${STORE_OPTION} <url>`,
  'authority store: sqlite (in the data folder, the default) or postgres://user@host:port/database, shared by several relays (default $WICKET_RELAY_STORE)',
] as const;
export const AUTHORITY_KEY_OPTION_SPEC = [`${AUTHORITY_KEY_OPTION} <file>`, 'the project authority key (0600), shared by relays on one store (default DATA/authority.key)'] as const;

/** The flags every command that opens the authority store takes. */
export interface StoreFlags {
  store?: string;
  authorityKey?: string;
}

/** --store, else $WICKET_RELAY_STORE (which keeps a password off the command line), else SQLite. */
export function storeLocationOf(flags: StoreFlags, env: NodeJS.ProcessEnv = process.env): StoreLocation {
  const fromEnv = env.WICKET_RELAY_STORE;
  return parseStoreLocation(flags.store ?? (fromEnv === undefined || fromEnv === '' ? undefined : fromEnv));
}

export function authorityKeyFileOf(flags: StoreFlags): string | undefined {
  if (flags.authorityKey !== undefined && flags.authorityKey.trim() === '') throw usageError(`${AUTHORITY_KEY_OPTION} needs a file`);
  return flags.authorityKey;
}

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
    if (!isSortableAttributeName(key)) throw usageError(`--attribute: a key must be ${SORTABLE_ATTRIBUTE_NAME_RULE}`);
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
