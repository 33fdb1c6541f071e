import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Identity } from '../../protocol/identity.js';
import { MAX_TICKET_RELAYS, RELAY_DIRECTORY_KEEP_MS, RELAY_LIVE_TIMEOUT_MS } from '../../protocol/limits.js';
import { AGENT_FEATURES_HEADER, FEATURE_RELAYS, parseRelaysMessage } from '../../protocol/relay-directory.js';
import type { RelayToAgent } from '../../protocol/relay-messages.js';
import type { Authority } from '../../relay/authority/authority.js';
import type { RelayRecord } from '../../relay/authority/store.js';
import type { RelayPeer } from '../../relay/peer.js';
import { RelayDirectory } from '../../relay/relay-directory.js';
import { RawRelayClient } from '../helpers/raw-relay-client.js';
import { startTestRelay, testLogger, type TestRelay } from './relay-fixture.js';

// Who the relay tells the project's relays (`relays`, relay/relay-directory.ts): an agent that
// named the feature in its upgrade request, right behind the welcome to its `auth`; never an agent
// that did not (an older agent closes the connection on a message type it does not know). The
// agents' side and the lists of several relays on PostgreSQL: test/agent/relays-message.test.ts,
// test/relay/agents-learn-relays.test.ts.

describe('the relays message at the relay', () => {
  let r: TestRelay;
  const clients: RawRelayClient[] = [];
  beforeAll(async () => {
    r = await startTestRelay({ tls: 'self-signed' });
  });
  afterAll(async () => {
    for (const c of clients) c.ws.terminate();
    await r.stop();
  });

  async function login(headers?: Record<string, string>): Promise<RawRelayClient> {
    const member = await r.member();
    member.ws.terminate();
    const client = await RawRelayClient.connect(r.relay.url, headers === undefined ? {} : { headers });
    clients.push(client);
    await client.auth(member.identity!, member.credential!);
    return client;
  }

  it('an agent that names the feature gets the list right behind its welcome: this relay first, with its pinned certificate', async () => {
    const client = await login({ [AGENT_FEATURES_HEADER]: FEATURE_RELAYS });
    const message = await client.next('relays', () => true, 5_000);
    const relays = parseRelaysMessage(message.relays);
    expect(relays.map((x) => x.url)).toEqual([r.relay.url]);
    expect(relays[0]!.fingerprint?.toString('hex')).toBe(r.relay.fingerprint);
  });

  it('an agent that does not name it (an older agent) never gets one, nor does an enrollment', async () => {
    // The list is known by now (the test above), so a listed agent would get it synchronously with its welcome.
    const listed = await login({ [AGENT_FEATURES_HEADER]: `future, ${FEATURE_RELAYS}` });
    await listed.next('relays', () => true, 5_000);
    const older = await login();
    const enrolling = await RawRelayClient.connect(r.relay.url, { headers: { [AGENT_FEATURES_HEADER]: FEATURE_RELAYS } });
    clients.push(enrolling);
    await enrolling.enroll(Identity.generate(), await r.ticket());
    await new Promise((resolve) => setTimeout(resolve, 500));
    const seen = (c: RawRelayClient): RelayToAgent['t'][] => c.controls.map((m) => m.t);
    expect(seen(older)).not.toContain('relays');
    expect(seen(enrolling)).not.toContain('relays');
    expect(older.closeInfo).toBeUndefined();
  });
});

describe('the list a relay sends', () => {
  const NOW = 1_800_000_000_000;
  const PIN = Buffer.alloc(32, 0x77);
  /** A directory over a store stub (the real stores: test/relay/store-contract.test.ts), re-reading every 20 ms. */
  function directory(rows: () => RelayRecord[]): { dir: RelayDirectory; reads: () => number } {
    let reads = 0;
    const authority = {
      endpoint: { url: 'wss://self.example.com', fingerprint: PIN },
      now: () => NOW,
      store: {
        liveRelays: async (now: number, withinMs: number) => {
          reads++;
          return rows().filter((r) => r.lastSeen >= now - withinMs);
        },
      },
    } as unknown as Authority;
    return { dir: new RelayDirectory(authority, testLogger(), 20), reads: () => reads };
  }
  function peer(): { peer: RelayPeer; sent: string[][]; close(): void } {
    const sent: string[][] = [];
    let open = true;
    const p = {
      get isOpen() {
        return open;
      },
      send: (m: RelayToAgent) => {
        if (m.t === 'relays') sent.push(parseRelaysMessage(m.relays).map((r) => r.url));
      },
    } as unknown as RelayPeer;
    return { peer: p, sent, close: () => (open = false) };
  }
  const row = (url: string, agoMs: number): RelayRecord => ({ relayId: url, url, lastSeen: NOW - agoMs });
  const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  it('itself first, then the live relays by URL, then those silent for less than a day, at most MAX_TICKET_RELAYS; unfit rows left out', async () => {
    const rows = [
      row('wss://self.example.com', 0),
      row('ws://127.0.0.1:9', RELAY_LIVE_TIMEOUT_MS + 1),
      row('wss://b.example.com', 1_000),
      row('wss://a.example.com', 2_000),
      row('http://not-a-relay.example.com', 0),
      row('wss://retired.example.com', RELAY_DIRECTORY_KEEP_MS + 1),
      ...Array.from({ length: 6 }, (_, i) => row(`wss://z${i}.example.com`, RELAY_LIVE_TIMEOUT_MS + 10)),
    ];
    const { dir } = directory(() => rows);
    const agent = peer();
    dir.connected(agent.peer, { [AGENT_FEATURES_HEADER]: FEATURE_RELAYS });
    dir.welcomed(agent.peer);
    await wait(50);
    agent.close();
    expect(agent.sent[0]).toEqual([
      'wss://self.example.com',
      'wss://a.example.com',
      'wss://b.example.com',
      'ws://127.0.0.1:9',
      'wss://z0.example.com',
      'wss://z1.example.com',
      'wss://z2.example.com',
      'wss://z3.example.com',
    ]);
    expect(agent.sent[0]).toHaveLength(MAX_TICKET_RELAYS);
  });

  it('sends again only on a change, to agents that asked; stops reading the store when no such agent is left', async () => {
    let rows = [row('wss://b.example.com', 0)];
    const { dir, reads } = directory(() => rows);
    const asked = peer();
    const older = peer();
    dir.connected(asked.peer, { [AGENT_FEATURES_HEADER]: FEATURE_RELAYS });
    dir.connected(older.peer, {});
    dir.welcomed(asked.peer);
    dir.welcomed(older.peer);
    await wait(100);
    expect(asked.sent).toEqual([['wss://self.example.com', 'wss://b.example.com']]);
    rows = [row('wss://b.example.com', 0), row('wss://c.example.com', 0)];
    await wait(100);
    expect(asked.sent).toHaveLength(2);
    expect(asked.sent[1]).toEqual(['wss://self.example.com', 'wss://b.example.com', 'wss://c.example.com']);
    // A second agent gets the list at once with its welcome.
    const late = peer();
    dir.connected(late.peer, { [AGENT_FEATURES_HEADER]: FEATURE_RELAYS });
    dir.welcomed(late.peer);
    expect(late.sent).toHaveLength(1);
    expect(older.sent).toEqual([]);
    asked.close();
    late.close();
    await wait(60);
    const stoppedAt = reads();
    await wait(100);
    expect(reads()).toBe(stoppedAt);
    expect(asked.sent).toHaveLength(2);
  });
});
