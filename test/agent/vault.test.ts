import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { defaultHome, Vault, type Enrollment } from '../../agent/vault.js';
import { isWicketError } from '../../protocol/errors.js';
import { Identity } from '../../protocol/identity.js';

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'wicket-vault-'));
});
afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

function modeOf(path: string): number {
  return statSync(path).mode & 0o777;
}

function sampleEnrollment(vault: Vault, overrides: Partial<Enrollment> = {}): Enrollment {
  return {
    relayUrl: 'wss://relay.example:443',
    relayCertFingerprint: Buffer.alloc(32, 7),
    authorityPublicKey: Identity.generate().publicKey,
    identifier: vault.identity().identifier,
    credential: Buffer.from('not-a-real-credential'),
    enrolledAt: 1_700_000_000_000,
    ...overrides,
  };
}

function expectCode(fn: () => unknown, code: string): void {
  try {
    fn();
  } catch (err) {
    expect(isWicketError(err) ? err.code : err).toBe(code);
    return;
  }
  throw new Error(`expected ${code}, nothing was thrown`);
}

describe('Vault', () => {
  it('creates the home with mode 0700 and the identity key with mode 0600 holding a raw 32-byte seed', () => {
    const home = join(root, 'home');
    const vault = Vault.open(home);
    expect(modeOf(home)).toBe(0o700);
    expect(vault.controlSocketPath).toBe(join(home, 'control.sock'));
    const identity = vault.identity();
    const keyFile = join(home, 'identity.key');
    expect(modeOf(keyFile)).toBe(0o600);
    expect(readFileSync(keyFile).length).toBe(32);
    expect(identity.identifier).toMatch(/^I[0-9a-f]{64}$/);
  });

  it('re-opening the home gives the same identity (created once, never rewritten)', () => {
    const home = join(root, 'home');
    const first = Vault.open(home).identity();
    const keyBefore = readFileSync(join(home, 'identity.key'));
    const second = Vault.open(home).identity();
    expect(second.identifier).toBe(first.identifier);
    expect(readFileSync(join(home, 'identity.key')).equals(keyBefore)).toBe(true);
  });

  it('refuses a group- or world-readable identity key with WICKET_ERR_KEY_FILE_PERMISSIONS', () => {
    const home = join(root, 'home');
    Vault.open(home).identity();
    const keyFile = join(home, 'identity.key');
    for (const mode of [0o640, 0o604, 0o644]) {
      chmodSync(keyFile, mode);
      expectCode(() => Vault.open(home).identity(), 'WICKET_ERR_KEY_FILE_PERMISSIONS');
    }
    chmodSync(keyFile, 0o400);
    expect(Vault.open(home).identity().identifier).toMatch(/^I/);
  });

  it('refuses a key file of the wrong length instead of using it', () => {
    const home = join(root, 'home');
    Vault.open(home);
    writeFileSync(join(home, 'identity.key'), Buffer.alloc(31), { mode: 0o600 });
    expectCode(() => Vault.open(home).identity(), 'WICKET_ERR_KEY_INVALID');
  });

  it('has no enrollment until one is saved; requireEnrollment says WICKET_ERR_NOT_ENROLLED', () => {
    const vault = Vault.open(join(root, 'home'));
    expect(vault.enrollment()).toBeUndefined();
    expectCode(() => vault.requireEnrollment(), 'WICKET_ERR_NOT_ENROLLED');
  });

  it('saves the enrollment with mode 0600 and reads it back exactly after re-opening', () => {
    const home = join(root, 'home');
    const vault = Vault.open(home);
    const e = sampleEnrollment(vault);
    vault.saveEnrollment(e);
    expect(modeOf(join(home, 'enrollment.json'))).toBe(0o600);
    const back = Vault.open(home).requireEnrollment();
    expect(back.relayUrl).toBe(e.relayUrl);
    expect(back.relayCertFingerprint?.equals(e.relayCertFingerprint!)).toBe(true);
    expect(back.authorityPublicKey.equals(e.authorityPublicKey)).toBe(true);
    expect(back.identifier).toBe(e.identifier);
    expect(back.credential.equals(e.credential)).toBe(true);
    expect(back.enrolledAt).toBe(e.enrolledAt);
  });

  it('an enrollment without a pinned certificate round-trips without one', () => {
    const vault = Vault.open(join(root, 'home'));
    const { relayCertFingerprint: _omit, ...rest } = sampleEnrollment(vault);
    vault.saveEnrollment(rest);
    expect(vault.requireEnrollment().relayCertFingerprint).toBeUndefined();
  });

  it('saveCredential replaces only the credential', () => {
    const vault = Vault.open(join(root, 'home'));
    const e = sampleEnrollment(vault);
    vault.saveEnrollment(e);
    vault.saveCredential(Buffer.from('fresh'));
    const back = vault.requireEnrollment();
    expect(back.credential.toString()).toBe('fresh');
    expect(back.relayUrl).toBe(e.relayUrl);
    expect(back.authorityPublicKey.equals(e.authorityPublicKey)).toBe(true);
  });

  it('writes atomically: no temp file is left behind and a reader sees the old or the new file whole', () => {
    const home = join(root, 'home');
    const vault = Vault.open(home);
    vault.saveEnrollment(sampleEnrollment(vault));
    for (let i = 0; i < 50; i++) {
      vault.saveCredential(Buffer.from(`credential-${i}`));
      // Every read in between parses: the file is replaced by rename, never rewritten in place.
      expect(Vault.open(home).requireEnrollment().credential.toString()).toBe(`credential-${i}`);
    }
    expect(readdirSync(home).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('atomic under a concurrent reader: another process never sees a half-written enrollment', async () => {
    const home = join(root, 'home');
    const vault = Vault.open(home);
    vault.saveEnrollment(sampleEnrollment(vault, { credential: Buffer.alloc(8_000, 1) }));
    const file = join(home, 'enrollment.json');
    const stopFile = join(root, 'stop');
    // The reader parses the file in a loop (bounded: 20 s or the stop file) and reports counts.
    const reader = spawn(
      process.execPath,
      [
        '-e',
        `const fs = require('node:fs'); let reads = 0, torn = 0; const end = Date.now() + 20000;
         process.stdout.write('ready\\n');
         while (!fs.existsSync(${JSON.stringify(stopFile)}) && Date.now() < end) {
           try { JSON.parse(fs.readFileSync(${JSON.stringify(file)}, 'utf8')); reads++; } catch { torn++; }
         }
         process.stdout.write(JSON.stringify({ reads, torn }) + '\\n');`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const lines = createInterface({ input: reader.stdout! });
    const output: string[] = [];
    lines.on('line', (l) => output.push(l));
    for (let i = 0; i < 100 && output.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(output[0]).toBe('ready');
    for (let i = 0; i < 300; i++) vault.saveCredential(Buffer.alloc(8_000 + (i % 7) * 1_000, i % 256));
    writeFileSync(stopFile, '');
    await once(reader, 'exit');
    const result = JSON.parse(output[1]!) as { reads: number; torn: number };
    expect(result.reads).toBeGreaterThan(0);
    expect(result.torn).toBe(0);
  });

  it('the relay list of a several-relay ticket round-trips, survives saveCredential, and a home without one (older) reads as one relay', () => {
    const vault = Vault.open(join(root, 'home'));
    const otherRelays = [{ url: 'wss://b.example:443', fingerprint: Buffer.alloc(32, 9) }, { url: 'wss://c.example:443' }];
    vault.saveEnrollment(sampleEnrollment(vault, { otherRelays }));
    vault.saveCredential(Buffer.from('fresh'));
    expect(vault.requireEnrollment().otherRelays).toEqual(otherRelays);
    vault.saveEnrollment(sampleEnrollment(vault));
    expect(JSON.parse(readFileSync(join(vault.home, 'enrollment.json'), 'utf8'))).not.toHaveProperty('otherRelays');
    expect(vault.requireEnrollment().otherRelays).toBeUndefined();
  });

  it('a hostile relay list in enrollment.json is WICKET_ERR_CONFIG', () => {
    const home = join(root, 'home');
    const vault = Vault.open(home);
    vault.saveEnrollment(sampleEnrollment(vault));
    const good = JSON.parse(readFileSync(join(home, 'enrollment.json'), 'utf8')) as Record<string, unknown>;
    const lists: unknown[] = ['wss://b', [null], [{ url: '' }], [{ url: 'x'.repeat(600) }], [{ url: 'wss://b', fingerprint: 'AA==' }], Array.from({ length: 8 }, (_, i) => ({ url: `wss://r${i}` }))];
    for (const otherRelays of lists) {
      writeFileSync(join(home, 'enrollment.json'), JSON.stringify({ ...good, otherRelays }), { mode: 0o600 });
      expectCode(() => vault.enrollment(), 'WICKET_ERR_CONFIG');
    }
  });

  it('a corrupt enrollment file is a clear WICKET_ERR_CONFIG, not a crash', () => {
    const home = join(root, 'home');
    const vault = Vault.open(home);
    for (const text of ['{', '[]', '{"version":2}', JSON.stringify({ version: 1, relayUrl: 'ws://x', authorityPublicKey: 'AA==', identifier: 'I00', credential: 'AA==', enrolledAt: 1 })]) {
      writeFileSync(join(home, 'enrollment.json'), text, { mode: 0o600 });
      expectCode(() => vault.enrollment(), 'WICKET_ERR_CONFIG');
    }
  });

  it('saveEnrollment refuses a malformed enrollment before touching the disk', () => {
    const home = join(root, 'home');
    const vault = Vault.open(home);
    expectCode(() => vault.saveEnrollment(sampleEnrollment(vault, { authorityPublicKey: Buffer.alloc(5) })), 'WICKET_ERR_CONFIG');
    expect(vault.enrollment()).toBeUndefined();
  });

  it('defaultHome is $WICKET_HOME, else ~/.wicket', () => {
    const saved = process.env.WICKET_HOME;
    try {
      process.env.WICKET_HOME = join(root, 'elsewhere');
      expect(defaultHome()).toBe(join(root, 'elsewhere'));
      delete process.env.WICKET_HOME;
      expect(defaultHome()).toMatch(/\.wicket$/);
    } finally {
      if (saved === undefined) delete process.env.WICKET_HOME;
      else process.env.WICKET_HOME = saved;
    }
  });
});
