import type { Command } from 'commander';
import { formatDuration, parseDuration } from './duration.js';
import { TICKET_DEFAULT_TTL_MS } from '../protocol/limits.js';
import { collect, AUTHORITY_KEY_OPTION_SPEC, DATA_OPTION, dataDirOf, STORE_OPTION_SPEC, type StoreFlags, parseAttributes, parseUsageCount } from './relay-args.js';
import { openOfflineAuthority } from './relay-offline.js';
import { parseTicketId } from '../protocol/ticket.js';
import { ticketView } from '../relay/authority/ticket-view.js';
import { printTicketTable, ticketRevokedLine } from './ticket-output.js';

// `relay ticket create | list | revoke`: tickets from the data folder, for automation on the relay
// host (no admin identity needed: whoever can read the folder already holds the authority key).
// Safe while the relay runs: the SQLite store is shared in WAL mode, and these commands do not
// take the relay's lock. A ticket revoked here is refused by the running relay at once (every
// redemption reads the store).
//
// create stdout: the ticket alone on one line; with --json: {"ticket","ticketId","expiresAt"}.
// list, revoke: see ticket-output.ts (the same output as `agent ticket list|revoke`).

interface TicketFlags extends StoreFlags {
  data?: string;
  attribute?: string[];
  relay?: string[];
  usageCount?: string;
  expiresIn?: string;
  json?: boolean;
}

export function registerTicketCommands(program: Command): void {
  const ticket = program.command('ticket').description('Enrollment tickets, minted from the relay data folder');
  ticket
    .command('create')
    .description('Create an enrollment ticket; prints only the ticket on stdout')
    .option(...DATA_OPTION)
    .option(...STORE_OPTION_SPEC)
    .option(...AUTHORITY_KEY_OPTION_SPEC)
    .option('--attribute <K[=V]>', 'attribute to grant (K alone means K=true); repeatable', collect)
    .option('--relay <name>', 'relay name the holder may register (outlets); repeatable', collect)
    .option('--usage-count <n>', 'how many enrollments the ticket allows (default 1)')
    .option('--expires-in <duration>', `lifetime, e.g. 30s, 60m, 2h, 1d (default ${formatDuration(TICKET_DEFAULT_TTL_MS)}, at most 30d)`)
    .option('--json', 'print {ticket, ticketId, expiresAt} as JSON')
    .addHelpText(
      'after',
      `
Examples:
  $ T=$(relay ticket create --data /var/lib/wicket-relay --attribute openai-outlet --relay openai --expires-in 60m)
  $ relay ticket create --attribute admin --expires-in 1d --json`,
    )
    .action(async (flags: TicketFlags) => {
      const attributes = parseAttributes(flags.attribute ?? []);
      const usageCount = parseUsageCount(flags.usageCount);
      const expiresInMs = flags.expiresIn === undefined ? TICKET_DEFAULT_TTL_MS : parseDuration(flags.expiresIn, '--expires-in');
      const offline = await openOfflineAuthority(dataDirOf(flags.data), flags);
      try {
        const created = await offline.authority.createTicket({
          attributes,
          relayNames: flags.relay ?? [],
          usageCount,
          expiresInMs,
          createdBy: 'cli',
        });
        const expiresAt = new Date(created.expiresAt).toISOString();
        process.stdout.write(
          flags.json === true
            ? JSON.stringify({ ticket: created.text.reveal(), ticketId: created.ticketId, expiresAt }) + '\n'
            : created.text.reveal() + '\n',
        );
      } finally {
        await offline.close();
      }
    });

  ticket
    .command('list')
    .description('List outstanding tickets (uses left, not expired, not revoked): ids, grants, uses, times; never their text')
    .option(...DATA_OPTION)
    .option(...STORE_OPTION_SPEC)
    .option(...AUTHORITY_KEY_OPTION_SPEC)
    .option('--all', 'also list used, expired and revoked tickets')
    .option('--json', 'print {tickets: [...], omitted: 0} as JSON')
    .addHelpText('after', '\nExamples:\n  $ relay ticket list --data /var/lib/wicket-relay\n  $ relay ticket list --all --json')
    .action(async (flags: { data?: string; all?: boolean; json?: boolean } & StoreFlags) => {
      const offline = await openOfflineAuthority(dataDirOf(flags.data), flags);
      try {
        const now = offline.authority.now();
        const tickets = (await offline.authority.listTickets(flags.all === true)).map((t) => ticketView(t, now));
        if (flags.json === true) process.stdout.write(JSON.stringify({ tickets, omitted: 0 }) + '\n');
        else printTicketTable(tickets, flags.all === true);
      } finally {
        await offline.close();
      }
    });

  ticket
    .command('revoke')
    .description('Revoke a ticket so nobody can enroll with it any more (members it enrolled stay: `relay member revoke` them)')
    .argument('<ticket-id>', 'the ticket id (32 hex digits, from `relay ticket list` or `ticket create --json`)')
    .option(...DATA_OPTION)
    .option(...STORE_OPTION_SPEC)
    .option(...AUTHORITY_KEY_OPTION_SPEC)
    .option('--json', 'print {ticket, alreadyRevoked} as JSON')
    .addHelpText('after', '\nExample:\n  $ relay ticket revoke 3f5c0a…(32 hex digits) --data /var/lib/wicket-relay')
    .action(async (idText: string, flags: { data?: string; json?: boolean } & StoreFlags) => {
      const ticketId = parseTicketId(idText);
      const offline = await openOfflineAuthority(dataDirOf(flags.data), flags);
      try {
        const outcome = await offline.authority.revokeTicket(ticketId, 'cli');
        const view = ticketView(outcome.ticket, offline.authority.now());
        process.stdout.write(
          flags.json === true ? JSON.stringify({ ticket: view, alreadyRevoked: outcome.alreadyRevoked }) + '\n' : ticketRevokedLine(view, outcome.alreadyRevoked) + '\n',
        );
      } finally {
        await offline.close();
      }
    });
}
