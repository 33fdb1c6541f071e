import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

// A throwaway PostgreSQL 15 cluster for the tests and the scale bench (scripts/bench/scale.ts):
// initdb in a temp folder, postgres on a free loopback port and a socket folder inside it,
// stopped and removed by stop(). PostgreSQL refuses to run as root, so under root every
// PostgreSQL program runs as the `postgres` system user (runuser) on a folder that user owns.
// Host connections need the password (scram-sha-256), so tests that give one in a URL prove it
// is never printed; the socket is trusted.

const run = promisify(execFile);
const BIN_DIRS = [process.env.WICKET_PG_BIN, '/usr/lib/postgresql/15/bin'].filter((d): d is string => d !== undefined && d !== '');
/** Every PostgreSQL program here gets this long at most (pg_ctl waits up to its own -t inside). */
const COMMAND_TIMEOUT_MS = 60_000;
const PG_CTL_WAIT_S = 30;

export const PG_USER = 'wicket';

export interface PostgresCluster {
  readonly port: number;
  readonly socketDir: string;
  readonly password: string;
  /** postgres://wicket:PASSWORD@127.0.0.1:PORT/NAME */
  url(database: string): string;
  /** Creates a fresh database and returns its name. */
  createDatabase(prefix?: string): Promise<string>;
  /** Runs one SQL statement as the superuser over the socket (psql -c); returns its output. */
  sql(database: string, statement: string): Promise<string>;
  /** pg_ctl stop -m fast (every session is cut), waiting until it is down. */
  stopServer(): Promise<void>;
  startServer(): Promise<void>;
  /** Stops the server and removes the folder. */
  stop(): Promise<void>;
}

/** The folder holding initdb, or why PostgreSQL tests cannot run here. */
export function postgresBinaries(): { bin: string } | { skip: string } {
  for (const dir of BIN_DIRS) if (existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'pg_ctl'))) return { bin: dir };
  return { skip: `no PostgreSQL binaries (initdb, pg_ctl) in ${BIN_DIRS.join(' or ')}; install Debian's postgresql (scripts/ci-setup.sh) or set WICKET_PG_BIN` };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

export async function startPostgresCluster(): Promise<PostgresCluster> {
  const found = postgresBinaries();
  if ('skip' in found) throw new Error(found.skip);
  const asRoot = process.getuid?.() === 0;
  const base = mkdtempSync(join(tmpdir(), 'wicket-pg-'));
  const data = join(base, 'data');
  const socketDir = base;
  const password = `pw-${Math.random().toString(36).slice(2)}-secret`;
  const passwordFile = join(base, 'pwfile');
  writeFileSync(passwordFile, password, { mode: 0o600 });
  if (asRoot) {
    const { stdout } = await run('id', ['-u', 'postgres']);
    const { stdout: gid } = await run('id', ['-g', 'postgres']);
    chownSync(base, Number(stdout.trim()), Number(gid.trim()));
    chownSync(passwordFile, Number(stdout.trim()), Number(gid.trim()));
  }
  const pg = (program: string, args: string[]) => {
    const command = join(found.bin, program);
    return asRoot
      ? run('runuser', ['-u', 'postgres', '--', command, ...args], { timeout: COMMAND_TIMEOUT_MS, cwd: base })
      : run(command, args, { timeout: COMMAND_TIMEOUT_MS, cwd: base });
  };
  await pg('initdb', ['-D', data, '-U', PG_USER, `--pwfile=${passwordFile}`, '--auth-local=trust', '--auth-host=scram-sha-256', '-E', 'UTF8', '--no-sync', '--no-instructions']);
  rmSync(passwordFile);
  const port = await freePort();
  const options = `-p ${port} -k ${socketDir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200`;
  const start = () => pg('pg_ctl', ['-D', data, '-l', join(base, 'postgres.log'), '-w', '-t', String(PG_CTL_WAIT_S), '-o', options, 'start']).then(() => undefined);
  const stopServer = () => pg('pg_ctl', ['-D', data, '-m', 'fast', '-w', '-t', String(PG_CTL_WAIT_S), 'stop']).then(() => undefined);
  const sql = async (database: string, statement: string) =>
    (await pg('psql', ['-h', socketDir, '-p', String(port), '-U', PG_USER, '-d', database, '-X', '-A', '-t', '-c', statement])).stdout;
  await start();
  let counter = 0;
  return {
    port,
    socketDir,
    password,
    url: (database) => `postgres://${PG_USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`,
    async createDatabase(prefix = 'wicket') {
      const name = `${prefix}_${process.pid}_${++counter}`;
      await sql('postgres', `CREATE DATABASE ${name}`);
      return name;
    },
    sql,
    stopServer,
    startServer: start,
    async stop() {
      await stopServer().catch(() => undefined);
      rmSync(base, { recursive: true, force: true });
    },
  };
}
