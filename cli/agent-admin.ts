import type { Command } from 'commander';
import { prepareGrantedTicket, type MadeTicket, type TicketWish } from '../agent/granted-ticket.js';
import { connectOnce } from '../agent/relay-client.js';
import { wicketError } from '../protocol/errors.js';
import { parseIdentifier } from '../protocol/identity.js';
import {
  IDENTIFIER_HEX_LEN,
  IDENTIFIER_PREFIX,
  MAX_ATTRIBUTE_KEY_LEN,
  MAX_ATTRIBUTE_VALUE_LEN,
  MAX_RELAY_NAMES,
  TICKET_DEFAULT_TTL_MS,
  TICKET_DEFAULT_USAGE_COUNT,
  TICKET_MAX_TTL_MS,
  TICKET_MAX_USAGE_COUNT,
} from '../protocol/limits.js';
import type { AdminOp } from '../protocol/relay-messages.js';
import { isRelayName, isSortableAttributeName, RELAY_NAME_RULE, RESERVED_ATTRIBUTE_PREFIX, SORTABLE_ATTRIBUTE_NAME_RULE } from '../protocol/relay-names.js';
import { agentGlobals, commandLogger, openVault, printJson } from './agent-context.js';
import { usageError } from './cli-errors.js';
import { spentNote } from './member-output.js';
import { parseTicketId } from '../protocol/ticket.js';
import { printTicketTable, ticketListFrom, ticketRevokedLine, ticketViewFrom } from './ticket-output.js';
import { parseWholeNumber } from './whole-number.js';
import { formatDuration, parseDuration } from './duration.js';

// Admin commands: `agent ticket create | list | revoke`, `agent member list | revoke | reinstate`. Each one
// opens a one-shot authenticated connection to the relay with this home's identity (which needs
// the `admin` attribute), sends one admin request, prints the answer and closes.
// Arguments are checked here first, so a typo fails fast with WICKET_ERR_ARGUMENT before any
// network I/O; the relay checks them again.

/** `K` (value "true", as in admin=true) or `K=V`. */
export function parseAttributes(specs: readonly string[]): Record<string, string> {
  const attributes: Record<string, string> = {};
  for (const spec of specs) {
    const eq = spec.indexOf('=');
    const key = eq < 0 ? spec : spec.slice(0, eq);
    const value = eq < 0 ? 'true' : spec.slice(eq + 1);
    if (key.length === 0 || Buffer.byteLength(key) > MAX_ATTRIBUTE_KEY_LEN || /\s/.test(key)) {
      throw usageError(`--attribute: a key must be 1..${MAX_ATTRIBUTE_KEY_LEN} bytes without spaces (K or K=V)`);
    }
    if (key.startsWith(RESERVED_ATTRIBUTE_PREFIX)) throw usageError(`--attribute: ${JSON.stringify(key)} is reserved; grant relay names with --relay NAME`);
    if (Buffer.byteLength(value) > MAX_ATTRIBUTE_VALUE_LEN) throw usageError(`--attribute ${key}: value over ${MAX_ATTRIBUTE_VALUE_LEN} bytes`);
    if (!isSortableAttributeName(key)) throw usageError(`--attribute: a key must be ${SORTABLE_ATTRIBUTE_NAME_RULE}`);
    if (Object.hasOwn(attributes, key)) throw usageError(`--attribute ${key} is given twice`);
    attributes[key] = value;
  }
  return attributes;
}

export function parseRelayNames(names: readonly string[]): string[] {
  const unique = [...new Set(names)];
  if (unique.length > MAX_RELAY_NAMES) throw usageError(`--relay: at most ${MAX_RELAY_NAMES} names`);
  for (const name of unique) {
    if (!isRelayName(name)) throw usageError(`--relay: a relay name is ${RELAY_NAME_RULE} (e.g. openai)`);
  }
  return unique;
}

export function parseUsageCount(text: string | undefined): number {
  return text === undefined ? TICKET_DEFAULT_USAGE_COUNT : parseWholeNumber(text, '--usage-count', TICKET_MAX_USAGE_COUNT);
}

export function parseExpiresIn(text: string | undefined): number {
  if (text === undefined) return TICKET_DEFAULT_TTL_MS;
  const ms = parseDuration(text, '--expires-in');
  if (ms > TICKET_MAX_TTL_MS) throw usageError(`--expires-in is at most ${formatDuration(TICKET_MAX_TTL_MS)}`);
  return ms;
}

/** Validates an identifier typed by a person without echoing what was typed. */
export function identifierArgument(text: string): string {
  try {
    return parseIdentifier(text.trim());
  } catch {
    throw wicketError('WICKET_ERR_IDENTIFIER_INVALID', `not an identifier: expected ${IDENTIFIER_PREFIX} followed by ${IDENTIFIER_HEX_LEN} lowercase hex digits, as \`agent member list\` prints it`);
  }
}

