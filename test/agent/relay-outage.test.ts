import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { levels, pino, type Logger } from 'pino';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { enroll } from '../../agent/enroll.js';
import { RelayClient } from '../../agent/relay-client.js';
import { RelayOutage } from '../../agent/relay-outage.js';
import { Vault } from '../../agent/vault.js';
import { wicketError } from '../../protocol/errors.js';
import { decodeTicket } from '../../protocol/ticket.js';
import { startRelay, type RunningRelay } from '../../relay/server.js';
import { seededRandom } from '../helpers/seeded.js';

// A relay outage is reported, not narrated: one warning when it starts, then at most one a minute
// with the count of failed attempts, and one info line when the relay is back saying how long it
// was gone. Every attempt is still there at debug level.

interface LogLine {
  level: number;
  msg: string;
  code?: string;
  failedAttempts?: number;
  downForMs?: number;
}

const WARN = levels.values.warn!;
const INFO = levels.values.info!;

function capture(): { lines: LogLine[]; logger: Logger } {
  const lines: LogLine[] = [];
  return { lines, logger: pino({ level: 'debug' }, { write: (text: string) => void lines.push(JSON.parse(text) as LogLine) }) };
}

const dirs: string[] = [];
const cleanups: (() => Promise<void> | void)[] = [];
function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `wicket-${prefix}-`));
  dirs.push(dir);
  return dir;
}
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('RelayOutage (clock injected)', () => {
  it('an hour of failed attempts every 1.2 s: the first failure, then one warning a minute with the count, then the recovery', () => {
    const { lines, logger } = capture();
    let now = 1_000_000;
    const outage = new RelayOutage({ logger, relayUrl: () => 'wss://relay.test', now: () => now });
    const refused = wicketError('WICKET_ERR_RELAY_UNREACHABLE', 'cannot reach the relay at relay.test:443: ECONNREFUSED');
    const attempts = 3_000; // 3,000 x 1.2 s = 60 minutes
    for (let attempt = 1; attempt <= attempts; attempt++) {
      outage.attemptFailed(refused, attempt);
      now += 1_200;
    }
    outage.connected();
    const warnings = lines.filter((l) => l.level === WARN);
    // The first failure plus one per full minute after it: 60, not 3,000.
    expect(warnings.length).toBe(60);
    expect(warnings[0]!.msg).toMatch(/relay connection failed: .*ECONNREFUSED/);
    expect(warnings[1]!.failedAttempts).toBe(50); // 60 s / 1.2 s since the first one
    expect(warnings[1]!.msg).toMatch(/still unreachable after 60 s \(50 failed attempts since the last warning\)/);
    // Every attempt is counted exactly once across the warnings.
    expect(1 + warnings.slice(1).reduce((sum, w) => sum + w.failedAttempts!, 0)).toBeLessThanOrEqual(attempts);
    const back = lines.filter((l) => l.level === INFO);
    expect(back).toHaveLength(1);
    expect(back[0]!.msg).toMatch(/^reconnected to the relay after 3600 s away$/);
    expect(back[0]!.downForMs).toBe(attempts * 1_200);
    expect(back[0]!.failedAttempts).toBe(attempts);
  });

  it('a dropped connection is the outage\'s one warning; connecting without an outage says nothing more', () => {
    const { lines, logger } = capture();
    let now = 0;
    const outage = new RelayOutage({ logger, relayUrl: () => 'ws://127.0.0.1:1', now: () => now });
    outage.connected();
    expect(lines).toHaveLength(0);
    outage.dropped(wicketError('WICKET_ERR_RELAY_UNREACHABLE', 'the relay closed the connection'));
    for (let i = 1; i <= 10; i++) {
      now += 1_000;
      outage.attemptFailed(wicketError('WICKET_ERR_RELAY_UNREACHABLE', 'ECONNREFUSED'), i);
    }
    expect(lines.filter((l) => l.level === WARN)).toHaveLength(1);
    outage.connected();
    expect(lines.at(-1)!.msg).toBe('reconnected to the relay after 10 s away');
    expect(lines.at(-1)!.failedAttempts).toBe(10);
  });
});

describe('RelayClient during a real relay outage', () => {
  it('the relay stopped for 3 s: one warning (the drop), each failed attempt at debug, one info line when back', async () => {
    const dataDir = tempDir('outage-relay');
    const quiet = pino({ level: 'silent' });
    let relay: RunningRelay = await startRelay({ dataDir, logger: quiet, listen: { host: '127.0.0.1', port: 0 } });
    cleanups.push(() => relay.close());
    const created = await relay.createTicket({ attributes: {}, relayNames: [] });
    const vault = Vault.open(tempDir('outage-home'));
    await enroll({ ticket: decodeTicket(created.text.reveal()), vault, logger: quiet });

    const { lines, logger } = capture();
    const client = new RelayClient({ vault, logger, random: seededRandom(13) });
    cleanups.push(() => client.stop());
    const connected = once(client, 'connected', { signal: AbortSignal.timeout(15_000) });
    client.start();
    await connected;

    const dropped = once(client, 'disconnected', { signal: AbortSignal.timeout(15_000) });
    await relay.close();
    await dropped;
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const back = once(client, 'connected', { signal: AbortSignal.timeout(15_000) });
    relay = await startRelay({ dataDir, logger: quiet, listen: { host: '127.0.0.1', port: relay.port } });
    await back;

    const during = lines.slice(lines.findIndex((l) => /^disconnected from the relay/.test(l.msg)));
    const failedAttempts = during.filter((l) => l.level < INFO && /relay connection failed/.test(l.msg));
    // Backoff gives 3-6 attempts in 3 s (100 ms doubling to 2 s): each one at debug, none a warning.
    expect(failedAttempts.length).toBeGreaterThanOrEqual(2);
    expect(during.filter((l) => l.level >= WARN).map((l) => l.msg)).toEqual([expect.stringMatching(/^disconnected from the relay/)]);
    const reconnected = during.filter((l) => /^reconnected to the relay after/.test(l.msg));
    expect(reconnected).toHaveLength(1);
    expect(reconnected[0]!.level).toBe(INFO);
    expect(reconnected[0]!.downForMs).toBeGreaterThanOrEqual(3_000);
    expect(reconnected[0]!.failedAttempts).toBe(failedAttempts.length);
  }, 30_000);
});
