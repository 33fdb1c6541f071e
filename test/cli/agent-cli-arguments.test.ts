import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { errorLine, hasStackTrace, runAgent, type RunResult } from './agent-cli-helpers.js';

// Hostile and mistaken command lines: each one exits non-zero with one `error: WICKET_ERR_…`
// line, no stack trace, and never prints a ticket back.

const home = mkdtempSync(join(tmpdir(), 'wicket-cli-args-'));
afterAll(() => rmSync(home, { recursive: true, force: true }));

function expectCleanFailure(r: RunResult, code: string, exitCode: number): void {
  expect(errorLine(r).code).toBe(code);
  expect(r.code).toBe(exitCode);
  expect(hasStackTrace(r.stderr)).toBe(false);
  expect(r.stdout).toBe('');
}

// A well-formed-looking ticket whose checksum is wrong, and free text that might be a secret.
const GARBAGE_TICKET = 'wkt1_AQAAFHdzOi8vMTI3LjAuMC4xOjQ0NzMzOR5hnSA_hAmse03Hy7ptwWgA7CdAIlU1W9_kipvY8NPYei0TgA-aURg3NfWvZQkMl498QQ3SRY4i2DXaLCD4uDtFkKbrjok1F_ucjGYpDSEAAAGiBilN6yKrsDx';
const SECRET_LOOKING_TEXT = 'sk-live-7f3a9c2e1b4d6f8a0c2e4b6d8f0a2c4e';

describe('agent CLI: hostile arguments', () => {
  it('enroll without a ticket: WICKET_ERR_ARGUMENT, exit 2', async () => {
    expectCleanFailure(await runAgent(['--home', home, 'enroll']), 'WICKET_ERR_ARGUMENT', 2);
  });

  it('enroll with both --ticket and --ticket-file: WICKET_ERR_ARGUMENT, exit 2', async () => {
    expectCleanFailure(await runAgent(['--home', home, 'enroll', '--ticket', 'x', '--ticket-file', '/nonexistent']), 'WICKET_ERR_ARGUMENT', 2);
  });

  it('enroll with a garbage ticket: WICKET_ERR_TICKET_MALFORMED, and the ticket is never echoed', async () => {
    const r = await runAgent(['--home', home, 'enroll', '--ticket', GARBAGE_TICKET]);
    expectCleanFailure(r, 'WICKET_ERR_TICKET_MALFORMED', 1);
    expect(r.stderr).not.toContain(GARBAGE_TICKET.slice(5, 25));
  });

  it('enroll with text that is not a ticket at all: WICKET_ERR_TICKET_PREFIX, the text is never echoed', async () => {
    const r = await runAgent(['--home', home, 'enroll', '--ticket', SECRET_LOOKING_TEXT]);
    expectCleanFailure(r, 'WICKET_ERR_TICKET_PREFIX', 1);
    expect(r.stderr).not.toContain(SECRET_LOOKING_TEXT.slice(3));
  });

  it('enroll with a garbage ticket file: same refusal, file content never echoed', async () => {
    const file = join(home, 'bad.ticket');
    writeFileSync(file, GARBAGE_TICKET + '\n', { mode: 0o600 });
    const r = await runAgent(['--home', home, 'enroll', '--ticket-file', file]);
    expectCleanFailure(r, 'WICKET_ERR_TICKET_MALFORMED', 1);
    expect(r.stderr).not.toContain(GARBAGE_TICKET.slice(5, 25));
  });

  it('enroll with a missing ticket file: WICKET_ERR_ARGUMENT', async () => {
    expectCleanFailure(await runAgent(['--home', home, 'enroll', '--ticket-file', join(home, 'missing')]), 'WICKET_ERR_ARGUMENT', 2);
  });

  it('a mistyped option carrying a ticket (--tiket=…) is refused without echoing the value', async () => {
    const r = await runAgent(['--home', home, 'enroll', `--tiket=${GARBAGE_TICKET}`]);
    expectCleanFailure(r, 'WICKET_ERR_ARGUMENT', 2);
    expect(r.stderr).not.toContain(GARBAGE_TICKET.slice(5, 25));
    expect(r.stderr).toContain('--tiket');
  });

  it('a ticket given where a command belongs is refused without echoing it', async () => {
    const r = await runAgent(['--home', home, GARBAGE_TICKET]);
    expectCleanFailure(r, 'WICKET_ERR_ARGUMENT', 2);
    expect(r.stderr).not.toContain(GARBAGE_TICKET.slice(5, 25));
  });

  it('member revoke with a bad identifier: WICKET_ERR_IDENTIFIER_INVALID before any connection', async () => {
    const bad = ['Ixyz', 'I' + 'A'.repeat(64), 'I' + '0'.repeat(63), ''];
    const results = await Promise.all(bad.map((id) => runAgent(['--home', home, 'member', 'revoke', id])));
    for (const r of results) expectCleanFailure(r, 'WICKET_ERR_IDENTIFIER_INVALID', 1);
  });

  it('member revoke without an identifier: WICKET_ERR_ARGUMENT', async () => {
    expectCleanFailure(await runAgent(['--home', home, 'member', 'revoke']), 'WICKET_ERR_ARGUMENT', 2);
  });

  it('ticket create with a bad duration, usage count, attribute or relay name: WICKET_ERR_ARGUMENT', async () => {
    const cases = [
      ['--expires-in', '10x'],
      ['--expires-in', '60'],
      ['--expires-in', '400d'],
      ['--usage-count', '0'],
      ['--usage-count', 'many'],
      ['--attribute', '=v'],
      ['--attribute', 'wicket:relays=x'],
      ['--attribute', '9=x'], // digits only: no sorted text could hold it (protocol/relay-names.ts)
      ['--attribute', '__proto__=x'],
      ['--relay', 'a,b'],
    ];
    const results = await Promise.all(cases.map((args) => runAgent(['--home', home, 'ticket', 'create', ...args])));
    results.forEach((r, i) => {
      expect(errorLine(r).code, cases[i]!.join(' ')).toBe('WICKET_ERR_ARGUMENT');
      expectCleanFailure(r, 'WICKET_ERR_ARGUMENT', 2);
    });
  });

  it('an unknown flag and an unknown command: WICKET_ERR_ARGUMENT, exit 2', async () => {
    expectCleanFailure(await runAgent(['--home', home, 'enroll', '--bogus']), 'WICKET_ERR_ARGUMENT', 2);
    expectCleanFailure(await runAgent(['--home', home, 'frobnicate']), 'WICKET_ERR_ARGUMENT', 2);
  });

  it('an admin command in a home that was never enrolled: WICKET_ERR_NOT_ENROLLED, exit 1', async () => {
    expectCleanFailure(await runAgent(['--home', join(home, 'empty'), 'member', 'list']), 'WICKET_ERR_NOT_ENROLLED', 1);
  });

  it('every command answers --help with an example, exit 0', async () => {
    const commands = [[], ['enroll'], ['ticket', 'create'], ['member', 'list'], ['member', 'revoke']];
    const results = await Promise.all(commands.map((command) => runAgent([...command, '--help'])));
    for (const [i, r] of results.entries()) {
      expect(r.code, commands[i]!.join(' ')).toBe(0);
      expect(r.stdout).toMatch(/Usage: agent/);
      expect(r.stdout).toMatch(/Examples?:\n\s+\$ .*\bagent /);
    }
  });
});
