import { isWicketError, wicketError, type WicketError } from '../../protocol/errors.js';

// What a PostgreSQL failure means to a relay. A server that is down, restarting, refusing or too
// slow is WICKET_ERR_STORE_UNAVAILABLE (the relay goes on forwarding and recovers by itself); any
// other failure is WICKET_ERR_STORE. Messages name the store by its redacted URL and the failure
// by its SQLSTATE or errno code: never a query's values, never the connection settings.

const UNAVAILABLE_ERRNO = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE', 'ENOENT']);
/** admin_shutdown, crash_shutdown, cannot_connect_now, too_many_connections. */
const UNAVAILABLE_SQLSTATE = new Set(['57P01', '57P02', '57P03', '53300']);
/** pg's own words when a connection ends or a query runs out of time. */
const UNAVAILABLE_TEXT = /timeout|terminated|not queryable|Connection ended|closed/i;

function reasonOf(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && /^[A-Z0-9_]{3,20}$/.test(code)) return code;
  const message = err instanceof Error ? err.message : String(err);
  // pg's connection messages are fixed phrases; anything else is cut to a short, value-free line.
  return UNAVAILABLE_TEXT.test(message) ? message.split('\n')[0]!.slice(0, 80) : 'unexpected error';
}

export function isUnavailable(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && (UNAVAILABLE_ERRNO.has(code) || UNAVAILABLE_SQLSTATE.has(code) || code.startsWith('08'))) return true;
  return typeof code !== 'string' && err instanceof Error && UNAVAILABLE_TEXT.test(err.message);
}

/** `what` failed against the store `shown` (the redacted URL): the WicketError to throw. */
export function storeFailure(what: string, err: unknown, shown: string): WicketError {
  if (isWicketError(err)) return err;
  if (isUnavailable(err)) return wicketError('WICKET_ERR_STORE_UNAVAILABLE', `${what} failed: PostgreSQL at ${shown} is unavailable (${reasonOf(err)})`);
  const code = (err as { code?: unknown }).code;
  if (code === '28P01' || code === '28000') return wicketError('WICKET_ERR_STORE', `${what} failed: PostgreSQL at ${shown} refused the login (${code}); check the user and password (PGPASSWORD or ~/.pgpass)`);
  if (code === '3D000') return wicketError('WICKET_ERR_STORE', `${what} failed: PostgreSQL at ${shown} has no such database (3D000); create it first (createdb)`);
  return wicketError('WICKET_ERR_STORE', `${what} failed on PostgreSQL at ${shown} (${reasonOf(err)})`);
}
