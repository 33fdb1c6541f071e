import { createHash } from 'node:crypto';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { DATA_HEADER_LEN, encodeData } from '../../protocol/relay-frames.js';
import { NOISE_MAX_MESSAGE } from '../../protocol/limits.js';
import type { RawRelayClient } from '../helpers/raw-relay-client.js';
import { relaySide, relaysStoppedAfterEach, type TestRelay } from './relay-fixture.js';
import { seededBytes } from '../helpers/seeded.js';

// Names, circuits and forwarding on a real relay (DESIGN.md property 6 and "Relay routing").

const relay = relaysStoppedAfterEach();

async function circuitBetween(r: TestRelay, name = 'svc'): Promise<{ inlet: RawRelayClient; outlet: RawRelayClient; circuit: number }> {
  const outlet = await r.member({ outlet: 'true' }, [name]);
  expect((await outlet.register(name)).t).toBe('registered');
  const inlet = await r.member({ inlet: 'true' });
  const opened = await inlet.open(name);
  if (opened.t !== 'opened') throw new Error(`open failed: ${JSON.stringify(opened)}`);
  expect(opened.peer).toBe(outlet.identity!.identifier);
  const incoming = await outlet.next('incoming');
  expect(incoming).toEqual({ t: 'incoming', circuit: opened.circuit, name, peer: inlet.identity!.identifier });
  return { inlet, outlet, circuit: opened.circuit };
}

