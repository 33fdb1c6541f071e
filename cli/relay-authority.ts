import type { Command } from 'commander';
import { openSigningService } from '../relay/authority/authority-role.js';
import { AUTHORITY_KEY_OPTION } from '../relay/authority/authority-key.js';
import { STORE_OPTION } from '../relay/authority/store-location.js';
import { usageError } from './cli-errors.js';
import { createLogger } from './logger.js';
import { stopOnSignals } from './stop-on-signals.js';
import { authorityKeyFileOf, storeLocationOf, type StoreFlags } from './relay-args.js';

// `relay authority --store postgres://… --authority-key FILE`: the project authority as a process
// of its own, for relays that forward only (issue 14). It holds the signing key, LISTENs on the
// store's credential queue and answers each request (a member's credential with the attributes it
// endorsed, or a relay's own), and nothing else: no WebSocket listener, no data folder.
//
// stdout, for people: `authority I… signing credentials for postgres://user:***@host/db`
// with --json (one line): {"authority":"I…","role":"authority","store":"postgres://user:***@…"}
// Logs (pino) go to stderr: one line per refused request. SIGTERM / SIGINT stop it (exit 0).

interface AuthorityFlags extends StoreFlags {
  json?: boolean;
  endorseExisting?: boolean;
}

export function registerAuthorityCommand(program: Command): void {
  program
    .command('authority')
    .description('Run the project authority alone: sign credentials for the forwarding relays of a PostgreSQL store')
    .option(`${STORE_OPTION} <url>`, 'the PostgreSQL store the relays share (default $WICKET_RELAY_STORE)')
    .option(`${AUTHORITY_KEY_OPTION} <file>`, 'the project authority key (0600), a copy of the first relay\'s DATA/authority.key')
    .option('--json', 'print one JSON line {authority, role, store, endorsedExisting} once signing')
    .option('--endorse-existing', 'once, after upgrading a store made before endorsements: vouch for every live member it holds now')
    .addHelpText(
      'after',
      `
Relays started on the store without the key forward and verify only; they write credential
requests into the store, and this process (or any relay started with the key) signs them.
Keep the key on this host alone: a forwarding relay that is taken over can neither read the
traffic nor sign, and though it can write the store, the signer signs only for tickets it
endorsed (made with the key, or granted by an admin's signature: \`agent ticket create\` works
through any relay) and members it admitted on a ticket's proof (README, "Several relays").

Example:
  $ relay authority --store postgres://wicket@db.internal:5432/wicket --authority-key /etc/wicket/authority.key`,
    )
    .action(async (flags: AuthorityFlags) => {
      const location = storeLocationOf(flags);
      if (location.kind !== 'postgres') throw usageError(`relay authority needs ${STORE_OPTION} postgres://… (a SQLite relay signs for itself)`);
      const keyFile = authorityKeyFileOf(flags);
      if (keyFile === undefined) throw usageError(`relay authority needs ${AUTHORITY_KEY_OPTION} FILE (the project key)`);
      const logger = createLogger('relay');
      const endorseExisting = flags.endorseExisting === true;
      const service = await openSigningService({ location, keyFile, now: Date.now, logger, endorseExisting });
      logger.info({ authority: service.authorityIdentifier, store: location.shown, role: 'authority', endorsedExisting: service.endorsedExisting }, 'authority signing credentials');
      const endorsed = endorseExisting ? `; endorsed ${service.endorsedExisting} existing members` : '';
      process.stdout.write(
        (flags.json === true
          ? JSON.stringify({ authority: service.authorityIdentifier, role: 'authority', store: location.shown, endorsedExisting: service.endorsedExisting })
          : `authority ${service.authorityIdentifier} signing credentials for ${location.shown}${endorsed}`) + '\n',
      );

      stopOnSignals(logger, () => service.close(), () => ({ ...service.signer.counts }));
    });
}
