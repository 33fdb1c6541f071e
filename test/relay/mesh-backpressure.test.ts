import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DATA_HEADER_LEN, encodeData } from '../../protocol/relay-frames.js';
import { parseStoreLocation } from '../../relay/authority/store-location.js';
import type { RelaySettings } from '../../relay/settings.js';
import { postgresBinaries, startPostgresCluster, type PostgresCluster } from '../../scripts/lib/postgres-cluster.js';
import type { RawRelayClient } from '../helpers/raw-relay-client.js';
import { seededBytes } from '../helpers/seeded.js';
import { relaySide, startTestRelay, type TestRelay } from './relay-fixture.js';

// Per-circuit backpressure across the relay-to-relay hop (issue 14: "forward a circuit whose ends
// sit on different relays over exactly one hop, with per-circuit backpressure across the hop (no
// relay buffers without bound)"). Two relays run in this process on one PostgreSQL database with
// small water marks; raw clients are the agents. On relay B a server for `bulk` stops reading its
// socket while an opener on relay A floods its circuit to it:
//   (a) the flood is pushed back to the opener's socket, and what each relay holds for the circuit
//       stays bounded: relay A's bytes not yet credited by B, relay B's queue towards the server;
//   (b) another circuit over the same link (another opener on A, a reading server on B) keeps flowing;
//   (c) once the server reads again, every flooded byte arrives, intact and in order.

const binaries = postgresBinaries();
if ('skip' in binaries) console.log(`mesh backpressure skipped: ${binaries.skip}`);

const KIB = 1024;
const MIB = 1024 * KIB;
const SETTINGS: Partial<RelaySettings> = {
  highWaterBytes: 256 * KIB,
  lowWaterBytes: 64 * KIB,
  hardCapBytes: 8 * MIB,
  // The stalled server answers no ping while its socket is paused; the test is not about liveness.
  keepaliveIntervalMs: 10_000,
  keepaliveDeadAfterMs: 120_000,
};
const HIGH_WATER = SETTINGS.highWaterBytes!;
const FRAME = 16 * KIB;
const PAYLOAD = FRAME - DATA_HEADER_LEN;
/** At most 64 MiB flooded: far more than the loopback buffers and both relays' windows hold. */
const MAX_FLOOD_FRAMES = 4096;
/** The opener counts as pushed back once this much waits in its own WebSocket (not sent at all). */
const PUSHED_BACK_BYTES = 2 * MIB;
/**
 * A relay reads a paused socket's current read to its end (one socket read, up to 64 KiB, plus the
 * frame cut at its edge) before the pause bites: the slack over the high-water mark.
 */
const READ_SLACK = 64 * KIB + FRAME;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const block = seededBytes(0xb10c, PAYLOAD);
/** Frame `seq` of a circuit: the seeded block with its first 4 bytes the sequence number. */
function payloadOf(seq: number): Buffer {
  const payload = Buffer.from(block);
  payload.writeUInt32BE(seq, 0);
  return payload;
}

