import { Command } from 'commander';
import { runCli } from './cli-errors.js';
import { chooseLogLevel, LOG_LEVELS } from './logger.js';
import { registerAuthorityCommand } from './relay-authority.js';
import { registerMemberCommands } from './relay-member.js';
import { registerStartCommand } from './relay-start.js';
import { registerTicketCommands } from './relay-ticket.js';
import { WICKET_VERSION } from '../protocol/version.js';

// The `relay` program (bin/relay.js runs its compiled form from dist/). One file per command group:
//   relay-start.ts   start (the server, and the first-start admin ticket)
//   relay-authority.ts authority (the signer alone, for forwarding relays on PostgreSQL)
//   relay-ticket.ts  ticket create | list | revoke (offline, from the data folder, while the relay runs)
//   relay-member.ts  member list | revoke (offline; a running relay applies the revocation)
// Errors: one line `error: WICKET_ERR_…: message` on stderr, exit 2 for bad arguments, else 1
// (cli-errors.ts, shared with the agent CLI).

const program = new Command('relay')
  .description('Wicket relay: routes agents\' encrypted circuits and hosts the project authority')
  .version(WICKET_VERSION, '-V, --version', 'print the version and exit')
  .option('--log-level <level>', `log level: ${LOG_LEVELS.join(', ')} (default $WICKET_LOG_LEVEL, else info for start and warn for other commands)`)
  .hook('preAction', (root) => chooseLogLevel(root.opts<{ logLevel?: string }>().logLevel))
  .showHelpAfterError(false)
  .addHelpText(
    'after',
    `
Examples:
  $ relay start --listen 0.0.0.0:443 --public-url wss://relay.example.com:443
  $ relay ticket create --attribute openai-outlet --relay openai --expires-in 60m
  $ relay member revoke I3f5c…(64 hex digits)
  $ relay authority --store postgres://wicket@db.internal/wicket --authority-key /etc/wicket/authority.key`,
  );

registerStartCommand(program);
registerAuthorityCommand(program);
registerTicketCommands(program);
registerMemberCommands(program);

await runCli(program, process.argv);
