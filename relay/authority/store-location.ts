import { wicketError } from '../../protocol/errors.js';

// Where the authority's state lives: SQLite in the data folder (the default), or a PostgreSQL
// database shared by several relays (`--store postgres://…`). The URL is parsed here, once, into
// connection settings, so that nothing else ever handles (or prints) its text: it may carry a
// password. Every message about the store names it by `shown`, with the password replaced.
//
//   postgres://user[:password]@host[:port]/database[?param=value&…]   (postgresql:// too)
//   postgres://user@/database?host=/run/postgresql                     (a socket folder)
//
// Parameters: host (a socket folder, or a host name), port, user, password, application_name,
// sslmode (disable, the default; require: TLS without checking the certificate; verify-full).
// Without a password in the URL, pg reads PGPASSWORD or ~/.pgpass, which keeps it off the
// command line.

export type StoreLocation = { readonly kind: 'sqlite' } | PostgresLocation;

export interface PostgresConnection {
  readonly host?: string;
  readonly port?: number;
  readonly user?: string;
  readonly password?: string;
  readonly database?: string;
  readonly application_name?: string;
  readonly ssl?: boolean | { readonly rejectUnauthorized: boolean };
}

export interface PostgresLocation {
  readonly kind: 'postgres';
  readonly connection: PostgresConnection;
  /** The URL with any password replaced by ***: the only form that may be printed or logged. */
  readonly shown: string;
}

export const STORE_OPTION = '--store';
const URL_SHAPE = /^(postgres|postgresql):\/\/(?:([^@/?#]*)@)?([^/?#]*)(?:\/([^?#]*))?(?:\?([^#]*))?$/;
const SSL_MODES: Record<string, PostgresConnection['ssl']> = { disable: false, require: { rejectUnauthorized: false }, 'verify-full': true };
const KNOWN_PARAMS = new Set(['host', 'port', 'user', 'password', 'sslmode', 'application_name']);

function argument(detail: string): Error {
  return wicketError('WICKET_ERR_ARGUMENT', `${STORE_OPTION} ${detail}`);
}

function decoded(text: string, what: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw argument(`has a badly escaped ${what}`);
  }
}

function portOf(text: string): number {
  if (!/^\d{1,5}$/.test(text) || Number(text) < 1 || Number(text) > 65_535) throw argument('port must be a number from 1 to 65535');
  return Number(text);
}

/** The printable form of a store URL: the password (in userinfo or ?password=) becomes ***. */
export function redactStoreUrl(text: string): string {
  return text.replace(/^([a-z]+:\/\/[^:@/?#]*:)[^@/?#]*@/i, '$1***@').replace(/([?&]password=)[^&#]*/gi, '$1***');
}

/** Parses `--store`: undefined or "sqlite" is the data folder's SQLite file. Throws WICKET_ERR_ARGUMENT (never echoing a password). */
export function parseStoreLocation(text: string | undefined): StoreLocation {
  if (text === undefined || text.trim() === 'sqlite') return { kind: 'sqlite' };
  const trimmed = text.trim();
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(trimmed)?.[1];
  if (scheme !== undefined && !/^postgres(ql)?$/i.test(scheme)) {
    throw argument(`scheme ${JSON.stringify(scheme.slice(0, 20))} is not supported; use sqlite (the default) or postgres://user@host:port/database`);
  }
  const match = URL_SHAPE.exec(trimmed);
  if (match === null) throw argument('must be sqlite or postgres://user[:password]@host[:port]/database[?host=/socket/folder]');
  const [, , userinfo = '', hostport = '', path = '', query = ''] = match;
  const connection: { -readonly [K in keyof PostgresConnection]: PostgresConnection[K] } = {};
  if (userinfo !== '') {
    const colon = userinfo.indexOf(':');
    const user = decoded(colon < 0 ? userinfo : userinfo.slice(0, colon), 'user name');
    if (user !== '') connection.user = user;
    if (colon >= 0) connection.password = decoded(userinfo.slice(colon + 1), 'password');
  }
  if (hostport !== '') {
    const bracketed = /^\[([0-9A-Fa-f:.]+)\](?::(.*))?$/.exec(hostport);
    const [host, port] = bracketed !== null ? [bracketed[1]!, bracketed[2]] : hostport.split(':', 3).length > 2 ? [undefined, undefined] : (hostport.split(':') as [string, string?]);
    if (host === undefined || !/^[A-Za-z0-9.:_-]*$/.test(host)) throw argument('has a host that is not a name or an address (IPv6 goes in brackets)');
    if (host !== '') connection.host = host;
    if (port !== undefined && port !== '') connection.port = portOf(port);
  }
  if (path !== '') connection.database = decoded(path, 'database name');
  for (const pair of query === '' ? [] : query.split('&')) {
    const eq = pair.indexOf('=');
    const key = decoded(eq < 0 ? pair : pair.slice(0, eq), 'parameter');
    const value = decoded(eq < 0 ? '' : pair.slice(eq + 1), 'parameter value');
    if (!KNOWN_PARAMS.has(key)) throw argument(`parameter ${JSON.stringify(key.slice(0, 40))} is not supported (known: ${[...KNOWN_PARAMS].join(', ')})`);
    if (key === 'port') connection.port = portOf(value);
    else if (key === 'sslmode') {
      if (!Object.hasOwn(SSL_MODES, value)) throw argument(`sslmode must be one of ${Object.keys(SSL_MODES).join(', ')}`);
      connection.ssl = SSL_MODES[value];
    } else if (value === '') throw argument(`parameter ${key} is empty`);
    else connection[key as 'host' | 'user' | 'password' | 'application_name'] = value;
  }
  if (connection.host === undefined) throw argument('names no host: give host:port, or ?host=/socket/folder');
  return { kind: 'postgres', connection, shown: redactStoreUrl(trimmed) };
}
