import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeTicket } from '../../protocol/ticket.js';
import { Authority } from '../../relay/authority/authority.js';
import { loadOrCreateAuthorityKey } from '../../relay/authority/authority-key.js';
import { SqliteStore } from '../../relay/authority/sqlite-store.js';
import { runJsonWorker } from '../helpers/json-worker.js';
import { tempDir, testLogger } from './relay-fixture.js';

// DESIGN.md property 4: two racing redemptions of a one-use ticket give one member, even from
// separate processes with separate SQLite connections (the redemption is one IMMEDIATE transaction).

const WORKER = fileURLToPath(new URL('./fixtures/redeem-worker.ts', import.meta.url));
const RACERS = 6;
/** One racer process: its own identity and SQLite connection, one redemption. */
const race = (input: object) => runJsonWorker<{ identifier: string; outcome: string }>(WORKER, input);

let folder: string | undefined;
afterEach(() => {
  if (folder !== undefined) rmSync(folder, { recursive: true, force: true });
});

describe('redemption race', () => {
  it(`${RACERS} processes racing to redeem one one-use ticket: exactly one member`, async () => {
    folder = tempDir('wicket-race-');
    const db = join(folder, 'authority.db');
    const store = new SqliteStore(db);
    const { identity } = loadOrCreateAuthorityKey(join(folder, 'authority.key'));
    const authority = new Authority({ identity, store, logger: testLogger(), endpoint: { url: 'ws://127.0.0.1:7400' } });
    const ticket = decodeTicket((await authority.createTicket({ attributes: { inlet: 'true' }, usageCount: 1, createdBy: 'test' })).text.reveal());
    // Process start-up under load takes a while; all racers wait for the same instant.
    const startAt = Date.now() + 6_000;
    const input = { db, ticketId: ticket.ticketId.toString('hex'), secret: ticket.secret.reveal().toString('hex'), startAt };
    const results = await Promise.all(Array.from({ length: RACERS }, () => race(input)));
    const outcomes = results.map((r) => r.outcome).sort();
    expect(outcomes).toEqual(['WICKET_ERR_TICKET_USED', ...Array(RACERS - 2).fill('WICKET_ERR_TICKET_USED'), 'member'].sort());
    const members = await authority.listMembers();
    expect(members.map((m) => m.identifier)).toEqual([results.find((r) => r.outcome === 'member')!.identifier]);
    await store.close();
  });
});
