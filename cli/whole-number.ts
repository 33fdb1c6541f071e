import { usageError } from './cli-errors.js';

/**
 * A count typed on the command line (`--usage-count`, `--max-connections`): digits only, from 1
 * to `max`. Anything else is a usage error naming the flag; the text is never echoed.
 */
export function parseWholeNumber(text: string, flag: string, max: number): number {
  const n = /^\d{1,7}$/.test(text.trim()) ? Number(text.trim()) : NaN;
  if (!Number.isSafeInteger(n) || n < 1 || n > max) throw usageError(`${flag} must be a whole number from 1 to ${max}`);
  return n;
}
