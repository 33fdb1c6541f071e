import { chmodSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Vault } from '../../agent/vault.js';
import { SqliteStore } from '../../relay/authority/sqlite-store.js';
import { ensureDataDir } from '../../relay/data-dir.js';
import { enrollAgent, startNodeProcess, startRelayProcess, stopAll, tempDir as processTempDir } from '../../scripts/lib/local-processes.js';
import { relaysStoppedAfterEach, testTempDir } from './relay-fixture.js';

// Secrets at rest (DESIGN.md property 8): everything in the relay's data folder and an agent's
// home is its owner's only, SQLite's side files included (-wal and -shm hold recent pages of the
// database; another local user read them when they were created 0644 next to a 0600 database).

const relay = relaysStoppedAfterEach();
afterAll(stopAll);

/** Every path under `dir` (itself included) whose mode lets anyone but the owner in. */
function openToOthers(dir: string): string[] {
  const found: string[] = [];
  const visit = (path: string): void => {
    const stat = statSync(path);
    if ((stat.mode & 0o077) !== 0) found.push(`${path} ${(stat.mode & 0o777).toString(8)}`);
    if (stat.isDirectory()) for (const entry of readdirSync(path)) visit(join(path, entry));
  };
  visit(dir);
  return found;
}

describe('file modes', () => {
  it('world-readable side files refused: the relay data folder holds only 0600 files and 0700 folders, -wal and -shm included', async () => {
    const previous = process.umask(0o022); // a common default: the relay must not depend on a tight one
    try {
      const r = await relay({ tls: 'self-signed' });
      const member = await r.member({ inlet: 'true' });
      await r.relay.revoke(member.identity!.identifier); // writes through the WAL
      const files = readdirSync(r.dir);
      expect(files).toEqual(expect.arrayContaining(['authority.db', 'authority.db-wal', 'authority.db-shm', 'authority.key', 'relay.json', 'admin-ticket', 'tls']));
      expect(openToOthers(r.dir)).toEqual([]);
    } finally {
      process.umask(previous);
    }
  });

  it('an older store whose side files are 0644 is narrowed to 0600 when it is opened', async () => {
    const dir = testTempDir();
    const path = join(dir, 'authority.db');
    const old = new SqliteStore(path);
    await old.close();
    for (const file of [path, `${path}-wal`, `${path}-shm`]) {
      writeFileSync(file, '', { flag: 'a' });
      chmodSync(file, 0o644);
    }
    const reopened = new SqliteStore(path);
    expect(openToOthers(dir).filter((line) => line.includes('authority.db'))).toEqual([]);
    await reopened.close();
  });

  it('a data folder and an agent home left open by an older version are narrowed when opened; a shared sticky folder is left alone', async () => {
    const dataDir = testTempDir();
    const first = await relay({ dataDir, tls: 'self-signed' });
    await first.stop();
    chmodSync(dataDir, 0o755);
    chmodSync(join(dataDir, 'tls', 'cert.pem'), 0o644);
    chmodSync(join(dataDir, 'relay.json'), 0o644);
    ensureDataDir(dataDir);
    expect(openToOthers(dataDir)).toEqual([]);

    const home = testTempDir('wicket-home-');
    Vault.open(home).identity();
    chmodSync(home, 0o755);
    Vault.open(home);
    expect(openToOthers(home)).toEqual([]);

    const shared = testTempDir('wicket-shared-');
    chmodSync(shared, 0o1777);
    ensureDataDir(shared);
    Vault.open(shared);
    expect(statSync(shared).mode & 0o7777).toBe(0o1777);
  });

  it("an agent's home holds only 0600 files and 0700 folders after enroll and a running node", async () => {
    const relayProcess = await startRelayProcess({ dataDir: processTempDir('wicket-relay-') });
    const agent = await enrollAgent(relayProcess, { attributes: ['svc-inlet'] });
    await startNodeProcess(agent, { inlets: [{ from: '127.0.0.1:0', via: 'svc', allow: 'svc-outlet' }] });
    expect(readdirSync(agent.home)).toEqual(expect.arrayContaining(['identity.key', 'enrollment.json', 'control.sock']));
    expect(openToOthers(agent.home)).toEqual([]);
    expect(openToOthers(relayProcess.dataDir)).toEqual([]);
  });
});
