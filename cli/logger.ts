import { destination, pino, type Logger } from 'pino';

export type { Logger };

// Field names that could ever hold secret material. Secrets are wrapped in `Secret` (which prints
// [REDACTED]) before they get near a logger; this list is the second belt in case one is not.
const REDACT_PATHS = ['secret', 'ticket', 'privateKey', 'seed', 'apiKey', 'api-key', 'authorization', '*.secret', '*.ticket', '*.privateKey', '*.apiKey'];

/**
 * The one logger factory: JSON lines (for journald and log shippers), readable when stderr is a
 * terminal. Logs go to stderr so stdout stays clean for command output and `--json`.
 * Level from WICKET_LOG_LEVEL (default info).
 */
export function createLogger(name: string, options: { level?: string; pretty?: boolean } = {}): Logger {
  const level = options.level ?? process.env.WICKET_LOG_LEVEL ?? 'info';
  const pretty = options.pretty ?? (process.stderr.isTTY && process.env.WICKET_LOG_FORMAT !== 'json');
  const redact = { paths: REDACT_PATHS, censor: '[REDACTED]' };
  if (pretty) {
    return pino({ name, level, redact, transport: { target: 'pino-pretty', options: { destination: 2, colorize: true, translateTime: 'SYS:HH:MM:ss.l' } } });
  }
  return pino({ name, level, redact }, destination({ fd: 2, sync: false }));
}
