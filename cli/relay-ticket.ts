import type { Command } from 'commander';
import { formatDuration, parseDuration } from './duration.js';
import { TICKET_DEFAULT_TTL_MS } from '../protocol/limits.js';
import { collect, DATA_OPTION, dataDirOf, parseAttributes, parseUsageCount } from './relay-args.js';
import { openOfflineAuthority } from './relay-offline.js';

// `relay ticket create`: mints a ticket from the data folder, for automation on the relay host
// (no admin identity needed: whoever can read the folder already holds the authority key). Safe
// while the relay runs: the SQLite store is shared in WAL mode.
//
// stdout: the ticket alone on one line; with --json: {"ticket","ticketId","expiresAt"}.

interface TicketFlags {
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
      const offline = openOfflineAuthority(dataDirOf(flags.data));
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
}
