import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isWicketError, wicketError } from '../../protocol/errors.js';
import { Secret } from '../../protocol/secret.js';
import { decodeTicket } from '../../protocol/ticket.js';
import { PORTAL } from './blueprint.js';
import type { ArmClients } from './arm-clients.js';
import type { Progress } from './progress.js';
import { runOnVm, type VmTarget } from './run-command.js';
import { renderTemplate, SAFE_WORDS } from './templates.js';

// Enrollment tickets are minted on the relay VM itself (`relay ticket create` through the
// run-command API), so `up` never connects to the relay. They come back on stdout, are checked
// (prefix, checksum, relay address) and go straight into a Secret: never printed, never logged.

export type TicketRole = 'outlet' | 'inlet';

export function ticketArgs(role: TicketRole): string {
  const common = `--usage-count 1 --expires-in ${PORTAL.ticketExpiresIn}`;
  return role === 'outlet'
    ? `--attribute ${PORTAL.outletAttribute} --relay ${PORTAL.relayName} ${common}`
    : `--attribute ${PORTAL.inletAttribute} ${common}`;
}

export function mintTicketScript(role: TicketRole): string {
  return renderTemplate('wait-for-bootstrap.sh') + renderTemplate('mint-ticket.sh', { TICKET_ARGS: { value: ticketArgs(role), alphabet: SAFE_WORDS } });
}

export function readAdminTicketScript(): string {
  return renderTemplate('wait-for-bootstrap.sh') + renderTemplate('read-admin-ticket.sh');
}

/**
 * Finds the ticket in a command's stdout: the `--json` object's "ticket" field, or a bare `wkt1_…`
 * line (the admin-ticket file). Checks it decodes (prefix and checksum catch truncation) and, when
 * `relayHost` is given, that it sends agents to this deployment's relay.
 */
export function extractTicket(stdout: string, what: string, relayHost: string | undefined): Secret<string> {
  let text: string | undefined;
  for (const line of stdout.split('\n').map((l) => l.trim()).reverse()) {
    if (line.startsWith('{')) {
      try {
        const parsed: unknown = JSON.parse(line);
        const ticket = (parsed as { ticket?: unknown }).ticket;
        if (typeof ticket === 'string') text = ticket;
      } catch {
        // not the JSON line; keep looking
      }
    } else if (line.startsWith('wkt1_')) {
      text = line;
    }
    if (text !== undefined) break;
  }
  if (text === undefined) {
    throw wicketError('WICKET_ERR_AZURE_OPERATION', `${what}: the relay VM printed no ticket (expected \`relay ticket create --json\` output)`);
  }
  try {
    const decoded = decodeTicket(text);
    if (relayHost !== undefined) {
      const host = new URL(decoded.relayUrl).hostname;
      if (host !== relayHost) {
        throw wicketError('WICKET_ERR_AZURE_OPERATION', `${what}: the ticket sends agents to ${host}, not to this relay's address ${relayHost}`);
      }
    }
  } catch (err) {
    if (isWicketError(err, 'WICKET_ERR_AZURE_OPERATION')) throw err;
    const code = isWicketError(err) ? err.code : 'unreadable';
    throw wicketError('WICKET_ERR_AZURE_OPERATION', `${what}: the relay VM printed a ticket that does not decode (${code})`, err);
  }
  return new Secret(text);
}

export async function mintTicket(arm: ArmClients, progress: Progress, relay: VmTarget, role: TicketRole, relayHost: string): Promise<Secret<string>> {
  const what = `minting the ${role}'s one-use enrollment ticket`;
  const stdout = await runOnVm(arm, progress, 'relay', relay, what, mintTicketScript(role));
  return extractTicket(stdout, what, relayHost);
}

export function adminTicketPath(stateDir: string, hash: string): string {
  return join(stateDir, `wicket-${hash}`, 'admin-ticket');
}

/** Fetches the relay's one-time admin ticket once and keeps it for the operator, mode 0600. */
export async function saveAdminTicket(arm: ArmClients, progress: Progress, relay: VmTarget, relayHost: string, path: string): Promise<void> {
  if (existsSync(path) && readFileSync(path, 'utf8').trim() !== '') {
    progress.say('relay', `exists   admin ticket ${path}`);
    return;
  }
  const what = 'reading the relay admin ticket';
  const ticket = extractTicket(await runOnVm(arm, progress, 'relay', relay, what, readAdminTicketScript()), what, relayHost);
  const dir = join(path, '..');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  writeFileSync(path, `${ticket.reveal()}\n`, { mode: 0o600 });
  chmodSync(path, 0o600); // an older file keeps its mode through writeFileSync
  progress.say('relay', `saved    admin ticket to ${path} (mode 0600): enroll with \`agent enroll --ticket-file ${path}\``);
}
