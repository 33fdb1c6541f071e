import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isWicketError } from '../../protocol/errors.js';
import { Secret } from '../../protocol/secret.js';
import { encodeTicket } from '../../protocol/ticket.js';
import { EXIT_MARKER, parseRunCommandResult, wrapScript } from '../../scripts/azure/run-command.js';
import { extractTicket, mintTicketScript, readAdminTicketScript } from '../../scripts/azure/tickets.js';

// Reading what Azure's run-command API returns, and finding a ticket in it.

function azureMessage(stdout: string, stderr = ''): { value: Array<{ code: string; message: string }> } {
  return { value: [{ code: 'ProvisioningState/succeeded', message: `Enable succeeded: \n[stdout]\n${stdout}\n[stderr]\n${stderr}\n` }] };
}

function runWrapped(body: string): string {
  const r = spawnSync('bash', ['-c', wrapScript(body).join('\n')], { encoding: 'utf8' });
  return r.stdout;
}

const ticketText = () =>
  encodeTicket({
    relayUrl: 'wss://203.0.113.10:443',
    relayCertFingerprint: randomBytes(32),
    authorityPublicKey: randomBytes(32),
    ticketId: randomBytes(16),
    secret: new Secret(randomBytes(32)),
    expiresAt: Date.now() + 60_000,
  });

describe('run-command output', () => {
  it('reports the exit status bash gave the wrapped script, since Azure says "succeeded" regardless', () => {
    const ok = parseRunCommandResult(azureMessage(runWrapped('echo hello')));
    expect(ok).toEqual({ stdout: 'hello', stderr: '', exitStatus: 0 });
    const failed = parseRunCommandResult(azureMessage(runWrapped('echo partial\nfalse\necho never'), 'boom'));
    expect(failed).toEqual({ stdout: 'partial', stderr: 'boom', exitStatus: 1 });
    const exited = parseRunCommandResult(azureMessage(runWrapped('exit 3')));
    expect(exited.exitStatus).toBe(3);
  });

  it('has no exit status when the marker is missing (output cut, or the script never ran)', () => {
    expect(parseRunCommandResult(azureMessage('something')).exitStatus).toBeUndefined();
    expect(parseRunCommandResult({ value: [] })).toEqual({ stdout: '', stderr: '', exitStatus: undefined });
    expect(parseRunCommandResult(azureMessage(`${EXIT_MARKER}x`)).exitStatus).toBeUndefined();
  });

  it('reads the one-status-per-stream shape too', () => {
    const r = parseRunCommandResult({
      value: [
        { code: 'ComponentStatus/StdOut/succeeded', message: `out\n${EXIT_MARKER}0` },
        { code: 'ComponentStatus/StdErr/succeeded', message: 'err' },
      ],
    });
    expect(r).toEqual({ stdout: 'out', stderr: 'err', exitStatus: 0 });
  });

  it('mints outlet tickets with the relay name and inlet tickets without, one use, 60 minutes', () => {
    expect(mintTicketScript('outlet')).toContain(
      'relay.js ticket create --data /var/lib/wicket-relay --attribute openai-outlet --relay openai --usage-count 1 --expires-in 60m --json',
    );
    expect(mintTicketScript('inlet')).toContain('relay.js ticket create --data /var/lib/wicket-relay --attribute openai-inlet --usage-count 1 --expires-in 60m --json');
    expect(mintTicketScript('outlet')).toContain('runuser -u wicket --');
    expect(readAdminTicketScript()).toContain('cat /var/lib/wicket-relay/admin-ticket');
  });
});

describe('extractTicket', () => {
  it('takes the ticket from `relay ticket create --json` output or from a bare line', () => {
    const t = ticketText();
    const json = JSON.stringify({ ticket: t, ticketId: 'ab', expiresAt: '2030-01-01T00:00:00Z' });
    expect(extractTicket(`some log line\n${json}`, 'minting', '203.0.113.10').reveal()).toBe(t);
    expect(extractTicket(`${t}\n`, 'admin', '203.0.113.10').reveal()).toBe(t);
  });

  function failure(stdout: string, host = '203.0.113.10'): Error {
    try {
      extractTicket(stdout, 'minting the outlet ticket', host);
    } catch (err) {
      if (isWicketError(err, 'WICKET_ERR_AZURE_OPERATION')) return err;
      throw err;
    }
    throw new Error('expected a failure');
  }

  it('refuses a truncated ticket (the checksum catches it) without echoing it', () => {
    const t = ticketText();
    const cut = t.slice(0, -6);
    const err = failure(JSON.stringify({ ticket: cut }));
    expect(err.message).toContain('does not decode');
    expect(err.message).not.toContain(cut.slice(5, 30));
  });

  it('refuses a ticket that sends agents to another relay', () => {
    expect(failure(JSON.stringify({ ticket: ticketText() }), '198.51.100.1').message).toContain('not to this relay');
  });

  it('says so when there is no ticket at all', () => {
    expect(failure('relay: unknown command').message).toContain('printed no ticket');
  });
});
