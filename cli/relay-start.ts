import { Option, type Command } from 'commander';
import { parseListenAddress, DEFAULT_LISTEN, urlHostPort } from '../relay/listen-address.js';
import { parseMetricsFrom } from '../relay/metrics-access.js';
import { startRelay, type RelayTlsMode } from '../relay/server.js';
import { usageError } from './cli-errors.js';
import { createLogger } from './logger.js';
import { DATA_OPTION, dataDirOf } from './relay-args.js';

// `relay start`: runs the relay in the foreground (systemd, cloud-init, tests).
//
// stdout, for people:                                  stdout with --json (one line, for tests):
//   authority I…                                         {"url":"ws://127.0.0.1:41234",
//   admin ticket (one use, expires …; saved in …):        "authority":"I…",
//   wkt1_…                           (first start only)   "adminTicket":"wkt1_…",   (first start only)
//   certificate sha256 <hex>         (self-signed TLS)     "fingerprint":"<hex>"}    (self-signed TLS)
//   relay listening on ws://127.0.0.1:41234
//
// The admin ticket is printed once here and saved to DIR/admin-ticket (0600); it is never logged.
// Logs (pino) go to stderr. SIGTERM / SIGINT close connections and the store, then exit 0.

interface StartFlags {
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
    .option('--public-url <url>', 'the ws:// or wss:// URL agents dial, put in tickets (default: the listen address)')
    .option('--tls', 'serve TLS with the generated self-signed certificate even on loopback')
    .option('--tls-cert <file>', 'PEM certificate to serve (with --tls-key); not pinned in tickets')
    .option('--tls-key <file>', 'PEM private key for --tls-cert')
    .option('--insecure', 'allow plain ws:// on a non-loopback address')
    .option('--json', 'print one JSON line {url, authority, adminTicket?, fingerprint?} once listening')
    .option('--metrics-from <cidr,...|any>', 'who may GET /metrics on the relay port: addresses or CIDR ranges, comma-separated, or any (default: loopback only)')
    .addOption(new Option('--tap <file>', 'test only: append every received frame to FILE').hideHelp())
    .addHelpText(
      'after',
      `
Off loopback the relay serves TLS with a self-signed certificate made once in the data folder;
its fingerprint goes in every ticket, so agents pin it.

The same port answers plain GET /healthz, /readyz and /metrics (Prometheus); /metrics only to
loopback unless --metrics-from allows more (e.g. --metrics-from 10.0.0.0/8,127.0.0.1).

Examples:
  $ relay start                                   # ws://127.0.0.1:7400, data in ~/.wicket-relay
  $ relay start --listen 0.0.0.0:443 --public-url wss://relay.example.com:443 --data /var/lib/wicket-relay
  $ relay start --listen 127.0.0.1:0 --data /tmp/r --json`,
    )
    .action(async (flags: StartFlags) => {
      const listen = parseListenAddress(flags.listen);
      const tls = tlsModeOf(flags);
      const metricsAccess = flags.metricsFrom === undefined ? undefined : parseMetricsFrom(flags.metricsFrom);
      const dataDir = dataDirOf(flags.data);
      const tapFile = flags.tap ?? (process.env.WICKET_RELAY_TAP || undefined);
      const logger = createLogger('relay');
      const relay = await startRelay({
        dataDir,
        logger,
        listen,
        ...(flags.publicUrl === undefined ? {} : { publicUrl: flags.publicUrl }),
        ...(tls === undefined ? {} : { tls }),
        insecure: flags.insecure === true,
        ...(tapFile === undefined ? {} : { tapFile }),
        ...(metricsAccess === undefined ? {} : { metricsAccess }),
      });

      const lines: string[] = [];
      if (flags.json === true) {
        lines.push(
          JSON.stringify({
            url: relay.url,
            authority: relay.authorityIdentifier,
            ...(relay.adminTicket === undefined ? {} : { adminTicket: relay.adminTicket.text.reveal() }),
            ...(relay.fingerprint === undefined ? {} : { fingerprint: relay.fingerprint }),
          }),
        );
      } else {
        lines.push(`authority ${relay.authorityIdentifier}`);
        if (relay.adminTicket !== undefined) {
          const expires = new Date(relay.adminTicket.expiresAt).toISOString();
          lines.push(`admin ticket (one use, expires ${expires}; saved in ${relay.paths.adminTicket}):`, relay.adminTicket.text.reveal());
        }
        if (relay.fingerprint !== undefined) lines.push(`certificate sha256 ${relay.fingerprint}`);
        lines.push(`relay listening on ${relay.url}`);
      }
      process.stdout.write(lines.join('\n') + '\n');

      let stopping = false;
      const stop = (signal: string): void => {
        if (stopping) process.exit(1);
        stopping = true;
        logger.info({ signal }, 'stopping');
        relay.close().then(
          () => logger.flush(() => process.exit(0)),
          (err: unknown) => {
            logger.error({ err }, 'error while stopping');
            logger.flush(() => process.exit(1));
          },
        );
      };
      process.on('SIGTERM', () => stop('SIGTERM'));
      process.on('SIGINT', () => stop('SIGINT'));
    });
}
