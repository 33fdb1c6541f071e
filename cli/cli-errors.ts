import { CommanderError, type Command } from 'commander';
import { asWicketError, wicketError, type WicketError } from '../protocol/errors.js';

// How every Wicket command fails: one line `error: WICKET_ERR_…: message` on stderr, exit code 2
// for usage errors (WICKET_ERR_ARGUMENT), 3 when `agent node start` meets its own revocation,
// and 1 for everything else. Never a stack trace (set
// WICKET_DEBUG=1 to get one), never a secret: ticket texts from the command line are masked in
// every message, and option values commander would echo back are only shown when they look
// like plain words.

export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
/**
 * `agent node start` ends with this when the relay says the node's identity was revoked: no
 * restart can fix that, so service managers are told not to try (the units in examples/deploy/
 * carry `RestartPreventExitStatus=3`).
 */
export const EXIT_REVOKED = 3;

/** Texts that must never be printed (tickets given on the command line). */
const secretTexts = new Set<string>();

/** Masks `text` in every error message printed from now on (ignored when too short to matter). */
export function registerSecretText(text: string | undefined): void {
  if (text !== undefined && text.trim().length >= 6) secretTexts.add(text.trim());
}

/** Finds ticket-like command-line values (`--ticket X`, `--ticket=X`, anything starting wkt…). */
export function registerSecretArgs(argv: readonly string[]): void {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--ticket') registerSecretText(argv[i + 1]);
    else if (arg.startsWith('--ticket=')) registerSecretText(arg.slice('--ticket='.length));
    const eq = arg.indexOf('=');
    const value = arg.startsWith('-') && eq >= 0 ? arg.slice(eq + 1) : arg;
    if (/^wkt/i.test(value.trim())) registerSecretText(value);
  }
}

export function redactSecrets(message: string): string {
  let out = message;
  for (const secret of secretTexts) out = out.split(secret).join('[REDACTED]');
  // A ticket-shaped token that slipped through (e.g. a variant of a registered one).
  return out.replace(/wkt\d*_[A-Za-z0-9_-]{4,}/g, 'wkt…[REDACTED]');
}

/** A usage error: exit code 2. */
export function usageError(detail: string): WicketError {
  return wicketError('WICKET_ERR_ARGUMENT', detail);
}

export function exitCodeOf(err: WicketError): number {
  return err.code === 'WICKET_ERR_ARGUMENT' ? EXIT_USAGE : EXIT_FAILURE;
}

/** A word commander may echo back (an option or command name), or undefined when it may be data. */
function safeWord(text: string): string | undefined {
  const name = text.split('=')[0]!;
  return /^-{0,2}[A-Za-z][A-Za-z0-9:-]{0,40}$/.test(name) ? name : undefined;
}

/**
 * An option as we declare it (`--to <host:port>`, `-n, --name [name]`): commander quotes our own
 * declaration in "required option '…' not specified" and "option '…' argument missing". It holds
 * no user input, and naming it is the whole point of the message.
 */
const OPTION_DECLARATION = /^(?:-[A-Za-z], )?--[a-z][a-z0-9-]{0,40}(?: [<[][a-z][a-z0-9:._-]{0,40}[>\]])?$/;

/** Commander's own parse errors, rephrased as WICKET_ERR_ARGUMENT without echoing values. */
export function fromCommanderError(err: CommanderError): WicketError {
  const raw = err.message.replace(/^error:\s*/, '');
  // Commander quotes the offending token: show it only if it is a plain word or one of our option
  // declarations; anything else may be a value the user typed (a ticket, a key).
  const message = raw.replace(/'([^']*)'/g, (_m, token: string) => {
    const word = OPTION_DECLARATION.test(token) ? token : safeWord(token);
    return word !== undefined ? `'${word}'` : '(value not shown)';
  });
  return usageError(`${message}${/--help/.test(message) ? '' : ' (see --help)'}`);
}

/** One line for stderr. */
export function formatCliError(err: unknown): string {
  const e = asWicketError(err);
  const text = redactSecrets(e.message.replace(/\s*\n\s*/g, ' '));
  return `error: ${text}`;
}

/** Prints `err` and returns the exit code. */
export function reportError(err: unknown): number {
  const e = err instanceof CommanderError ? fromCommanderError(err) : asWicketError(err);
  process.stderr.write(formatCliError(e) + '\n');
  if (process.env.WICKET_DEBUG === '1' && err instanceof Error && err.stack !== undefined) {
    process.stderr.write(redactSecrets(err.stack) + '\n');
  }
  return exitCodeOf(e);
}

/**
 * Makes commander throw instead of exiting, and keeps its own error text off stderr (we print our
 * one line instead). Applied to every command in the tree, so it holds whatever the order in
 * which the command groups were registered.
 */
export function configureErrors(command: Command): void {
  command.exitOverride();
  command.configureOutput({ outputError: () => {} });
  for (const sub of command.commands) configureErrors(sub);
}

/** Parses argv and runs the command; on failure prints one line and exits 1 or 2. */
export async function runCli(program: Command, argv: readonly string[]): Promise<void> {
  // Everything either program writes (keys, the authority store and its SQLite side files, the
  // control socket, certificates) is for its own user only: files 0600, folders 0700, even where
  // a file is created by a library that does not take a mode. The files that set modes
  // explicitly keep doing so; this catches the rest.
  process.umask(0o077);
  registerSecretArgs(argv.slice(2));
  configureErrors(program);
  try {
    await program.parseAsync(argv as string[]);
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version print and end here.
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') process.exit(0);
      // A command group called without a subcommand: commander printed its help on stderr.
      if (err.code === 'commander.help') process.exit(err.exitCode === 0 ? 0 : reportError(usageError('missing command (see the list above)')));
    }
    process.exit(reportError(err));
  }
}