describe('circuits', () => {
  it('data is forwarded byte-identical in both directions, whole frames up to the Noise maximum', async () => {
    const r = await relay();
    const { inlet, outlet, circuit } = await circuitBetween(r);
    const sizes = [0, 1, 2, 100, 4096, 65_000, NOISE_MAX_MESSAGE];
    for (const [i, size] of sizes.entries()) {
      const frame = encodeData(circuit, seededBytes(1000 + i, size));
      inlet.sendRaw(frame);
      expect((await outlet.nextData()).equals(frame)).toBe(true);
      const reply = encodeData(circuit, seededBytes(2000 + i, size));
      outlet.sendRaw(reply);
      expect((await inlet.nextData()).equals(reply)).toBe(true);
    }
  });

  it('relay-name hijack refused: registering a name the credential does not allow gives WICKET_ERR_RELAY_NAME_FORBIDDEN', async () => {
    const r = await relay();
    const { inlet: victim, outlet: owner } = await circuitBetween(r, 'openai');
    const hijacker = await r.member({ outlet: 'true' }, ['other']);
    const refused = await hijacker.register('openai');
    expect(refused).toMatchObject({ t: 'error', code: 'WICKET_ERR_RELAY_NAME_FORBIDDEN' });
    expect(r.relay.router.serversOf('openai')).toBe(1);
    // The refusal is per request: the hijacker's connection stays up, and every new circuit still
    // reaches the owner.
    expect((await hijacker.register('other')).t).toBe('registered');
    for (let i = 0; i < 3; i++) {
      const opened = await victim.open('openai');
      expect(opened).toMatchObject({ t: 'opened', peer: owner.identity!.identifier });
    }
    expect(hijacker.controls.filter((m) => m.t === 'incoming')).toEqual([]);
  });

  it('opening a name nobody serves gives WICKET_ERR_RELAY_NAME_UNKNOWN', async () => {
    const r = await relay();
    const inlet = await r.member();
    expect(await inlet.open('nobody')).toMatchObject({ t: 'error', code: 'WICKET_ERR_RELAY_NAME_UNKNOWN' });
  });

  it('several outlets serve one name round robin, and when one drops new circuits go to the live one', async () => {
    const r = await relay();
    const a = await r.member({}, ['ha']);
    const b = await r.member({}, ['ha']);
    await a.register('ha');
    await b.register('ha');
    const inlet = await r.member();
    const peers = [];
    for (let i = 0; i < 4; i++) {
      const opened = await inlet.open('ha');
      if (opened.t !== 'opened') throw new Error('open failed');
      peers.push(opened.peer);
    }
    expect(new Set(peers)).toEqual(new Set([a.identity!.identifier, b.identity!.identifier]));
    a.ws.terminate();
    await a.closed;
    // The inlet hears that a's circuits closed.
    await inlet.next('close', (m) => m.code === 'WICKET_ERR_CIRCUIT_CLOSED');
    for (let i = 0; i < 3; i++) expect(await inlet.open('ha')).toMatchObject({ t: 'opened', peer: b.identity!.identifier });
  });

  it('an inlet that refused an outlet asks for another one of the name (avoid), and is told when only refused ones are left', async () => {
    const r = await relay();
    const good = await r.member({}, ['ha']);
    const bad = await r.member({}, ['ha']);
    await good.register('ha');
    await bad.register('ha');
    const inlet = await r.member();
    for (let i = 0; i < 4; i++) expect(await inlet.open('ha', [bad.identity!.identifier])).toMatchObject({ t: 'opened', peer: good.identity!.identifier });
    const none = await inlet.open('ha', [bad.identity!.identifier, good.identity!.identifier]);
    expect(none).toMatchObject({ t: 'error', code: 'WICKET_ERR_RELAY_NAME_UNKNOWN' });
    expect(none.t === 'error' && none.message).toMatch(/other than the ones this agent refused/);
  });

  it('close from one end is forwarded to the other with its code, and late DATA for it is dropped', async () => {
    const r = await relay();
    const { inlet, outlet, circuit } = await circuitBetween(r);
    inlet.sendControl({ t: 'close', circuit, code: 'WICKET_ERR_STREAM_RESET' });
    expect(await outlet.next('close')).toEqual({ t: 'close', circuit, code: 'WICKET_ERR_STREAM_RESET' });
    expect(r.relay.router.circuitCount).toBe(0);
    // A frame racing the close is dropped silently; both connections stay usable.
    outlet.sendRaw(encodeData(circuit, Buffer.from('late')));
    const again = await inlet.open('svc');
    expect(again.t).toBe('opened');
    expect(outlet.data).toEqual([]);
  });

  it('an unknown close code from an agent is forwarded as WICKET_ERR_CIRCUIT_CLOSED', async () => {
    const r = await relay();
    const { inlet, outlet, circuit } = await circuitBetween(r);
    inlet.sendControl({ t: 'close', circuit, code: '<script>' });
    expect(await outlet.next('close')).toEqual({ t: 'close', circuit, code: 'WICKET_ERR_CIRCUIT_CLOSED' });
  });

  it('a dropped connection closes its circuits at the other end and frees its name', async () => {
    const r = await relay();
    const { inlet, outlet, circuit } = await circuitBetween(r);
    outlet.ws.terminate();
    expect(await inlet.next('close')).toEqual({ t: 'close', circuit, code: 'WICKET_ERR_CIRCUIT_CLOSED' });
    expect(r.relay.router.circuitCount).toBe(0);
    expect(r.relay.router.serversOf('svc')).toBe(0);
  });

  it('unregister stops new circuits to that outlet and keeps the existing ones', async () => {
    const r = await relay();
    const { inlet, outlet, circuit } = await circuitBetween(r);
    outlet.sendControl({ t: 'unregister', id: 77, name: 'svc' });
    expect(await outlet.next('unregistered')).toEqual({ t: 'unregistered', id: 77, name: 'svc' });
    expect(await inlet.open('svc')).toMatchObject({ t: 'error', code: 'WICKET_ERR_RELAY_NAME_UNKNOWN' });
    const frame = encodeData(circuit, Buffer.from('still here'));
    inlet.sendRaw(frame);
    expect((await outlet.nextData()).equals(frame)).toBe(true);
  });

  it('caps the circuits one connection may hold open (WICKET_ERR_RELAY_TOO_MANY_CIRCUITS)', async () => {
    const r = await relay({ settings: { maxCircuitsPerConnection: 3 } });
    const a = await r.member({}, ['svc']);
    const b = await r.member({}, ['svc']);
    await a.register('svc');
    await b.register('svc');
    const inlet = await r.member();
    for (let i = 0; i < 3; i++) expect((await inlet.open('svc')).t).toBe('opened');
    expect(await inlet.open('svc')).toMatchObject({ t: 'error', code: 'WICKET_ERR_RELAY_TOO_MANY_CIRCUITS' });
    expect(r.relay.router.circuitCount).toBe(3);
  });
});

