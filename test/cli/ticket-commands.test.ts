import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeTicket } from '../../protocol/ticket.js';
import { createTicket, enrollAgent, runAgent, runCommand, startRelayProcess, stopAll, tempDir, type AgentHome, type RelayProcess } from '../../scripts/lib/local-processes.js';

// `relay ticket list|revoke` (offline, from the data folder) and `agent ticket list|revoke` (an
// admin, through the relay) as a user types them, against a relay process: a revoked ticket
// enrolls nobody, and mistakes get their codes.

let relay: RelayProcess;
let admin: AgentHome;

beforeAll(async () => {
  relay = await startRelayProcess();
  admin = await enrollAgent(relay, { ticket: relay.adminTicket! });
});
afterAll(stopAll);

/** `agent enroll --ticket-file` in a fresh home: the exit code and the error line. */
async function enrollWith(ticket: string): Promise<{ code: number | null; stderr: string }> {
  const home = tempDir('wicket-enroll-');
  const file = join(home, 'ticket');
  writeFileSync(file, ticket, { mode: 0o600 });
  return runAgent(home, ['enroll', '--ticket-file', file]);
}

const idOf = (ticket: string): string => decodeTicket(ticket).ticketId.toString('hex');

interface Listed {
  tickets: { ticketId: string; state: string; usesLeft: number; attributes: Record<string, string>; relayNames: string[]; revokedBy?: string }[];
  omitted: number;
}

describe('ticket list and revoke from the command line', () => {
  it('relay ticket list shows outstanding tickets by id (never their text); relay ticket revoke stops enrollment with WICKET_ERR_TICKET_REVOKED', async () => {
    const ticket = await createTicket(relay, { attributes: ['team=ml', 'inlet'], relayNames: ['openai'], usageCount: 2 });
    const list = await runCommand('relay', ['ticket', 'list', '--data', relay.dataDir]);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/^ID +STATE +USES +EXPIRES +CREATED +BY +RELAYS +ATTRIBUTES$/m);
    const row = list.stdout.split('\n').find((l) => l.startsWith(idOf(ticket)));
    expect(row).toMatch(/ outstanding +2\/2 .* cli +openai +team=ml inlet$/);
    expect(list.stdout).not.toContain(ticket);

    const revoked = await runCommand('relay', ['ticket', 'revoke', idOf(ticket), '--data', relay.dataDir]);
    expect(revoked.code).toBe(0);
    expect(revoked.stdout.trim()).toBe(`revoked ticket ${idOf(ticket)}; 2 uses left can no longer be redeemed`);
    const refused = await enrollWith(ticket);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^error: WICKET_ERR_TICKET_REVOKED: /m);

    const outstanding = JSON.parse((await runCommand('relay', ['ticket', 'list', '--data', relay.dataDir, '--json'])).stdout) as Listed;
    expect(outstanding.tickets.map((t) => t.ticketId)).not.toContain(idOf(ticket));
    const all = JSON.parse((await runCommand('relay', ['ticket', 'list', '--all', '--data', relay.dataDir, '--json'])).stdout) as Listed;
    expect(all.tickets.find((t) => t.ticketId === idOf(ticket))).toMatchObject({ state: 'revoked', usesLeft: 2, revokedBy: 'cli' });
  });

  it('agent ticket list and revoke, as an admin through the relay', async () => {
    const created = await runAgent(admin.home, ['ticket', 'create', '--attribute', 'openai-inlet', '--usage-count', '3', '--json']);
    expect(created.code).toBe(0);
    const { ticket, ticketId } = JSON.parse(created.stdout) as { ticket: string; ticketId: string };
    const listed = await runAgent(admin.home, ['ticket', 'list', '--json']);
    expect(listed.code).toBe(0);
    expect(listed.stdout).not.toContain(ticket);
    expect((JSON.parse(listed.stdout) as Listed).tickets.find((t) => t.ticketId === ticketId)).toMatchObject({ state: 'outstanding', usesLeft: 3, attributes: { 'openai-inlet': 'true' } });

    const revoked = await runAgent(admin.home, ['ticket', 'revoke', ticketId, '--json']);
    expect(revoked.code).toBe(0);
    expect(JSON.parse(revoked.stdout)).toMatchObject({ alreadyRevoked: false, ticket: { ticketId, state: 'revoked', revokedBy: admin.identifier } });
    const again = await runAgent(admin.home, ['ticket', 'revoke', ticketId]);
    expect(again.stdout).toMatch(new RegExp(`^ticket ${ticketId} was already revoked at \\S+ by ${admin.identifier}$`, 'm'));
    expect((await enrollWith(ticket)).stderr).toMatch(/^error: WICKET_ERR_TICKET_REVOKED: /m);
  });

  it('mistakes: a bad id exits 2, an unknown id WICKET_ERR_TICKET_UNKNOWN, a non-admin WICKET_ERR_NOT_ADMIN', async () => {
    const unknownId = '0'.repeat(32);
    for (const [bin, args] of [
      ['relay', ['ticket', 'revoke', 'not-a-ticket-id', '--data', relay.dataDir]],
      ['relay', ['ticket', 'revoke', 'ab'.repeat(17), '--data', relay.dataDir]],
      ['agent', ['ticket', 'revoke', 'xyz']],
    ] as const) {
      const result = bin === 'relay' ? await runCommand('relay', [...args]) : await runAgent(admin.home, [...args]);
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr).toMatch(/^error: WICKET_ERR_ARGUMENT: a ticket id is 32 hex digits/m);
      expect(result.stderr).not.toContain('not-a-ticket-id');
    }
    const offline = await runCommand('relay', ['ticket', 'revoke', unknownId, '--data', relay.dataDir]);
    expect([offline.code, offline.stderr]).toEqual([1, expect.stringMatching(/^error: WICKET_ERR_TICKET_UNKNOWN: no ticket 0{32}/m)]);
    const online = await runAgent(admin.home, ['ticket', 'revoke', unknownId]);
    expect([online.code, online.stderr]).toEqual([1, expect.stringMatching(/^error: WICKET_ERR_TICKET_UNKNOWN: /m)]);

    const member = await enrollAgent(relay, { attributes: ['inlet'] });
    for (const args of [['ticket', 'list'], ['ticket', 'revoke', unknownId]]) {
      const refused = await runAgent(member.home, args);
      expect(refused.code, args.join(' ')).toBe(1);
      expect(refused.stderr).toMatch(/^error: WICKET_ERR_NOT_ADMIN: /m);
    }
  });
});
