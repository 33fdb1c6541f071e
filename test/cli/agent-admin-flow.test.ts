import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorLine, hasStackTrace, runAgent, startRelayProcess, type RelayProcess } from './agent-cli-helpers.js';

// The admin path as a user types it, against the real relay started as a process:
// `relay start --json` → `agent enroll` (admin ticket) → `agent ticket create` → a second
// `agent enroll` → a reused ticket refused → `agent member list` → `agent member revoke`.

const root = mkdtempSync(join(tmpdir(), 'wicket-cli-flow-'));
let relay: RelayProcess;
const adminHome = join(root, 'admin');
const outletHome = join(root, 'outlet');

beforeAll(async () => {
  relay = await startRelayProcess(join(root, 'relay-data'));
});
afterAll(async () => {
  await relay?.stop();
  rmSync(root, { recursive: true, force: true });
});

function json<T>(stdout: string): T {
  return JSON.parse(stdout.trim()) as T;
}

describe('agent CLI against a relay process', () => {
  let outletTicket = '';
  let outletIdentifier = '';

  it('enroll --ticket (the relay\'s admin ticket) prints the identifier and admin=true; the key is 0600', async () => {
    const r = await runAgent(['--home', adminHome, 'enroll', '--ticket', relay.adminTicket!, '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = json<{ identifier: string; attributes: Record<string, string> }>(r.stdout);
    expect(out.identifier).toMatch(/^I[0-9a-f]{64}$/);
    expect(out.attributes.admin).toBe('true');
    expect(statSync(join(adminHome, 'identity.key')).mode & 0o777).toBe(0o600);
    expect(statSync(join(adminHome, 'enrollment.json')).mode & 0o777).toBe(0o600);
  });

  it('ticket create prints only the ticket on stdout, so T=$(agent ticket create …) works', async () => {
    const r = await runAgent(['--home', adminHome, 'ticket', 'create', '--attribute', 'openai-outlet', '--attribute', 'env=prod', '--relay', 'openai', '--expires-in', '10m']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^wkt1_[A-Za-z0-9_-]+\n$/);
    outletTicket = r.stdout.trim();
    const asJson = await runAgent(['--home', adminHome, 'ticket', 'create', '--usage-count', '2', '--json']);
    const created = json<{ ticket: string; ticketId: string; expiresAt: string }>(asJson.stdout);
    expect(created.ticket).toMatch(/^wkt1_/);
    expect(Date.parse(created.expiresAt)).toBeGreaterThan(Date.now());
  });

  it('a second agent enrolls with that ticket (from a file) and gets its attributes', async () => {
    const file = join(root, 'outlet.ticket');
    writeFileSync(file, outletTicket + '\n', { mode: 0o600 });
    const r = await runAgent(['--home', outletHome, 'enroll', '--ticket-file', file]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^identifier {2}I[0-9a-f]{64}$/m);
    expect(r.stdout).toMatch(/^attributes .*env=prod/m);
    expect(r.stdout).toMatch(/openai-outlet=true/);
    expect(r.stdout).toMatch(/wicket:relays=openai/);
    outletIdentifier = /I[0-9a-f]{64}/.exec(r.stdout)![0];
  });

  it('a reused ticket is refused with WICKET_ERR_TICKET_USED (one line, no stack, ticket not echoed)', async () => {
    const r = await runAgent(['--home', join(root, 'late'), 'enroll', '--ticket', outletTicket]);
    expect(r.code).toBe(1);
    expect(errorLine(r).code).toBe('WICKET_ERR_TICKET_USED');
    // The relay's words reach the user as they are: the ticket was already used, not "cannot be redeemed".
    expect(errorLine(r).line).toMatch(/ was already used \(it has no uses left\); ask an admin for a new ticket$/);
    expect(hasStackTrace(r.stderr)).toBe(false);
    expect(r.stderr).not.toContain(outletTicket.slice(5, 40));
  });

  it('a non-admin cannot create tickets (WICKET_ERR_NOT_ADMIN)', async () => {
    const r = await runAgent(['--home', outletHome, 'ticket', 'create']);
    expect(r.code).toBe(1);
    expect(errorLine(r).code).toBe('WICKET_ERR_NOT_ADMIN');
  });

  it('member list shows both members; member revoke revokes one; the list then shows it revoked', async () => {
    const list = await runAgent(['--home', adminHome, 'member', 'list', '--json']);
    expect(list.code).toBe(0);
    const before = json<{ members: { identifier: string; revokedAt?: string }[] }>(list.stdout).members;
    expect(before.map((m) => m.identifier)).toContain(outletIdentifier);

    const table = await runAgent(['--home', adminHome, 'member', 'list']);
    expect(table.stdout).toMatch(/^IDENTIFIER\s+STATUS\s+ENROLLED\s+ATTRIBUTES$/m);

    const revoke = await runAgent(['--home', adminHome, 'member', 'revoke', outletIdentifier, '--json']);
    expect(revoke.code).toBe(0);
    expect(json<{ identifier: string }>(revoke.stdout).identifier).toBe(outletIdentifier);

    const after = json<{ members: { identifier: string; revokedAt?: string }[] }>((await runAgent(['--home', adminHome, 'member', 'list', '--json'])).stdout).members;
    expect(after.find((m) => m.identifier === outletIdentifier)?.revokedAt).toBeDefined();

    // The revoked member can no longer even connect.
    const refused = await runAgent(['--home', outletHome, 'member', 'list']);
    expect(refused.code).toBe(1);
    expect(errorLine(refused).code).toBe('WICKET_ERR_REVOKED');
  });

  it('revoking an unknown member: WICKET_ERR_MEMBER_UNKNOWN', async () => {
    const r = await runAgent(['--home', adminHome, 'member', 'revoke', 'I' + '0'.repeat(64)]);
    expect(r.code).toBe(1);
    expect(errorLine(r).code).toBe('WICKET_ERR_MEMBER_UNKNOWN');
  });
});
