import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { enroll } from '../../agent/enroll.js';
import { RelayClient } from '../../agent/relay-client.js';
import { RevokedPeers } from '../../agent/revoked-peers.js';
import { Vault } from '../../agent/vault.js';
import { Identity } from '../../protocol/identity.js';
import { REVOCATION_POLL_INTERVAL_MS } from '../../protocol/limits.js';
import { decodeTicket } from '../../protocol/ticket.js';
import { identifierFor } from '../helpers/identifier.js';
import { enrollRequest } from '../helpers/ticket-proof.js';
import { relaysStoppedAfterEach, testLogger, testTempDir } from '../relay/relay-fixture.js';

// An agent's copy of the revoked set: applied in seq order, kept until each entry's `until`, and
// re-synced in full behind every welcome, however many events that is.

const id = identifierFor;

describe('RevokedPeers', () => {
  it('applies revoke and reinstate events in order, tracks the last seq, and forgets an entry at its until', () => {
    let now = 1_000;
    const set = new RevokedPeers(() => now);
    expect(set.revoked(1, id(1), 5_000)).toBe(true);
    expect(set.revoked(2, id(2), 5_000)).toBe(true);
    expect(set.revoked(3, id(1), 6_000)).toBe(false); // known already: the later until is kept
    expect(set.isRevoked(id(1))).toBe(true);
    set.reinstated(4, id(2));
    expect(set.isRevoked(id(2))).toBe(false);
    expect(set.lastSeq).toBe(4);
    set.synced(9);
    expect(set.lastSeq).toBe(9);
    set.synced(3); // an older seq never moves it back
    expect(set.lastSeq).toBe(9);
    now = 5_500;
    expect(set.isRevoked(id(1))).toBe(true);
    now = 6_000;
    expect(set.isRevoked(id(1))).toBe(false);
    expect(set.size).toBe(0);
    // An event whose until has passed already changes nothing but the seq.
    expect(set.revoked(10, id(3), 6_000)).toBe(false);
    expect(set.isRevoked(id(3))).toBe(false);
    expect(set.lastSeq).toBe(10);
  });
});

const relay = relaysStoppedAfterEach();

describe('the revoked set across connections', () => {
  it('a re-sync of 600 revocations behind the welcome arrives whole, in one connection', async () => {
    const r = await relay();
    const home = Vault.open(testTempDir('wicket-home-'));
    await enroll({ ticket: decodeTicket(await r.ticket({ inlet: 'true' })), vault: home, logger: testLogger() });
    // 600 members revoked within the keep window: far more small frames than one socket read
    // delivers before the client takes over the connection.
    const count = 600;
    for (let i = 0; i < count; i++) {
      const member = Identity.generate();
      const ticket = decodeTicket(await r.ticket());
      await r.relay.authority.redeem(enrollRequest(ticket, member));
      await r.relay.authority.revoke(member.identifier, 'test');
    }
    // The relay reads events written to its store on its poll (written here through its authority
    // directly): let it catch up, so they all travel in the re-sync.
    await new Promise((resolve) => setTimeout(resolve, 3 * REVOCATION_POLL_INTERVAL_MS));
    const client = new RelayClient({ vault: home, logger: testLogger() });
    const disconnects: unknown[] = [];
    client.on('disconnected', (err) => disconnects.push(err));
    const connected = once(client, 'connected');
    client.start();
    try {
      await connected;
      for (let i = 0; i < 100 && client.revoked.lastSeq < count; i++) await new Promise((resolve) => setTimeout(resolve, 20));
      expect(client.revoked.size).toBe(count);
      expect(client.revoked.lastSeq).toBe(count);
      expect(disconnects).toEqual([]);
      expect(client.state).toBe('connected');
    } finally {
      await client.stop();
    }
  });
});