describe('backpressure', () => {
  it('a full downstream pauses the upstream: the relay queues a bounded amount while the sender is pushed back', async () => {
    const highWaterBytes = 512 * 1024;
    const r = await relay({ settings: { highWaterBytes, lowWaterBytes: 128 * 1024, hardCapBytes: 256 * 1024 * 1024 } });
    const { inlet, outlet, circuit } = await circuitBetween(r);
    const relaySideOutlet = relaySide(r, outlet);
    const relaySideInlet = relaySide(r, inlet);

    // The outlet stops reading; the inlet pushes 48 MiB (768 frames of 64 KiB) as fast as it can.
    outlet.ws.pause();
    const frames = 768;
    const payloadSize = 64 * 1024 - DATA_HEADER_LEN;
    const sent = createHash('sha256');
    for (let i = 0; i < frames; i++) {
      const payload = seededBytes(7 + i, payloadSize);
      sent.update(payload);
      inlet.sendRaw(encodeData(circuit, payload));
    }
    let maxRelayQueue = 0;
    let sawSourcePaused = false;
    for (let i = 0; i < 40; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      maxRelayQueue = Math.max(maxRelayQueue, relaySideOutlet.bufferedAmount);
      sawSourcePaused ||= relaySideInlet.readingPaused;
    }
    // The relay holds at most the high-water mark plus one socket read of frames; the rest waits
    // in the sender (the kernel's loopback buffers hold a few MiB between them).
    expect(sawSourcePaused).toBe(true);
    expect(maxRelayQueue).toBeLessThan(highWaterBytes + 2 * 1024 * 1024);
    expect(inlet.ws.bufferedAmount).toBeGreaterThan(16 * 1024 * 1024);

    // The outlet reads again: everything arrives, in order, unchanged; the inlet is resumed.
    outlet.ws.resume();
    const received = createHash('sha256');
    for (let i = 0; i < frames; i++) {
      const frame = await outlet.nextData(20_000);
      expect(frame.readUInt32BE(1)).toBe(circuit);
      received.update(frame.subarray(DATA_HEADER_LEN));
    }
    expect(received.digest('hex')).toBe(sent.digest('hex'));
    expect(relaySideInlet.readingPaused).toBe(false);
  });
});

describe('hard cap', () => {
  const waitUntil = async (what: string, done: () => boolean): Promise<void> => {
    for (let i = 0; i < 200 && !done(); i++) await new Promise((resolve) => setTimeout(resolve, 25));
    if (!done()) throw new Error(`not within 5 s: ${what}`);
  };

  it('a destination that stops reading while many sources push is dropped past the hard cap (WICKET_ERR_RELAY_OVERLOADED); the sources live on', async () => {
    const settings = { lowWaterBytes: 16 * 1024, highWaterBytes: 32 * 1024, hardCapBytes: 512 * 1024, closeGraceMs: 200 };
    const logs: { msg?: string; code?: string; conn?: number }[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => logs.push(JSON.parse(line) as (typeof logs)[number]) });
    const r = await relay({ settings, logger });
    const outlet = await r.member({ outlet: 'true' }, ['svc']);
    expect((await outlet.register('svc')).t).toBe('registered');
    const relaySideOutlet = relaySide(r, outlet);
    const sources: { client: RawRelayClient; circuit: number }[] = [];
    for (let i = 0; i < 17; i++) {
      const client = await r.member({ inlet: 'true' });
      const opened = await client.open('svc');
      if (opened.t !== 'opened') throw new Error(`open failed: ${JSON.stringify(opened)}`);
      sources.push({ client, circuit: opened.circuit });
    }
    outlet.ws.pause();
    const payload = seededBytes(99, 64 * 1024 - DATA_HEADER_LEN);

    // One source fills the kernel's loopback buffers and then the relay's queue past high water:
    // from then on the relay pauses it.
    const first = sources[0]!;
    for (let i = 0; i < 256; i++) first.client.sendRaw(encodeData(first.circuit, payload));
    await waitUntil('the outlet queue passes high water', () => relaySideOutlet.bufferedAmount > settings.highWaterBytes);
    expect(relaySideOutlet.state).toBe('authenticated');

    // Each other source is paused only once a frame of its own went over the mark: sixteen such
    // frames queue 1 MiB, twice the hard cap. The relay drops the destination instead of growing.
    for (const { client, circuit } of sources.slice(1)) client.sendRaw(encodeData(circuit, payload));
    await waitUntil('the outlet is dropped', () => relaySideOutlet.state === 'closed');
    expect(r.relay.connections.ofIdentity(outlet.identity!.identifier)).toEqual([]);
    // ... for the hard cap, not for anything else.
    expect(logs.filter((l) => l.msg === 'connection closed by the relay').map((l) => l.code)).toEqual(['WICKET_ERR_RELAY_OVERLOADED']);
    expect(logs.some((l) => l.msg === 'peer over its buffer cap; dropping it' && l.conn === relaySideOutlet.id)).toBe(true);

    // Every source hears that its circuit closed, and its own connection stays up and unpaused.
    for (const { client, circuit } of sources) {
      expect(await client.next('close', (m) => m.circuit === circuit)).toMatchObject({ t: 'close', circuit, code: 'WICKET_ERR_CIRCUIT_CLOSED' });
      const source = relaySide(r, client);
      expect(source.state).toBe('authenticated');
      expect(source.readingPaused).toBe(false);
    }
    expect(r.relay.router.circuitCount).toBe(0);
  });
});