describe.skipIf('skip' in binaries)('two relays on one store: per-circuit backpressure across the hop', () => {
  let cluster: PostgresCluster;
  let a: TestRelay;
  let b: TestRelay;

  beforeAll(async () => {
    cluster = await startPostgresCluster();
    const storeLocation = parseStoreLocation(cluster.url(await cluster.createDatabase('meshflow')));
    a = await startTestRelay({ storeLocation, settings: SETTINGS });
    b = await startTestRelay({ storeLocation, settings: SETTINGS, authorityKeyFile: a.relay.paths.authorityKey });
  }, 120_000);

  afterAll(async () => {
    await b?.stop();
    await a?.stop();
    await cluster?.stop();
  });

  /** Opens `name` from an opener on A once the relays are linked and A has read B's served names. */
  async function openAcross(opener: RawRelayClient, name: string): Promise<number> {
    const deadline = Date.now() + 20_000;
    for (let attempt = 0; attempt < 400; attempt++) {
      const answer = await opener.open(name);
      if (answer.t === 'opened') return answer.circuit;
      if (answer.t !== 'error' || answer.code !== 'WICKET_ERR_RELAY_NAME_UNKNOWN' || Date.now() > deadline) throw new Error(`open ${name} across the mesh: ${JSON.stringify(answer)}`);
      await sleep(50);
    }
    throw new Error(`open ${name} across the mesh: no link within 400 attempts`);
  }

  it('a stalled server holds back only its own circuit: bounded on both relays, the other circuit flows, and everything arrives in order', async () => {
    const bulkServer = await b.member({ outlet: 'true' }, ['bulk']);
    const sideServer = await b.member({ outlet: 'true' }, ['side']);
    expect((await bulkServer.register('bulk')).t).toBe('registered');
    expect((await sideServer.register('side')).t).toBe('registered');
    const flooder = await a.member({ inlet: 'true' });
    const other = await a.member({ inlet: 'true' });
    const bulkOnA = await openAcross(flooder, 'bulk');
    const sideOnA = await openAcross(other, 'side');
    const bulkOnB = (await bulkServer.next('incoming')).circuit;
    const sideOnB = (await sideServer.next('incoming')).circuit;

    // Each circuit crosses the hop: on A its server end, on B its opener end, is the far relay.
    const endsOnA = a.relay.router.endsOf(bulkOnA)!;
    const endsOnB = b.relay.router.endsOf(bulkOnB)!;
    expect([endsOnA.server.viaMesh, endsOnA.opener.viaMesh, endsOnB.opener.viaMesh, endsOnB.server.viaMesh]).toEqual([true, undefined, true, undefined]);
    const flooderOnA = relaySide(a, flooder);
    const bulkServerOnB = relaySide(b, bulkServer);
    /** Relay A: the circuit's bytes sent to B and not yet credited. Relay B: its queue towards the server. */
    const held = () => ({ a: endsOnA.server.bufferedAmount, b: bulkServerOnB.bufferedAmount });

    // (a) The bulk server stops reading; the flooder sends as fast as its socket takes frames.
    bulkServer.ws.pause();
    const sentHash = createHash('sha256');
    let sent = 0;
    let most = { a: 0, b: 0 };
    let flooderPaused = false;
    const sample = (): void => {
      const now = held();
      most = { a: Math.max(most.a, now.a), b: Math.max(most.b, now.b) };
      flooderPaused ||= flooderOnA.readingPaused;
    };
    const floodDeadline = Date.now() + 30_000;
    while (sent < MAX_FLOOD_FRAMES && flooder.ws.bufferedAmount < PUSHED_BACK_BYTES && Date.now() < floodDeadline) {
      for (let k = 0; k < 32 && sent < MAX_FLOOD_FRAMES; k++) {
        const payload = payloadOf(sent++);
        sentHash.update(payload);
        flooder.sendRaw(encodeData(bulkOnA, payload));
      }
      await sleep(2);
      sample();
    }
    for (let i = 0; i < 50; i++) {
      await sleep(10);
      sample();
    }
    const flooded = sent * FRAME;
    console.log(
      `flooded ${(flooded / MIB).toFixed(1)} MiB; ${(flooder.ws.bufferedAmount / MIB).toFixed(1)} MiB still in the flooder's WebSocket; ` +
        `most held: relay A ${(most.a / KIB).toFixed(0)} KiB uncredited, relay B ${(most.b / KIB).toFixed(0)} KiB queued (high water ${HIGH_WATER / KIB} KiB)`,
    );
    expect(flooder.ws.bufferedAmount, 'the flood is pushed back to the flooder').toBeGreaterThanOrEqual(PUSHED_BACK_BYTES);
    expect(flooderPaused, 'relay A stopped reading the flooder').toBe(true);
    // Relay A sends B at most a window past the high-water mark before it stops reading the flooder.
    expect(most.a).toBeGreaterThan(HIGH_WATER);
    expect(most.a).toBeLessThanOrEqual(HIGH_WATER + READ_SLACK);
    // Relay B holds credit back once its queue passes high water (plus the frame that passed it); what
    // A had sent uncredited by then still arrives and queues: at most A's bound above.
    expect(most.b).toBeGreaterThan(HIGH_WATER);
    expect(most.b).toBeLessThanOrEqual(2 * HIGH_WATER + READ_SLACK + FRAME);
    expect(flooded).toBeGreaterThan(8 * (most.a + most.b));
    expect(b.relay.router.endsOf(bulkOnB), 'the stalled circuit is held, not dropped').toBeDefined();

    // (b) Meanwhile the other circuit over the same link flows: 2 MiB, in order, to a reading server.
    const sideFrames = 128;
    for (let i = 0; i < sideFrames; i++) other.sendRaw(encodeData(sideOnA, payloadOf(i)));
    for (let i = 0; i < sideFrames; i++) {
      const frame = await sideServer.nextData(10_000);
      expect(frame.readUInt32BE(1)).toBe(sideOnB);
      expect(frame.subarray(DATA_HEADER_LEN).equals(payloadOf(i)), `side frame ${i}`).toBe(true);
    }
    sample();
    expect(flooderOnA.readingPaused, 'the flooder is still held back').toBe(true);
    expect(held().a).toBeLessThanOrEqual(HIGH_WATER + READ_SLACK);
    expect(held().b).toBeLessThanOrEqual(2 * HIGH_WATER + READ_SLACK + FRAME);

    // (c) The bulk server reads again: every flooded frame arrives, intact and in order.
    bulkServer.ws.resume();
    const receivedHash = createHash('sha256');
    for (let i = 0; i < sent; i++) {
      const frame = await bulkServer.nextData(20_000);
      expect(frame.readUInt32BE(1)).toBe(bulkOnB);
      const payload = frame.subarray(DATA_HEADER_LEN);
      if (payload.readUInt32BE(0) !== i || payload.length !== PAYLOAD) expect.fail(`frame ${i} arrived as sequence ${payload.readUInt32BE(0)}, ${payload.length} bytes`);
      receivedHash.update(payload);
    }
    expect(receivedHash.digest('hex')).toBe(sentHash.digest('hex'));
    expect(bulkServer.data).toEqual([]);
    // The flooder is read again; B credits in batches (at most lowWaterBytes / 2), so less than one may stay owed.
    for (let i = 0; i < 100 && (flooderOnA.readingPaused || held().a > SETTINGS.lowWaterBytes! / 2); i++) await sleep(20);
    expect(flooderOnA.readingPaused).toBe(false);
    expect(held().a).toBeLessThanOrEqual(SETTINGS.lowWaterBytes! / 2);
    expect(held().b).toBe(0);
  }, 120_000);
});
