import { performance } from 'node:perf_hooks';
import { pino, type Logger } from 'pino';
import { describe, expect, it } from 'vitest';
import { Identity } from '../../protocol/identity.js';
import { REFUSAL_LOG_LINES_PER_WINDOW } from '../../protocol/limits.js';
import { encodeControl } from '../../protocol/relay-frames.js';
import { RawRelayClient } from '../helpers/raw-relay-client.js';
import { relaySide, relaysStoppedAfterEach } from './relay-fixture.js';

// Members that behave badly without breaking the frame format: they do not read, or they knock
// on the door by the thousand. Each case bounds what the relay holds or writes for them.

const relay = relaysStoppedAfterEach();

type LogLine = { msg?: string; code?: string; conn?: number; suppressed?: number; byCode?: Record<string, number> };

function capturingLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  return { lines, logger: pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line) as LogLine) }) };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('a member that sends requests and never reads the replies', () => {
  it('unbounded replies refused: the relay stops reading it at its high water mark, holds no more, and drops it (WICKET_ERR_RELAY_OVERLOADED); others are served', async () => {
    const settings = { highWaterBytes: 256 * 1024, lowWaterBytes: 64 * 1024, hardCapBytes: 64 * 1024 * 1024, keepaliveIntervalMs: 300, keepaliveDeadAfterMs: 1_500, keepaliveSweepMs: 100 };
    const { logger, lines } = capturingLogger();
    const r = await relay({ settings, logger });
    const attacker = await r.member();
    const bystander = await r.member();
    const relaySideAttacker = relaySide(r, attacker);
    // The attacker stops reading its socket, then asks for 200,000 circuits (each answered with
    // an error): before the fix the relay queued every answer (hundreds of MB).
    (attacker.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const open = (id: number): Buffer => encodeControl({ t: 'open', id, name: 'no-such-name' });
    for (let id = 1; id <= 200_000; id++) attacker.ws.send(open(id), { binary: true });

    const started = performance.now();
    let maxQueued = 0;
    let sawPaused = false;
    while (relaySideAttacker.state !== 'closed' && performance.now() - started < 10_000) {
      maxQueued = Math.max(maxQueued, relaySideAttacker.bufferedAmount);
      sawPaused ||= relaySideAttacker.readingPaused;
      await sleep(20);
    }
    const droppedAfterMs = performance.now() - started;
    console.log(`a member that never reads: relay queue peaked at ${maxQueued} bytes; dropped after ${droppedAfterMs.toFixed(0)} ms`);
    expect(sawPaused).toBe(true);
    // At most the high water mark plus the replies to one socket read of requests.
    expect(maxQueued).toBeLessThan(settings.highWaterBytes + 1024 * 1024);
    expect(relaySideAttacker.state).toBe('closed');
    expect(lines.some((l) => l.msg === 'peer stopped reading; dropping it' && l.conn === relaySideAttacker.id)).toBe(true);
    expect(lines.filter((l) => l.conn === relaySideAttacker.id && l.msg === 'connection closed by the relay').map((l) => l.code)).toEqual(['WICKET_ERR_RELAY_OVERLOADED']);
    // The bystander is untouched and served.
    expect(relaySide(r, bystander).state).toBe('authenticated');
    expect(await bystander.open('no-such-name')).toMatchObject({ t: 'error', code: 'WICKET_ERR_RELAY_NAME_UNKNOWN' });
  });

  it('a slow reader that does read is not dropped: its queue drains and it is read again', async () => {
    const settings = { highWaterBytes: 64 * 1024, lowWaterBytes: 16 * 1024, keepaliveIntervalMs: 300, keepaliveDeadAfterMs: 1_500, keepaliveSweepMs: 100 };
    const r = await relay({ settings });
    const member = await r.member();
    const socket = (member.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    socket.pause();
    for (let id = 1; id <= 50_000; id++) member.ws.send(encodeControl({ t: 'open', id, name: 'no-such-name' }), { binary: true });
    await sleep(500);
    expect(relaySide(r, member).readingPaused).toBe(true);
    // It reads again, slowly (paused half of every 200 ms): it keeps making progress, so it lives.
    const started = performance.now();
    while (performance.now() - started < 3_000) {
      socket.resume();
      await sleep(100);
      socket.pause();
      await sleep(100);
    }
    socket.resume();
    expect(relaySide(r, member).state).toBe('authenticated');
    const last = await member.nextMatching((m) => m.t === 'error' && m.id === 50_000, 'the answer to the last request', 20_000);
    expect(last).toMatchObject({ code: 'WICKET_ERR_RELAY_NAME_UNKNOWN' });
  });
});

describe('a member that stops reading but keeps talking', () => {
  it('a stalled reader cannot freeze the peers feeding it: pinging does not keep it alive; it is dropped (WICKET_ERR_RELAY_OVERLOADED) and they are read again', async () => {
    const settings = { highWaterBytes: 64 * 1024, lowWaterBytes: 16 * 1024, keepaliveIntervalMs: 300, keepaliveDeadAfterMs: 1_500, keepaliveSweepMs: 100 };
    const { logger, lines } = capturingLogger();
    const r = await relay({ settings, logger });
    const outlet = await r.member({ outlet: 'true' }, ['svc']);
    expect((await outlet.register('svc')).t).toBe('registered');
    const attacker = await r.member();
    const bystander = await r.member();
    const toAttacker = await attacker.open('svc');
    const toBystander = await bystander.open('svc');
    if (toAttacker.t !== 'opened' || toBystander.t !== 'opened') throw new Error('open failed');
    // The attacker stops reading and keeps pinging; the outlet streams to it until the relay
    // pauses the outlet on the attacker's full queue.
    (attacker.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const pinger = setInterval(() => attacker.ws.ping(), 200);
    try {
      const chunk = Buffer.alloc(60 * 1024, 7);
      for (let i = 0; i < 200; i++) outlet.sendData(toAttacker.circuit, chunk);
      const started = performance.now();
      while (!relaySide(r, outlet).readingPaused && performance.now() - started < 5_000) await sleep(20);
      expect(relaySide(r, outlet).readingPaused).toBe(true);
      const relaySideAttacker = relaySide(r, attacker);
      while (relaySideAttacker.state !== 'closed' && performance.now() - started < 10_000) await sleep(50);
      const droppedAfterMs = performance.now() - started;
      console.log(`a stalled reader that keeps pinging was dropped ${droppedAfterMs.toFixed(0)} ms after the outlet was paused`);
      expect(relaySideAttacker.state).toBe('closed');
      expect(droppedAfterMs).toBeLessThan(settings.keepaliveDeadAfterMs + 1_000);
      expect(lines.filter((l) => l.conn === relaySideAttacker.id && l.msg === 'connection closed by the relay').map((l) => l.code)).toEqual(['WICKET_ERR_RELAY_OVERLOADED']);
    } finally {
      clearInterval(pinger);
    }
    // The outlet is read again, and its other circuit carries data.
    const resumed = performance.now();
    while (relaySide(r, outlet).readingPaused && performance.now() - resumed < 5_000) await sleep(20);
    expect(relaySide(r, outlet).readingPaused).toBe(false);
    outlet.sendData(toBystander.circuit, Buffer.from('still served'));
    let frame = await bystander.nextData(10_000);
    while (frame.readUInt32BE(1) !== toBystander.circuit) frame = await bystander.nextData(10_000);
    expect(frame.subarray(5).toString()).toBe('still served');
  });
});

describe('refused logins', () => {
  it('each refused login is one log line, at most REFUSAL_LOG_LINES_PER_WINDOW per window; the rest are counted in one summary', async () => {
    const { logger, lines } = capturingLogger();
    const r = await relay({ logger });
    const strangers = 3 * REFUSAL_LOG_LINES_PER_WINDOW;
    for (let i = 0; i < strangers; i++) {
      const client = await RawRelayClient.connect(r.relay.url);
      const identity = Identity.generate();
      client.sendControl(client.authMessage(identity, Buffer.alloc(0)));
      expect((await client.refusal()).code).toBe('WICKET_ERR_RELAY_AUTH');
    }
    const refusals = lines.filter((l) => l.msg === 'login refused');
    expect(refusals).toHaveLength(REFUSAL_LOG_LINES_PER_WINDOW);
    expect(refusals.every((l) => l.code === 'WICKET_ERR_RELAY_AUTH')).toBe(true);
    // Nothing else is logged per refused connection (no "connection closed" for a login that never was).
    expect(lines.filter((l) => l.msg === 'connection closed')).toEqual([]);
    await r.relay.close();
    const summary = lines.find((l) => l.msg === 'more login refusals than the log shows; counted here');
    expect(summary).toMatchObject({ suppressed: strangers - REFUSAL_LOG_LINES_PER_WINDOW, byCode: { WICKET_ERR_RELAY_AUTH: strangers - REFUSAL_LOG_LINES_PER_WINDOW } });
  });
});
