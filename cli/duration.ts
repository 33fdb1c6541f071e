import { wicketError } from '../protocol/errors.js';

// Durations on the command line: `30s`, `60m`, `2h`, `1d`, `500ms`, or a sum like `1h30m`.
// A bare number is refused: "60" could mean seconds or minutes, and a ticket that lives 60 ms
// or 60 days by mistake is worse than an error.

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const WHOLE = /^(?:\d{1,9}(?:ms|s|m|h|d))+$/;
const PART = /(\d{1,9})(ms|s|m|h|d)/g;
const EXAMPLES = 'e.g. 30s, 60m, 2h, 1d or 1h30m';

/** Milliseconds in `text`, or WICKET_ERR_ARGUMENT. `what` names the option in the message. */
export function parseDuration(text: string, what = 'duration'): number {
  const trimmed = typeof text === 'string' ? text.trim() : '';
  if (!WHOLE.test(trimmed)) {
    const shown = trimmed.length <= 24 ? JSON.stringify(trimmed) : 'the value';
    const hint = /^\d+$/.test(trimmed) ? ' (a number needs a unit)' : '';
    throw wicketError('WICKET_ERR_ARGUMENT', `${what}: ${shown} is not a duration${hint}; use ${EXAMPLES}`);
  }
  let total = 0;
  for (const [, amount, unit] of trimmed.matchAll(PART)) total += Number(amount) * UNIT_MS[unit!]!;
  if (total <= 0) throw wicketError('WICKET_ERR_ARGUMENT', `${what} must be longer than zero; use ${EXAMPLES}`);
  return total;
}

/** A short human form of a duration in ms: 90000 → "1m30s". */
export function formatDuration(ms: number): string {
  if (ms < 1_000) return `${ms}ms`;
  let rest = Math.round(ms / 1_000);
  const parts: string[] = [];
  for (const [unit, size] of [['d', 86_400], ['h', 3_600], ['m', 60], ['s', 1]] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  return parts.join('');
}
