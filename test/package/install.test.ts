import { execFile, spawnSync } from 'node:child_process';
import { cpSync, existsSync, readFileSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WICKET_VERSION } from '../../protocol/version.js';
import { ManagedProcess, REPO_ROOT, stopAll, tempDir } from '../../scripts/lib/local-processes.js';
import { sendThenFinish, startEchoServer, type EchoServer } from '../helpers/echo-server.js';

// The package as a user gets it: `npm pack` (which cleans and builds dist/), then
// `npm install -g --prefix TMP` of the tarball, then the installed `agent` and `relay` commands,
// run through their own #! lines, from a prefix that cannot see this repository's node_modules:
// --version, and a portal from relay start to bytes echoed through inlet → relay → outlet.
//
// The pack runs in a copy of the sources (its node_modules a link to ours), so the clean build it
// does never pulls dist/ out from under the tests that run beside this one. The install takes
// packages from npm's cache (--prefer-offline) and builds better-sqlite3's native module as
// `npm ci` here did: its prebuilt download comes from GitHub, and where that is out of reach
// node-gyp compiles it (python3, make, g++; the Node headers from npm's `nodedir`). That build is
// most of this file's time (about a minute on an idle 2-core machine), so it runs once, niced.

const NPM_CHECK = spawnSync('npm', ['--version'], { encoding: 'utf8' });
const NPM_MISSING = NPM_CHECK.error !== undefined ? `npm is not on PATH (${NPM_CHECK.error.message})` : undefined;
if (NPM_MISSING !== undefined) console.log(`skipping the package install test: ${NPM_MISSING}`);

const PACK_TIMEOUT_MS = 180_000;
const INSTALL_TIMEOUT_MS = 480_000;
/** Packages with install scripts the runtime needs: better-sqlite3 (fetch or build), bufferutil (pick its prebuild). */
const ALLOWED_SCRIPTS = 'better-sqlite3,bufferutil';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs a command to completion, bounded by `timeoutMs` (then SIGKILL). */
function run(command: string, args: string[], o: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<Run> {
  const started = Date.now();
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      { cwd: o.cwd ?? REPO_ROOT, env: o.env ?? process.env, timeout: o.timeoutMs ?? 30_000, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null;
        resolve({ code, stdout, stderr, ms: Date.now() - started });
      },
    );
  });
}

