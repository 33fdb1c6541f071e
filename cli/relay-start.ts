import { resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { parseListenAddress, DEFAULT_LISTEN, urlHostPort } from '../relay/listen-address.js';
import { parseMetricsFrom } from '../relay/metrics-access.js';
import { startRelay, type RelayTlsMode } from '../relay/server.js';
import { usageError } from './cli-errors.js';
import { createLogger } from './logger.js';
import { stopOnSignals } from './stop-on-signals.js';
import { AUTHORITY_KEY_OPTION_SPEC, authorityKeyFileOf, DATA_OPTION, dataDirOf, STORE_OPTION_SPEC, storeLocationOf, type StoreFlags } from './relay-args.js';

// `relay start`: runs the relay in the foreground (systemd, cloud-init, tests).
//
// stdout, for people:                                  stdout with --json (one line, for tests):
//   authority I…                                         {"url":"ws://127.0.0.1:41234",
//   admin ticket (one use, expires …; saved in …):        "authority":"I…", "role":"signing",
//   wkt1_…              (first start, stdout a terminal)  "adminTicketFile":"DIR/admin-ticket",
//   certificate sha256 <hex>         (self-signed TLS)     "adminTicketExpiresAt":"<ISO>",
//   role signing|forwarding (…)                            "adminTicket":"wkt1_…",  (terminal only)
//   relay listening on ws://127.0.0.1:41234                "fingerprint":"<hex>"}    (self-signed TLS)
//
// The first start's admin ticket is saved to DIR/admin-ticket (0600) and never logged. Its text
// is printed only when stdout is a terminal: under systemd, cloud-init or a pipe stdout is a
// journal or a file that others may read, so there the line says only where the ticket is and
// how to use it (`agent enroll --ticket-file DIR/admin-ticket`), and the log says the same. The
// --json line follows the same rule: scripts read the ticket from adminTicketFile.
// Logs (pino) go to stderr. SIGTERM / SIGINT close connections and the store, then exit 0.

interface StartFlags extends StoreFlags {
  listen: string;
  data?: string;
  publicUrl?: string;
  tls?: boolean;
  tlsCert?: string;
  tlsKey?: string;
  insecure?: boolean;
  json?: boolean;
  tap?: string;
  metricsFrom?: string;
}

function tlsModeOf(flags: StartFlags): RelayTlsMode | undefined {
  if ((flags.tlsCert === undefined) !== (flags.tlsKey === undefined)) throw usageError('--tls-cert and --tls-key go together');
  if (flags.tlsCert !== undefined && flags.tlsKey !== undefined) {
    if (flags.tls === true) throw usageError('--tls (self-signed) and --tls-cert/--tls-key exclude each other');
    return { certFile: flags.tlsCert, keyFile: flags.tlsKey };
  }
  if (flags.tls === true) return 'self-signed';
  return undefined;
}

export function registerStartCommand(program: Command): void {
  program
    .command('start')
    .description('Run the relay and its project authority in the foreground')
    .option('--listen <host:port>', 'address to listen on', urlHostPort(DEFAULT_LISTEN.host, DEFAULT_LISTEN.port))
    .option(...DATA_OPTION)
    .option(...STORE_OPTION_SPEC)
    .option(...AUTHORITY_KEY_OPTION_SPEC)
    .option('--public-url <url>', 'the ws:// or wss:// URL agents dial, put in tickets (default: the listen address)')
    .option('--tls', 'serve TLS with the generated self-signed certificate even on loopback')
    .option('--tls-cert <file>', 'PEM certificate to serve (with --tls-key); not pinned in tickets')
    .option('--tls-key <file>', 'PEM private key for --tls-cert')
    .option('--insecure', 'allow plain ws:// on a non-loopback address')
    .option('--metrics-from <cidr,...|any>', 'who may GET /metrics on the relay port: addresses or CIDR ranges, comma-separated, or any (default: loopback only)')
    .option('--json', 'print one JSON line {url, authority, role, adminTicketFile?, adminTicketExpiresAt?, fingerprint?} once listening')
    .addOption(new Option('--tap <file>', 'test only: append every received frame to FILE').hideHelp())
    .addHelpText(
      'after',
      `
Off loopback the relay serves TLS with a self-signed certificate made once in the data folder;
its fingerprint goes in every ticket, so agents pin it.

Several relays can serve one project on one PostgreSQL store (--store postgres://…). The first
one makes the project key (DATA/authority.key) and records the project in the store. A relay
started with the key (--authority-key FILE, mode 0600, or DATA/authority.key) signs credentials
(role signing); one started without it forwards and only verifies (role forwarding): it never
holds the key, and gets its agents' credentials from a signer through the store (a relay with
the key, or \`relay authority\`). The password is best left out of the URL: pg reads
PGPASSWORD or ~/.pgpass, or give the URL in $WICKET_RELAY_STORE.

The same port answers plain GET /healthz, /readyz and /metrics (Prometheus); /metrics only to
loopback unless --metrics-from allows more (e.g. --metrics-from 10.0.0.0/8,127.0.0.1).
The first start makes a one-time admin ticket, saved in DATA/admin-ticket (0600). It is printed
only when stdout is a terminal; otherwise (systemd, pipes, --json in scripts) read the file and
enroll with \`agent enroll --ticket-file DATA/admin-ticket\`.

Examples:
  $ relay start                                   # ws://127.0.0.1:7400, data in ~/.wicket-relay
  $ relay start --listen 0.0.0.0:443 --public-url wss://relay.example.com:443 --data /var/lib/wicket-relay
  $ relay start --listen 127.0.0.1:0 --data /tmp/r --json
  $ relay start --store postgres://wicket@db.internal:5432/wicket --authority-key /etc/wicket/authority.key --data /var/lib/wicket-relay
  $ relay start --store postgres://wicket@db.internal:5432/wicket --data /var/lib/wicket-relay   # forwarding`,
    )
    .action(async (flags: StartFlags) => {
      const listen = parseListenAddress(flags.listen);
      const tls = tlsModeOf(flags);
      const metricsAccess = flags.metricsFrom === undefined ? undefined : parseMetricsFrom(flags.metricsFrom);
      const dataDir = dataDirOf(flags.data);
      const storeLocation = storeLocationOf(flags);
      const authorityKeyFile = authorityKeyFileOf(flags);
      const tapFile = flags.tap ?? (process.env.WICKET_RELAY_TAP || undefined);
      const logger = createLogger('relay');
      const relay = await startRelay({
        dataDir,
        logger,
        listen,
        ...(flags.publicUrl === undefined ? {} : { publicUrl: flags.publicUrl }),
        ...(tls === undefined ? {} : { tls }),
        insecure: flags.insecure === true,
        storeLocation,
        ...(authorityKeyFile === undefined ? {} : { authorityKeyFile }),
        ...(tapFile === undefined ? {} : { tapFile }),
        ...(metricsAccess === undefined ? {} : { metricsAccess }),
      });

      const lines: string[] = [];
      // Only a person at a terminal sees the ticket text; a journal or a pipe gets its path.
      const showTicket = process.stdout.isTTY === true;
      const admin = relay.adminTicket;
      const adminFile = resolve(relay.paths.adminTicket);
      const adminExpires = admin === undefined ? undefined : new Date(admin.expiresAt).toISOString();
      if (admin !== undefined) logger.info({ file: adminFile, expiresAt: adminExpires }, `admin ticket saved; enroll with \`agent enroll --ticket-file ${adminFile}\``);
      if (flags.json === true) {
        lines.push(
          JSON.stringify({
            url: relay.url,
            authority: relay.authorityIdentifier,
            role: relay.role,
            ...(admin === undefined ? {} : { adminTicketFile: adminFile, adminTicketExpiresAt: adminExpires }),
            ...(admin === undefined || !showTicket ? {} : { adminTicket: admin.text.reveal() }),
            ...(relay.fingerprint === undefined ? {} : { fingerprint: relay.fingerprint }),
          }),
        );
      } else {
        lines.push(`authority ${relay.authorityIdentifier}`);
        if (admin !== undefined && showTicket) lines.push(`admin ticket (one use, expires ${adminExpires}; saved in ${adminFile}):`, admin.text.reveal());
        else if (admin !== undefined) lines.push(`admin ticket (one use, expires ${adminExpires}) saved in ${adminFile} (0600); enroll with: agent enroll --ticket-file ${adminFile}`);
        if (relay.fingerprint !== undefined) lines.push(`certificate sha256 ${relay.fingerprint}`);
        lines.push(relay.role === 'signing' ? 'role signing (this relay holds the project key)' : 'role forwarding (no signing key here: credentials come from the project authority through the store)');
        lines.push(`relay listening on ${relay.url}`);
      }
      process.stdout.write(lines.join('\n') + '\n');

      stopOnSignals(logger, () => relay.close());
    });
}
