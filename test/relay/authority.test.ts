import { chmodSync, existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeTicket, ticketKeyFromSecret } from '../../protocol/ticket.js';
import { Authority } from '../../relay/authority/authority.js';
import { loadAuthorityKey, loadOrCreateAuthorityKey } from '../../relay/authority/authority-key.js';
import { SqliteStore } from '../../relay/authority/sqlite-store.js';
import { startTestRelay, tempDir, testLogger, TestClock } from './relay-fixture.js';

// The authority and its SQLite store, without sockets: secrets at rest, the key file.

const dirs: string[] = [];
function dir(): string {
  const d = tempDir('wicket-authority-');
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function authorityIn(folder: string, clock = new TestClock()): { authority: Authority; store: SqliteStore } {
  const store = new SqliteStore(join(folder, 'authority.db'));
  const { identity } = loadOrCreateAuthorityKey(join(folder, 'authority.key'));
  const authority = new Authority({ identity, store, logger: testLogger(), now: clock.now, endpoint: { url: 'ws://127.0.0.1:7400' } });
  return { authority, store };
}

describe('ticket secrets at rest', () => {
  it("the store holds only the ticket's public key, never the secret, the key it derives or the ticket text", async () => {
    const folder = dir();
    const { authority, store } = authorityIn(folder);
    const created = await authority.createTicket({ attributes: { inlet: 'true' }, createdBy: 'test' });
    const secret = decodeTicket(created.text.reveal()).secret;
    const files = ['authority.db', 'authority.db-wal'].map((f) => join(folder, f)).filter(existsSync);
    const bytes = Buffer.concat(files.map((f) => readFileSync(f)));
    const ticketKey = ticketKeyFromSecret(secret);
    expect(bytes.includes(ticketKey.publicKey)).toBe(true); // the scan does see the ticket row
    expect(bytes.includes(ticketKey.exportSeed().reveal())).toBe(false);
    expect(bytes.includes(secret.reveal())).toBe(false);
    expect(bytes.includes(Buffer.from(secret.reveal().toString('base64url')))).toBe(false);
    expect(bytes.includes(Buffer.from(secret.reveal().toString('hex')))).toBe(false);
    expect(bytes.includes(Buffer.from(created.text.reveal()))).toBe(false);
    expect(String(created.text)).toBe('[REDACTED]');
    await store.close();
  });
});

describe('authority key', () => {
  it('is created once with mode 0600, and a key readable by others is refused', () => {
    const path = join(dir(), 'authority.key');
    const first = loadOrCreateAuthorityKey(path);
    expect(first.created).toBe(true);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const second = loadOrCreateAuthorityKey(path);
    expect(second.created).toBe(false);
    expect(second.identity.identifier).toBe(first.identity.identifier);
    chmodSync(path, 0o644);
    expect(() => loadAuthorityKey(path)).toThrow(/WICKET_ERR_KEY_FILE_PERMISSIONS/);
  });

  it('a restarted relay keeps its authority and prints no new admin ticket; the first one is saved 0600', async () => {
    const folder = dir();
    const first = await startTestRelay({ dataDir: folder });
    const adminTicket = first.relay.adminTicket!.text.reveal();
    await first.stop();
    expect(readFileSync(join(folder, 'admin-ticket'), 'utf8').trim()).toBe(adminTicket);
    expect(statSync(join(folder, 'admin-ticket')).mode & 0o777).toBe(0o600);
    const again = await startTestRelay({ dataDir: folder });
    expect(again.relay.firstStart).toBe(false);
    expect(again.relay.adminTicket).toBeUndefined();
    expect(again.relay.authorityIdentifier).toBe(first.relay.authorityIdentifier);
    await again.stop();
  });
});

// The store's rules (redemption, revocation, reinstatement, listings) are in store-contract.test.ts,
// run on both SQLite and PostgreSQL.
