import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration } from '../../cli/duration.js';

describe('parseDuration', () => {
  it('reads the documented units and sums', () => {
    expect(parseDuration('30s')).toBe(30_000);
    expect(parseDuration('60m')).toBe(3_600_000);
    expect(parseDuration('2h')).toBe(7_200_000);
    expect(parseDuration('1d')).toBe(86_400_000);
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration(' 5m ')).toBe(300_000);
  });

  it('refuses a bare number, zero, negatives, unknown units and junk with WICKET_ERR_ARGUMENT', () => {
    for (const bad of ['60', '0s', '-5m', '5w', '5 m', 'm', '', '1.5h', 'abc', '1h-', '9999999999s', '5M']) {
      expect(() => parseDuration(bad), bad).toThrow(/WICKET_ERR_ARGUMENT/);
    }
  });

  it('does not echo a long value back', () => {
    const long = 'x'.repeat(200);
    expect(() => parseDuration(long)).toThrow(/the value is not a duration/);
  });

  it('formats durations compactly', () => {
    expect(formatDuration(3_600_000)).toBe('1h');
    expect(formatDuration(5_400_000)).toBe('1h30m');
    expect(formatDuration(30 * 86_400_000)).toBe('30d');
    expect(formatDuration(250)).toBe('250ms');
  });
});
