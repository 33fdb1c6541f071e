import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { Identity } from '../../protocol/identity.js';
import { encodeData } from '../../protocol/relay-frames.js';
import { decodeTicket } from '../../protocol/ticket.js';
import { RawRelayClient } from '../helpers/raw-relay-client.js';
import { tempDir } from './relay-fixture.js';

// The relay as users and scripts run it: `node bin/relay.js …` as real processes.

const BIN = fileURLToPath(new URL('../../bin/relay.js', import.meta.url));
const STARTUP_MS = 30_000;

interface Spawned {
  readonly child: ChildProcess;
  readonly lines: string[];
  stderr: string;
  /** Resolves with stdout lines once one matches. */
  waitForLine(match: (line: string) => boolean): Promise<string>;
  exited: Promise<number | null>;
}

const children: ChildProcess[] = [];
const dirs: string[] = [];
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function dataDir(): string {
  const d = tempDir('wicket-relay-cli-');
  dirs.push(d);
  return d;
}

function spawnRelay(args: string[]): Spawned {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, WICKET_LOG_FORMAT: 'json' } });
  children.push(child);
  const lines: string[] = [];
  let partial = '';
  const waiters: { match: (l: string) => boolean; resolve: (l: string) => void }[] = [];
  const spawned: Spawned = {
    child,
    lines,
    stderr: '',
    waitForLine(match) {
      const found = lines.find(match);
      if (found !== undefined) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no matching stdout line within ${STARTUP_MS} ms; stderr: ${spawned.stderr.slice(-800)}`)), STARTUP_MS);
        waiters.push({ match, resolve: (l) => (clearTimeout(timer), resolve(l)) });
      });
    },
    exited: new Promise((resolve) => child.on('close', (code) => resolve(code))),
  };
  child.stdout!.on('data', (chunk: Buffer) => {
    partial += chunk.toString();
    const parts = partial.split('\n');
    partial = parts.pop()!;
    for (const line of parts) {
      lines.push(line);
      for (const waiter of waiters.splice(0)) {
        if (waiter.match(line)) waiter.resolve(line);
        else waiters.push(waiter);
      }
    }
  });
  child.stderr!.on('data', (chunk: Buffer) => (spawned.stderr += chunk.toString()));
  return spawned;
}

/** Runs a short command to completion. */
async function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const spawned = spawnRelay(args);
  let stdout = '';
  spawned.child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  const code = await spawned.exited;
  return { code, stdout, stderr: spawned.stderr };
}

describe('relay CLI, as a real process', () => {
  it('start --json on port 0, enroll the admin, mint a ticket from the data folder, revoke from it, stop, restart', async () => {
    const data = dataDir();
    const tap = join(data, 'tap.bin');
    const relay = spawnRelay(['start', '--listen', '127.0.0.1:0', '--data', data, '--json', '--tap', tap]);
    const first = JSON.parse(await relay.waitForLine((l) => l.startsWith('{'))) as {
      url: string;
      authority: string;
      adminTicket?: string;
      adminTicketFile?: string;
      adminTicketExpiresAt?: string;
      fingerprint?: string;
    };
    expect(first.url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+$/);
    expect(first.url).not.toMatch(/:0$/);
    expect(first.authority).toMatch(/^I[0-9a-f]{64}$/);
    expect(first.fingerprint).toBeUndefined();
    // stdout is a pipe, not a terminal: the JSON line names the 0600 file, never the ticket text.
    expect(first.adminTicket).toBeUndefined();
    expect(first.adminTicketFile).toBe(join(data, 'admin-ticket'));
    expect(Date.parse(first.adminTicketExpiresAt!)).toBeGreaterThan(Date.now());
    expect(statSync(first.adminTicketFile!).mode & 0o777).toBe(0o600);
    const adminTicket = readFileSync(first.adminTicketFile!, 'utf8').trim();
    expect(decodeTicket(adminTicket).relayUrl).toBe(first.url);
    expect(relay.lines.join('\n')).not.toContain(adminTicket.slice(5, 40));
    // Never logged either.
    expect(relay.stderr).not.toContain(adminTicket.slice(5, 40));

    const admin = await RawRelayClient.connect(first.url);
    expect(admin.authority).toBe(first.authority);
    await admin.enroll(Identity.generate(), adminTicket);

    // `relay ticket create` from the same folder while the relay runs.
    const minted = await run(['ticket', 'create', '--data', data, '--attribute', 'openai-outlet', '--attribute', 'env=prod', '--relay', 'openai', '--expires-in', '60m', '--json']);
    expect(minted.code).toBe(0);
    const ticketJson = JSON.parse(minted.stdout) as { ticket: string; ticketId: string; expiresAt: string };
    expect(Object.keys(ticketJson).sort()).toEqual(['expiresAt', 'ticket', 'ticketId']);
    const outlet = await RawRelayClient.connect(first.url);
    await outlet.enroll(Identity.generate(), ticketJson.ticket);
    expect((await outlet.register('openai')).t).toBe('registered');
    // A digits-only attribute name (a JS object would not keep it sorted): refused before anything is made.
    const digits = await run(['ticket', 'create', '--data', data, '--attribute', '9=x']);
    expect(digits.code).toBe(2);
    expect(digits.stderr).toContain('WICKET_ERR_ARGUMENT');
    const plain = await run(['ticket', 'create', '--data', data, '--attribute', 'openai-inlet']);
    expect(plain.stdout.trim()).toMatch(/^wkt1_[A-Za-z0-9_-]+$/);
    const inlet = await RawRelayClient.connect(first.url);
    await inlet.enroll(Identity.generate(), plain.stdout.trim());
    const opened = await inlet.open('openai');
    if (opened.t !== 'opened') throw new Error('open failed');
    const marker = Buffer.from('tap-marker-3f1e');
    inlet.sendRaw(encodeData(opened.circuit, marker));
    await outlet.nextData();

    // `relay member revoke` from the folder: the running relay cuts the live connection.
    const started = performance.now();
    const revoked = await run(['member', 'revoke', inlet.identity!.identifier, '--data', data, '--json']);
    expect(revoked.code).toBe(0);
    expect(JSON.parse(revoked.stdout)).toMatchObject({ identifier: inlet.identity!.identifier });
    expect((await inlet.refusal(10_000)).code).toBe('WICKET_ERR_REVOKED');
    const revokedAfterMs = performance.now() - started;
    console.log(`revocation via \`relay member revoke\` (process start included): ${revokedAfterMs.toFixed(0)} ms`);
    // Within 1.5 s of the command, its process start and the relay's store poll included.
    expect(revokedAfterMs).toBeLessThan(1_500);
    const listed = await run(['member', 'list', '--data', data, '--json']);
    const members = (JSON.parse(listed.stdout) as { members: { identifier: string; revokedAt?: string }[] }).members;
    expect(members).toHaveLength(3);
    expect(members.find((m) => m.identifier === inlet.identity!.identifier)?.revokedAt).toBeDefined();

    // SIGTERM: clean close, exit 0; the tap holds what the relay received.
    relay.child.kill('SIGTERM');
    expect(await relay.exited).toBe(0);
    await admin.closed;
    expect(readFileSync(tap).includes(marker)).toBe(true);
    // The log says where the admin ticket is and how to use it, without its text.
    expect(relay.stderr).toContain(`agent enroll --ticket-file ${first.adminTicketFile}`);
    expect(relay.stderr).not.toContain(adminTicket.slice(5, 40));

    // Restart: same authority, no new admin ticket, the admin's credential still works.
    const again = spawnRelay(['start', '--listen', '127.0.0.1:0', '--data', data, '--json']);
    const second = JSON.parse(await again.waitForLine((l) => l.startsWith('{'))) as { url: string; authority: string; adminTicket?: string };
    expect(second.authority).toBe(first.authority);
    expect(second.adminTicket).toBeUndefined();
    const back = await RawRelayClient.connect(second.url);
    await back.auth(admin.identity!, admin.credential!);
    back.ws.terminate();
    again.child.kill('SIGINT');
    expect(await again.exited).toBe(0);
  });

  it('start --tls (self-signed on loopback) prints the wss URL and the fingerprint agents pin', async () => {
    const data = dataDir();
    const relay = spawnRelay(['start', '--listen', '127.0.0.1:0', '--data', data, '--tls']);
    const listening = await relay.waitForLine((l) => l.startsWith('relay listening on '));
    const url = listening.slice('relay listening on '.length);
    expect(url).toMatch(/^wss:\/\/127\.0\.0\.1:\d+$/);
    expect(relay.lines[0]).toMatch(/^authority I[0-9a-f]{64}$/);
    // SQLite: one relay, which holds the key.
    expect(relay.lines.at(-2)).toBe('role signing (this relay holds the project key)');
    // Not a terminal: the line says where the ticket is and how to use it, not what it is.
    const ticketFile = join(data, 'admin-ticket');
    const [, expires, rest] = /^admin ticket \(one use, expires (\S+)\) saved in (.*)$/.exec(relay.lines[1]!) ?? [];
    expect(Date.parse(expires!)).toBeGreaterThan(Date.now());
    expect(rest).toBe(`${ticketFile} (0600); enroll with: agent enroll --ticket-file ${ticketFile}`);
    const ticketText = readFileSync(ticketFile, 'utf8').trim();
    expect(relay.lines.join('\n')).not.toContain(ticketText.slice(5, 40));
    const adminTicket = decodeTicket(ticketText);
    const fingerprint = relay.lines.find((l) => l.startsWith('certificate sha256 '))!.split(' ')[2]!;
    expect(fingerprint).toMatch(/^[0-9a-f]{64}$/);
    expect(adminTicket.relayCertFingerprint?.toString('hex')).toBe(fingerprint);
    const client = await RawRelayClient.connect(url);
    expect(client.peerFingerprint).toBe(fingerprint);
    await client.enroll(Identity.generate(), ticketText);
    client.ws.terminate();
    relay.child.kill('SIGTERM');
    expect(await relay.exited).toBe(0);
    // The certificate was made once: a restart serves the same one.
    const again = spawnRelay(['start', '--listen', '127.0.0.1:0', '--data', data, '--tls', '--json']);
    const second = JSON.parse(await again.waitForLine((l) => l.startsWith('{'))) as { fingerprint?: string };
    expect(second.fingerprint).toBe(fingerprint);
    again.child.kill('SIGTERM');
    await again.exited;
  });

  it('on a terminal the first start prints the admin ticket itself (and --json carries it)', async () => {
    const SCRIPT = '/usr/bin/script';
    if (!existsSync(SCRIPT)) {
      console.log(`skipped: ${SCRIPT} (util-linux) is missing, and it is what gives the relay a terminal here`);
      return;
    }
    for (const json of [false, true]) {
      const data = dataDir();
      const quoted = [process.execPath, BIN, 'start', '--listen', '127.0.0.1:0', '--data', data, ...(json ? ['--json'] : [])].map((a) => `'${a.replace(/'/g, `'\\''`)}'`);
      const child = spawn(SCRIPT, ['-qfec', quoted.join(' '), '/dev/null'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, WICKET_LOG_FORMAT: 'json' } });
      children.push(child);
      let output = '';
      child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
      const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
      const deadline = Date.now() + STARTUP_MS;
      while (!/relay listening on|"url"/.test(output) && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 50));
      const ticket = readFileSync(join(data, 'admin-ticket'), 'utf8').trim();
      if (json) {
        const line = output.split(/\r?\n/).find((l) => l.startsWith('{"url"'))!;
        expect(JSON.parse(line)).toMatchObject({ adminTicket: ticket, adminTicketFile: join(data, 'admin-ticket') });
      } else {
        expect(output).toMatch(/admin ticket \(one use, expires \S+; saved in \S+admin-ticket\):\r?\n/);
        expect(output).toContain(ticket);
      }
      // The relay.lock names the relay's pid: stop it cleanly through that.
      process.kill(Number(readFileSync(join(data, 'relay.lock'), 'utf8')), 'SIGTERM');
      expect(await exited).toBe(0);
    }
  });

  it('bad arguments exit 2 with a WICKET_ERR_ARGUMENT line on stderr and no stack trace', async () => {
    const empty = dataDir();
    const cases = [
      ['start', '--listen', 'nope', '--data', empty],
      ['start', '--listen', '127.0.0.1:99999', '--data', empty],
      ['start', '--tls-cert', 'cert.pem', '--data', empty],
      ['start', '--bogus'],
      ['ticket', 'create', '--data', empty, '--expires-in', '5x'],
      ['ticket', 'create', '--data', empty, '--attribute', 'inlet'],
      ['member', 'revoke', 'not-an-identifier', '--data', empty],
    ];
    for (const args of cases) {
      const result = await run(args);
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr, args.join(' ')).toMatch(/WICKET_ERR_ARGUMENT/);
      expect(result.stderr, args.join(' ')).not.toMatch(/\n\s+at /);
    }
  });

  it('every command has --help with an example', async () => {
    for (const args of [['--help'], ['start', '--help'], ['ticket', 'create', '--help'], ['member', 'list', '--help'], ['member', 'revoke', '--help']]) {
      const result = await run(args);
      expect(result.code, args.join(' ')).toBe(0);
      expect(result.stdout, args.join(' ')).toMatch(/Example/);
    }
  });
});