function expectSuccess(what: string, r: Run): void {
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code} after ${r.ms} ms)\n--- stdout\n${r.stdout.slice(-4_000)}\n--- stderr\n${r.stderr.slice(-4_000)}`);
}

/** The environment for npm, without what an enclosing `npm test` set for its own package. */
function npmEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const key of Object.keys(env)) if (/^npm_(package|lifecycle)_|^npm_config_local_prefix$|^INIT_CWD$/.test(key)) delete env[key];
  return env;
}

/** What the installed commands run with: our node first on PATH (for `#!/usr/bin/env -S node …`), JSON logs. */
function commandEnv(home?: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}`,
    WICKET_LOG_FORMAT: 'json',
    WICKET_LOG_LEVEL: 'warn',
    ...(home === undefined ? {} : { WICKET_HOME: home }),
  };
}

/** A copy of what `npm pack` needs: package.json, README, the tsconfigs and the folders the build compiles. */
function copySources(to: string): void {
  const build = JSON.parse(readFileSync(join(REPO_ROOT, 'tsconfig.build.json'), 'utf8')) as { include: string[] };
  for (const entry of ['package.json', 'README.md', 'LICENSE', 'tsconfig.json', 'tsconfig.build.json', 'bin', ...build.include]) {
    if (existsSync(join(REPO_ROOT, entry))) cpSync(join(REPO_ROOT, entry), join(to, entry), { recursive: true });
  }
  symlinkSync(realpathSync(join(REPO_ROOT, 'node_modules')), join(to, 'node_modules'), 'dir');
}

interface PackResult {
  filename: string;
  size: number;
  files: { path: string }[];
}

describe.skipIf(NPM_MISSING !== undefined)('the npm package: pack, install -g into a temporary prefix, run', () => {
  const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
    name: string;
    bin: Record<string, string>;
    dependencies: Record<string, string>;
    devDependencies: Record<string, string>;
  };
  let work: string;
  let prefix: string;
  let installed: string;
  let packed: PackResult;
  let echo: EchoServer | undefined;

  beforeAll(async () => {
    work = tempDir('wicket-pkg-');
    const src = join(work, 'src');
    copySources(src);
    const pack = await run('npm', ['pack', '--json', '--pack-destination', work], { cwd: src, env: npmEnv(), timeoutMs: PACK_TIMEOUT_MS });
    expectSuccess('npm pack', pack);
    packed = (JSON.parse(pack.stdout) as PackResult[])[0]!;

    prefix = join(work, 'prefix');
    installed = join(prefix, 'lib', 'node_modules', pkg.name);
    // Niced: the native build should not starve the tests running beside this one.
    const [command, ...niceArgs] = existsSync('/usr/bin/nice') ? ['/usr/bin/nice', '-n', '10', 'npm'] : ['npm'];
    const args = ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', `--allow-scripts=${ALLOWED_SCRIPTS}`, join(work, packed.filename)];
    const install = await run(command!, [...niceArgs, ...args], { cwd: work, env: npmEnv(), timeoutMs: INSTALL_TIMEOUT_MS });
    expectSuccess('npm install -g', install);
    console.log(`package test: npm pack ${pack.ms} ms (${packed.filename}, ${packed.size} bytes), npm install -g ${install.ms} ms`);
  }, PACK_TIMEOUT_MS + INSTALL_TIMEOUT_MS + 10_000);

  afterAll(async () => {
    await echo?.close();
    await stopAll(); // every process started below, then the temporary folders (the prefix too)
  });

  it('the tarball carries bin/, the compiled runtime folders and the README; no sources, tests, scripts or source maps', () => {
    const paths = packed.files.map((f) => f.path);
    for (const path of ['package.json', 'README.md', 'bin/launch.js', 'dist/cli/agent.js', 'dist/cli/relay.js', 'dist/relay/server.js', 'dist/agent/node.js']) expect(paths).toContain(path);
    for (const bin of Object.values(pkg.bin)) expect(paths).toContain(bin.replace(/^\.\//, ''));
    const unwanted = paths.filter((p) => /\.(ts|map)$/.test(p) || /^(test|scripts|examples|node_modules|agent|relay|cli|protocol)\//.test(p) || /^dist\/(scripts|examples|test)\//.test(p));
    expect(unwanted).toEqual([]);
  });

  it('the install holds the runtime dependencies and none of the dev ones (the Azure ARM SDKs, openai, tsx, …)', () => {
    for (const name of Object.keys(pkg.dependencies)) expect(existsSync(join(installed, 'node_modules', name)), `${name} installed`).toBe(true);
    const devInstalled = Object.keys(pkg.devDependencies).filter((name) => existsSync(join(installed, 'node_modules', name)));
    expect(devInstalled).toEqual([]);
  });

  for (const command of ['agent', 'relay']) {
    it(`the installed \`${command} --version\` prints ${WICKET_VERSION}`, async () => {
      const r = await run(join(prefix, 'bin', command), ['--version'], { cwd: work, env: commandEnv() });
      expect(r).toMatchObject({ code: 0, stdout: `${WICKET_VERSION}\n`, stderr: '' });
    });
  }

  it('the installed commands run a portal: relay start, enroll, tickets, two nodes, bytes echoed inlet → outlet', async () => {
    const agent = join(prefix, 'bin', 'agent');
    const relayCommand = join(prefix, 'bin', 'relay');
    const data = join(work, 'relay-data');
    const relay = new ManagedProcess('installed relay', relayCommand, ['start', '--listen', '127.0.0.1:0', '--data', data, '--json'], commandEnv());
    const started = await relay.waitForJson<{ url: string; adminTicket?: string }>((v) => typeof v.url === 'string');
    expect(started.url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+/);

    // The admin ticket: from the JSON line when the relay prints it there, else its 0600 file.
    const adminTicketFile = join(work, 'admin.ticket');
    if (started.adminTicket !== undefined) writeFileSync(adminTicketFile, started.adminTicket, { mode: 0o600 });
    else cpSync(join(data, 'admin-ticket'), adminTicketFile);

    const enroll = async (home: string, ticketFile: string): Promise<string> => {
      const r = await run(agent, ['enroll', '--ticket-file', ticketFile, '--json'], { cwd: work, env: commandEnv(home) });
      expectSuccess(`agent enroll (${home})`, r);
      return (JSON.parse(r.stdout) as { identifier: string }).identifier;
    };
    const adminHome = join(work, 'admin');
    await enroll(adminHome, adminTicketFile);

    const ticketFor = async (name: string, args: string[]): Promise<string> => {
      const r = await run(agent, ['ticket', 'create', ...args], { cwd: work, env: commandEnv(adminHome) });
      expectSuccess(`agent ticket create ${args.join(' ')}`, r);
      const file = join(work, `${name}.ticket`);
      writeFileSync(file, r.stdout.trim(), { mode: 0o600 });
      return file;
    };
    const outletHome = join(work, 'outlet');
    const inletHome = join(work, 'inlet');
    await enroll(outletHome, await ticketFor('outlet', ['--attribute', 'svc-outlet', '--relay', 'svc']));
    await enroll(inletHome, await ticketFor('inlet', ['--attribute', 'svc-inlet']));

    echo = await startEchoServer();
    const startNode = async (home: string, config: object): Promise<ManagedProcess & { ready: Record<string, unknown> }> => {
      const file = join(home, 'node.json');
      writeFileSync(file, JSON.stringify(config), { mode: 0o600 });
      const node = new ManagedProcess(`installed node ${home}`, agent, ['node', 'start', '--json', '--config', file], commandEnv(home));
      return Object.assign(node, { ready: await node.waitForJson((v) => v.ready === true) });
    };
    await startNode(outletHome, { outlets: [{ name: 'svc', to: echo.address, relay: 'svc', allow: 'svc-inlet' }] });
    const inlet = await startNode(inletHome, { inlets: [{ name: 'svc', from: '127.0.0.1:0', via: 'svc', allow: 'svc-outlet' }] });
    const inletAddress = (inlet.ready.inlets as { name: string; address: string }[]).find((i) => i.name === 'svc')?.address;
    expect(inletAddress, JSON.stringify(inlet.ready)).toMatch(/^127\.0\.0\.1:\d+$/);

    const payload = Buffer.alloc(256 * 1024);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 31 + 7) & 0xff;
    const outcome = await sendThenFinish(inletAddress!, payload, 20_000);
    expect(outcome.ending).toBe('end');
    expect(outcome.received.equals(payload)).toBe(true);
    // One connection is the outlet's target check at start, the other this stream.
    expect(echo.accepted()).toBe(2);
  });
});
