import { destination, pino, type Logger } from 'pino';
import { wicketError } from '../protocol/errors.js';

export type { Logger };

// Field names that could ever hold secret material. Secrets are wrapped in `Secret` (which prints
// [REDACTED]) before they get near a logger; this list is the second belt in case one is not.
const REDACT_PATHS = ['secret', 'ticket', 'privateKey', 'seed', 'apiKey', 'api-key', 'authorization', '*.secret', '*.ticket', '*.privateKey', '*.apiKey'];

/** pino's levels, most to least severe; `silent` logs nothing. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Set by `--log-level` (both programs' global option); wins over WICKET_LOG_LEVEL. */
let levelFromOption: LogLevel | undefined;

function checkLevel(value: string, source: string): LogLevel {
  if ((LOG_LEVELS as readonly string[]).includes(value)) return value as LogLevel;
  // A level is a plain word: an unknown one is shown (cut short) so the typo is visible.
  throw wicketError('WICKET_ERR_ARGUMENT', `${source} ${JSON.stringify(value.slice(0, 20))} is not a log level; use one of ${LOG_LEVELS.join(', ')}`);
}

/**
 * Checks `--log-level` (when given; it wins) or else WICKET_LOG_LEVEL before a command runs, so a
 * bad level is a WICKET_ERR_ARGUMENT naming the option or variable rather than a crash inside
 * pino later.
 */
export function chooseLogLevel(option: string | undefined): void {
  levelFromOption = option === undefined ? undefined : checkLevel(option, '--log-level');
  if (levelFromOption === undefined) levelFromEnvironment();
}

function levelFromEnvironment(): LogLevel | undefined {
  const value = process.env.WICKET_LOG_LEVEL;
  return value === undefined || value === '' ? undefined : checkLevel(value, 'WICKET_LOG_LEVEL');
}

/** The level the user asked for (--log-level, else WICKET_LOG_LEVEL), or undefined for the command's default. */
export function chosenLogLevel(): LogLevel | undefined {
  return levelFromOption ?? levelFromEnvironment();
}

/**
 * The one logger factory: JSON lines (for journald and log shippers), readable when stderr is a
 * terminal. Logs go to stderr so stdout stays clean for command output and `--json`.
 * Level from --log-level, else WICKET_LOG_LEVEL, else `defaultLevel` (info). JSON lines carry the
 * level by name (`"level":"warn"`), which a reader of the journal need not look up.
 */
export function createLogger(name: string, options: { defaultLevel?: LogLevel; pretty?: boolean } = {}): Logger {
  const level = chosenLogLevel() ?? options.defaultLevel ?? 'info';
  const pretty = options.pretty ?? (process.stderr.isTTY && process.env.WICKET_LOG_FORMAT !== 'json');
  const redact = { paths: REDACT_PATHS, censor: '[REDACTED]' };
  if (pretty) {
    return pino({ name, level, redact, transport: { target: 'pino-pretty', options: { destination: 2, colorize: true, translateTime: 'SYS:HH:MM:ss.l' } } });
  }
  return pino({ name, level, redact, formatters: { level: (label) => ({ level: label }) } }, destination({ fd: 2, sync: false }));
}