/** One admin request over a one-shot connection. */
async function adminRequest(command: Command, op: AdminOp, args: Record<string, unknown>, vault = openVault(command)): Promise<unknown> {
  const globals = agentGlobals(command);
  const client = await connectOnce({ vault, logger: commandLogger(), insecure: globals.insecure });
  try {
    return await client.request(op, args);
  } finally {
    await client.stop();
  }
}

function asRecord(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw wicketError('WICKET_ERR_RELAY_PROTOCOL', `the relay's ${what} answer is not an object`);
  return value as Record<string, unknown>;
}

interface MemberRow {
  identifier: string;
  attributes: Record<string, string>;
  enrolledAt: string;
  revokedAt?: string;
  connected: boolean;
}

function memberRows(result: unknown): MemberRow[] {
  const members = asRecord(result, 'member.list').members;
  if (!Array.isArray(members)) throw wicketError('WICKET_ERR_RELAY_PROTOCOL', "the relay's member.list answer has no members array");
  return members.map((m) => {
    const r = asRecord(m, 'member.list');
    const attributes = typeof r.attributes === 'object' && r.attributes !== null ? (r.attributes as Record<string, string>) : {};
    return {
      identifier: String(r.identifier),
      attributes,
      enrolledAt: String(r.enrolledAt),
      ...(typeof r.revokedAt === 'string' ? { revokedAt: r.revokedAt } : {}),
      connected: r.connected === true,
    };
  });
}

