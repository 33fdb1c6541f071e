import { Command } from 'commander';
import { registerAdminCommands } from './agent-admin.js';
import { registerEnrollCommand } from './agent-enroll.js';
import { registerNodeCommands } from './agent-node.js';
import { registerUsageCommand } from './agent-usage.js';
import { runCli } from './cli-errors.js';
import { WICKET_VERSION } from '../protocol/version.js';
import { chooseLogLevel, LOG_LEVELS } from './logger.js';

// The `agent` program (bin/agent.js runs its compiled form from dist/). One file per command group:
//   agent-enroll.ts  enroll
//   agent-admin.ts   ticket create | list | revoke, member list | revoke | reinstate (admin identity)
//   agent-node.ts    node start, inlet/outlet create|list|delete, status (the running node)
// Errors: one line `error: WICKET_ERR_…: message` on stderr, exit 1 (2 for usage), see cli-errors.ts.

const program = new Command('agent')
  .description('Wicket agent: enroll, run inlets and outlets, administer the project')
  .version(WICKET_VERSION, '-V, --version', 'print the version and exit')
  .option('--home <dir>', 'agent home: identity, enrollment, control socket (default $WICKET_HOME or ~/.wicket)')
  .option('--insecure', 'allow plain ws:// to a relay that is not on loopback')
  .option('--log-level <level>', `log level: ${LOG_LEVELS.join(', ')} (default $WICKET_LOG_LEVEL, else info for the node and warn for other commands)`)
  .hook('preAction', (root) => chooseLogLevel(root.opts<{ logLevel?: string }>().logLevel))
  .showHelpAfterError(false)
  .addHelpText(
    'after',
    `
Examples:
  $ agent enroll --ticket-file ./admin.ticket
  $ agent ticket create --attribute openai-outlet --relay openai --expires-in 60m
  $ agent member list`,
  );

registerEnrollCommand(program);
registerAdminCommands(program);
registerNodeCommands(program);
registerUsageCommand(program);

await runCli(program, process.argv);
