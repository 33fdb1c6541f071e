import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { afterEach, onTestFinished } from 'vitest';
import type { Attributes } from '../../relay/authority/store.js';
import type { RelayConnection } from '../../relay/connection.js';
import { startRelay, type RelayOptions, type RunningRelay } from '../../relay/server.js';
import { enrollFresh, type RawRelayClient } from '../helpers/raw-relay-client.js';

// In-process relay for tests: a fresh data folder, port 0 on 127.0.0.1, an injectable clock, and
// quiet logs (WICKET_TEST_LOG=debug to see them).

export class TestClock {
  #offset = 0;
  readonly now = (): number => Date.now() + this.#offset;
  advance(ms: number): void {
    this.#offset += ms;
  }
}

export interface TestRelay {
  readonly relay: RunningRelay;
  readonly dir: string;
  readonly clock: TestClock;
  /** A member enrolled through a fresh one-use ticket, connected and authenticated. */
  member(attributes?: Attributes, relayNames?: string[]): Promise<RawRelayClient>;
  ticket(attributes?: Attributes, relayNames?: string[], more?: { usageCount?: number; expiresInMs?: number }): Promise<string>;
  stop(): Promise<void>;
}

export function testLogger(): Logger {
  return pino({ level: process.env.WICKET_TEST_LOG ?? 'silent' });
}

export function tempDir(prefix = 'wicket-relay-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A temp folder for the running test only: removed, with all it holds, when the test finishes. */
export function testTempDir(prefix = 'wicket-relay-'): string {
  const dir = tempDir(prefix);
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export async function startTestRelay(options: Partial<RelayOptions> = {}): Promise<TestRelay> {
  const dir = options.dataDir ?? tempDir();
  const clock = new TestClock();
  const relay = await startRelay({
    dataDir: dir,
    logger: testLogger(),
    listen: { host: '127.0.0.1', port: 0 },
    now: clock.now,
    ...options,
  });
  const clients: RawRelayClient[] = [];
  const ticket = async (attributes: Attributes = {}, relayNames: string[] = [], more: { usageCount?: number; expiresInMs?: number } = {}): Promise<string> =>
    (await relay.createTicket({ attributes, relayNames, ...more })).text.reveal();
  return {
    relay,
    dir,
    clock,
    ticket,
    async member(attributes = {}, relayNames = []) {
      const client = await enrollFresh(relay.url, await ticket(attributes, relayNames));
      clients.push(client);
      return client;
    },
    async stop() {
      for (const client of clients) client.ws.terminate();
      await relay.close();
      if (options.dataDir === undefined) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A starter for per-test relays: `const relay = relaysStoppedAfterEach();` at the top of a test
 * file, then `await relay(options)` in any test; each relay started so is stopped after its test.
 */
export function relaysStoppedAfterEach(): (options?: Partial<RelayOptions>) => Promise<TestRelay> {
  const relays: TestRelay[] = [];
  afterEach(async () => {
    await Promise.all(relays.splice(0).map((r) => r.stop()));
  });
  return async (options = {}) => {
    const started = await startTestRelay(options);
    relays.push(started);
    return started;
  };
}

/**
 * The relay's side of `client`'s connection, for tests that look at its state or flow control
 * (LiveConnections holds connections as RelayPeers; in a running relay they are RelayConnections).
 */
export function relaySide(r: TestRelay, client: RawRelayClient): RelayConnection {
  const identifier = client.identity?.identifier;
  const connection = identifier === undefined ? undefined : r.relay.connections.ofIdentity(identifier)[0];
  if (connection === undefined) throw new Error('the relay holds no connection for this client');
  return connection as RelayConnection;
}
