import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import type { Command } from 'commander';
import { enroll } from '../agent/enroll.js';
import { isWicketError, wicketError } from '../protocol/errors.js';
import { ENROLL_DEADLINE_MS, MAX_TICKET_TEXT_LEN } from '../protocol/limits.js';
import { decodeTicket, type Ticket } from '../protocol/ticket.js';
import { agentGlobals, commandLogger, openVault, printJson } from './agent-context.js';
import { registerSecretText, usageError } from './cli-errors.js';

// `agent enroll --ticket T | --ticket-file F`: redeem a ticket, print the identifier and the
// attributes the authority granted.

interface EnrollFlags {
  ticket?: string;
  ticketFile?: string;
  json?: boolean;
}

/** Reads a ticket file, refusing anything larger than a ticket could be before reading it. */
function readTicketFile(path: string): string {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw usageError(`cannot read the ticket file ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  try {
    const size = fstatSync(fd).size;
    // A little room for a trailing newline or CRLF.
    if (size > MAX_TICKET_TEXT_LEN + 16) throw wicketError('WICKET_ERR_TICKET_MALFORMED', `the ticket file ${path} is ${size} bytes; a ticket is at most ${MAX_TICKET_TEXT_LEN}`);
    const buffer = Buffer.alloc(size);
    let read = 0;
    while (read < size) {
      const n = readSync(fd, buffer, read, size - read, null);
      if (n === 0) break;
      read += n;
    }
    const text = buffer.subarray(0, read).toString('utf8');
    buffer.fill(0);
    return text;
  } finally {
    closeSync(fd);
  }
}

/** The ticket from exactly one of the two options. Decoding errors never echo the text. */
export function ticketFromFlags(flags: EnrollFlags): Ticket {
  if (flags.ticket !== undefined && flags.ticketFile !== undefined) throw usageError('give either --ticket or --ticket-file, not both');
  if (flags.ticket === undefined && flags.ticketFile === undefined) {
    throw usageError('missing the ticket: pass --ticket-file FILE (or --ticket TICKET) as printed by `agent ticket create`');
  }
  const text = flags.ticket ?? readTicketFile(flags.ticketFile!);
  registerSecretText(text);
  try {
    return decodeTicket(text);
  } catch (err) {
    if (isWicketError(err)) throw err;
    throw wicketError('WICKET_ERR_TICKET_MALFORMED', 'the ticket does not decode');
  }
}

export function registerEnrollCommand(program: Command): void {
  program
    .command('enroll')
    .description('Redeem an enrollment ticket: creates this agent\'s identity (if needed) and joins the project')
    .option('--ticket <ticket>', 'the ticket text (visible in the process list; prefer --ticket-file)')
    .option('--ticket-file <file>', 'read the ticket from a file')
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      `
A ticket that lists several relays is tried relay by relay, in its order, within ${ENROLL_DEADLINE_MS / 1000} s: one that
cannot be reached hands over to the next; one that answers with a refusal (a used or expired
ticket) ends it. Once enrolled, the agent learns the project's relays from the relay it is on.

Examples:
  $ agent enroll --ticket-file ./outlet.ticket
  $ agent --home /var/lib/wicket enroll --ticket "$T" --json`,
    )
    .action(async (flags: EnrollFlags, command: Command) => {
      const ticket = ticketFromFlags(flags);
      const globals = agentGlobals(command);
      const vault = openVault(command);
      const result = await enroll({ ticket, vault, logger: commandLogger(), insecure: globals.insecure });
      if (flags.json === true) {
        printJson({ identifier: result.identifier, attributes: result.attributes, relayUrl: result.relayUrl, home: vault.home });
        return;
      }
      const attributes = Object.entries(result.attributes).map(([k, v]) => `${k}=${v}`);
      process.stdout.write(
        `identifier  ${result.identifier}\n` +
          `attributes  ${attributes.length > 0 ? attributes.join(', ') : '(none)'}\n` +
          `relay       ${result.relayUrl}\n` +
          `home        ${vault.home}\n`,
      );
    });
}
