import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, codeFromNumber, wicketError, type ErrorCode } from '../../protocol/errors.js';
import { readmeWithTable } from '../../scripts/error-table.js';

describe('error registry', () => {
  it('gives every code a unique wire number that maps back to it', () => {
    const codes = Object.keys(ERROR_CODES) as ErrorCode[];
    const numbers = codes.map((c) => ERROR_CODES[c].num);
    expect(new Set(numbers).size).toBe(numbers.length);
    for (const code of codes) {
      expect(code).toMatch(/^WICKET_ERR_[A-Z0-9_]+$/);
      expect(codeFromNumber(ERROR_CODES[code].num)).toBe(code);
    }
  });

  it('README error table lists every code exactly as the registry (run scripts/error-table.ts --write)', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    expect(readme).toBe(readmeWithTable(readme));
  });

  it('error messages start with their stable code', () => {
    const err = wicketError('WICKET_ERR_TICKET_EXPIRED', 'ticket t1 expired');
    expect(err.message).toBe('WICKET_ERR_TICKET_EXPIRED: ticket t1 expired');
    expect(err.code).toBe('WICKET_ERR_TICKET_EXPIRED');
  });
});
