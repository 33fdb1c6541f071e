import type { Command } from 'commander';
import { parseIdentifier, type Identifier } from '../protocol/identity.js';
import { usageError } from './cli-errors.js';
import { spentNote } from './member-output.js';
import { AUTHORITY_KEY_OPTION_SPEC, DATA_OPTION, dataDirOf, STORE_OPTION_SPEC, type StoreFlags } from './relay-args.js';
import { openOfflineAuthority } from './relay-offline.js';

// `relay member list | revoke | reinstate` from the data folder. A revocation (or reinstatement)
// written here is picked up by the running relay's revocation poll (REVOCATION_POLL_INTERVAL_MS),
// which cuts the member's live connections and tells the other agents, well within a second.
//
// list stdout: one line per member `I…  enrolled <ISO>  [revoked <ISO>]  k=v,k=v`;
//   --json: {"members":[{identifier, attributes, enrolledAt, revokedAt?}]}
// revoke stdout: `revoked I… at <ISO>[; spent the remaining uses of N tickets it had redeemed]`;
//   --json: {"identifier","revokedAt","ticketsSpent"}
// reinstate stdout: `reinstated I… at <ISO>`; --json: {"identifier","reinstatedAt"}

export function registerMemberCommands(program: Command): void {
  const member = program.command('member').description('Project members, from the relay data folder');
  member
    .command('list')
    .description('List enrolled members and their attributes')
    .option(...DATA_OPTION)
    .option(...STORE_OPTION_SPEC)
    .option(...AUTHORITY_KEY_OPTION_SPEC)
    .option('--json', 'print {members: [...]} as JSON')
    .addHelpText('after', '\nExample:\n  $ relay member list --data /var/lib/wicket-relay --json')
    .action(async (flags: { data?: string; json?: boolean } & StoreFlags) => {
      const offline = await openOfflineAuthority(dataDirOf(flags.data), flags);
      try {
        const members = (await offline.authority.listMembers()).map((m) => ({
          identifier: m.identifier,
          attributes: m.attributes,
          enrolledAt: new Date(m.enrolledAt).toISOString(),
          ...(m.revokedAt === undefined ? {} : { revokedAt: new Date(m.revokedAt).toISOString() }),
        }));
        if (flags.json === true) {
          process.stdout.write(JSON.stringify({ members }) + '\n');
          return;
        }
        const lines = members.map((m) => {
          const attributes = Object.entries(m.attributes).map(([k, v]) => `${k}=${v}`).join(',');
          return `${m.identifier}  enrolled ${m.enrolledAt}${m.revokedAt === undefined ? '' : `  revoked ${m.revokedAt}`}  ${attributes}`;
        });
        process.stdout.write(lines.length === 0 ? 'no members\n' : lines.join('\n') + '\n');
      } finally {
        await offline.close();
      }
    });

  member
    .command('revoke')
    .description('Revoke a member; a running relay cuts its live connections within a second')
    .argument('<identifier>', 'the member identifier (I followed by 64 hex digits)')
    .option(...DATA_OPTION)
    .option(...STORE_OPTION_SPEC)
    .option(...AUTHORITY_KEY_OPTION_SPEC)
    .option('--json', 'print {identifier, revokedAt, ticketsSpent} as JSON')
    .addHelpText('after', '\nExample:\n  $ relay member revoke I3f5c…(64 hex digits) --data /var/lib/wicket-relay')
    .action(async (identifierText: string, flags: { data?: string; json?: boolean } & StoreFlags) => {
      const identifier = identifierOperand(identifierText);
      const offline = await openOfflineAuthority(dataDirOf(flags.data), flags);
      try {
        const { event, ticketsSpent } = await offline.authority.revoke(identifier, 'cli');
        const revokedAt = new Date(event.at).toISOString();
        process.stdout.write(
          flags.json === true
            ? JSON.stringify({ identifier, revokedAt, ticketsSpent }) + '\n'
            : `revoked ${identifier} at ${revokedAt}${spentNote(ticketsSpent)}\n`,
        );
      } finally {
        await offline.close();
      }
    });

  member
    .command('reinstate')
    .description('Undo a revocation: the only way back for a revoked key (a new ticket does not do it)')
    .argument('<identifier>', 'the revoked member identifier (I followed by 64 hex digits)')
    .option(...DATA_OPTION)
    .option(...STORE_OPTION_SPEC)
    .option(...AUTHORITY_KEY_OPTION_SPEC)
    .option('--json', 'print {identifier, reinstatedAt} as JSON')
    .addHelpText('after', '\nExample:\n  $ relay member reinstate I3f5c…(64 hex digits) --data /var/lib/wicket-relay')
    .action(async (identifierText: string, flags: { data?: string; json?: boolean } & StoreFlags) => {
      const identifier = identifierOperand(identifierText);
      const offline = await openOfflineAuthority(dataDirOf(flags.data), flags);
      try {
        const reinstatedAt = new Date((await offline.authority.reinstate(identifier, 'cli')).at).toISOString();
        process.stdout.write(flags.json === true ? JSON.stringify({ identifier, reinstatedAt }) + '\n' : `reinstated ${identifier} at ${reinstatedAt}\n`);
      } finally {
        await offline.close();
      }
    });
}

function identifierOperand(text: string): Identifier {
  try {
    return parseIdentifier(text);
  } catch (err) {
    throw usageError((err as Error).message.replace(/^WICKET_ERR_IDENTIFIER_INVALID: /, ''));
  }
}