function printMemberTable(rows: MemberRow[]): void {
  if (rows.length === 0) {
    process.stdout.write('no members\n');
    return;
  }
  const lines = rows.map((m) => [
    m.identifier,
    m.revokedAt !== undefined ? `revoked ${m.revokedAt}` : m.connected ? 'connected' : 'offline',
    m.enrolledAt,
    Object.entries(m.attributes)
      .map(([k, v]) => (v === 'true' ? k : `${k}=${v}`))
      .join(' '),
  ]);
  const header = ['IDENTIFIER', 'STATUS', 'ENROLLED', 'ATTRIBUTES'];
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const format = (cells: string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  process.stdout.write([format(header), ...lines.map(format)].join('\n') + '\n');
}

/**
 * This agent makes the ticket and signs a grant for it (agent/granted-ticket.ts), so it works
 * through any relay of the project, forwarding ones included, and no relay sees the secret. A relay
 * that answers with a ticket it made itself (older than grants, or hostile) is refused, never
 * printed: its ticket could send agents anywhere (prepared.finish).
 */
async function createTicket(command: Command, wish: TicketWish): Promise<MadeTicket> {
  const vault = openVault(command);
  // connectOnce needs an enrollment too: an unenrolled home fails here, before any network I/O.
  const enrollment = vault.requireEnrollment();
  const prepared = prepareGrantedTicket(vault.identity(), enrollment.authorityPublicKey, wish, Date.now());
  let answer: Record<string, unknown>;
  try {
    answer = asRecord(await adminRequest(command, 'ticket.create', prepared.args, vault), 'ticket.create');
  } catch (err) {
    prepared.discard();
    throw err;
  }
  return prepared.finish(answer);
}

export function registerAdminCommands(program: Command): void {
  const ticket = program.command('ticket').description('Enrollment tickets (admin)');
  ticket
    .command('create')
    .description('Create an enrollment ticket; prints only the ticket on stdout')
    .option('--attribute <K[=V]...>', 'attribute to grant (K alone means K=true); repeatable', (v: string, prev: string[] | undefined) => [...(prev ?? []), v])
    .option('--relay <name>', 'relay name the holder may register (outlets); repeatable', (v: string, prev: string[] | undefined) => [...(prev ?? []), v])
    .option('--usage-count <n>', `how many enrollments the ticket allows (default ${TICKET_DEFAULT_USAGE_COUNT})`)
    .option('--expires-in <duration>', `lifetime, e.g. 30s, 60m, 2h, 1d (default ${formatDuration(TICKET_DEFAULT_TTL_MS)})`)
    .option('--json', 'print {ticket, ticketId, expiresAt} as JSON')
    .addHelpText(
      'after',
      `
Examples:
  $ T=$(agent ticket create --attribute openai-outlet --relay openai --expires-in 60m)
  $ agent ticket create --attribute openai-inlet --attribute env=prod --usage-count 3 --json`,
    )
    .action(async (flags: { attribute?: string[]; relay?: string[]; usageCount?: string; expiresIn?: string; json?: boolean }, command: Command) => {
      const wish = {
        attributes: parseAttributes(flags.attribute ?? []),
        relayNames: parseRelayNames(flags.relay ?? []),
        usageCount: parseUsageCount(flags.usageCount),
        expiresInMs: parseExpiresIn(flags.expiresIn),
      };
      const made = await createTicket(command, wish);
      if (flags.json === true) printJson({ ticket: made.text.reveal(), ticketId: made.ticketId, expiresAt: made.expiresAt });
      else process.stdout.write(made.text.reveal() + '\n');
    });

  ticket
    .command('list')
    .description('List outstanding tickets (uses left, not expired, not revoked): ids, grants, uses, times; never their text')
    .option('--all', 'also list used, expired and revoked tickets')
    .option('--json', 'print {tickets: [...], omitted} as JSON')
    .addHelpText('after', '\nExamples:\n  $ agent ticket list\n  $ agent ticket list --all --json')
    .action(async (flags: { all?: boolean; json?: boolean }, command: Command) => {
      const { tickets, omitted } = ticketListFrom(await adminRequest(command, 'ticket.list', { all: flags.all === true }));
      if (flags.json === true) printJson({ tickets, omitted });
      else printTicketTable(tickets, flags.all === true);
      // The relay answers in one control frame: older tickets past its size budget are left out.
      if (omitted > 0 && flags.json !== true) process.stderr.write(`(${omitted} older tickets not shown: \`relay ticket list\` on the relay host lists them all)\n`);
    });

  ticket
    .command('revoke')
    .description('Revoke a ticket so nobody can enroll with it any more (members it enrolled stay: `agent member revoke` them)')
    .argument('<ticket-id>', 'the ticket id (32 hex digits, from `agent ticket list` or `ticket create --json`)')
    .option('--json', 'print {ticket, alreadyRevoked} as JSON')
    .addHelpText('after', '\nExample:\n  $ agent ticket revoke 3f5c0a…(32 hex digits)')
    .action(async (idText: string, flags: { json?: boolean }, command: Command) => {
      const ticketId = parseTicketId(idText).toString('hex');
      const result = asRecord(await adminRequest(command, 'ticket.revoke', { ticketId }), 'ticket.revoke');
      const view = ticketViewFrom(result.ticket, 'ticket.revoke');
      const alreadyRevoked = result.alreadyRevoked === true;
      if (flags.json === true) printJson({ ticket: view, alreadyRevoked });
      else process.stdout.write(ticketRevokedLine(view, alreadyRevoked) + '\n');
    });

  const member = program.command('member').description('Project members (admin)');
  member
    .command('list')
    .description('List enrolled members, their attributes and whether they are connected')
    .option('--json', 'print the member list as JSON')
    .addHelpText('after', '\nExamples:\n  $ agent member list\n  $ agent member list --json')
    .action(async (flags: { json?: boolean }, command: Command) => {
      const rows = memberRows(await adminRequest(command, 'member.list', {}));
      if (flags.json === true) printJson({ members: rows });
      else printMemberTable(rows);
    });

  member
    .command('revoke')
    .description('Revoke a member: refuses its new connections and cuts its live ones within a second')
    .argument('<identifier>', `the member's identifier (${IDENTIFIER_PREFIX}…, from \`agent member list\`)`)
    .option('--json', 'print the result as JSON')
    .addHelpText('after', '\nExample:\n  $ agent member revoke I3f5c…(64 hex digits)')
    .action(async (identifierText: string, flags: { json?: boolean }, command: Command) => {
      const identifier = identifierArgument(identifierText);
      const result = asRecord(await adminRequest(command, 'member.revoke', { identifier }), 'member.revoke');
      if (flags.json === true) {
        printJson(result);
        return;
      }
      const closed = typeof result.closedConnections === 'number' ? result.closedConnections : 0;
      const spent = spentNote(typeof result.ticketsSpent === 'number' ? result.ticketsSpent : 0);
      process.stdout.write(`revoked ${identifier} at ${String(result.revokedAt)}; closed ${closed} live connection${closed === 1 ? '' : 's'}${spent}\n`);
    });

  member
    .command('reinstate')
    .description('Undo a revocation: the only way back for a revoked key (a new ticket does not do it)')
    .argument('<identifier>', `the revoked member's identifier (${IDENTIFIER_PREFIX}…, from \`agent member list\`)`)
    .option('--json', 'print the result as JSON')
    .addHelpText('after', '\nExample:\n  $ agent member reinstate I3f5c…(64 hex digits)')
    .action(async (identifierText: string, flags: { json?: boolean }, command: Command) => {
      const identifier = identifierArgument(identifierText);
      const result = asRecord(await adminRequest(command, 'member.reinstate', { identifier }), 'member.reinstate');
      if (flags.json === true) printJson(result);
      else process.stdout.write(`reinstated ${identifier} at ${String(result.reinstatedAt)}\n`);
    });
}
