import { randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectTcp, startEchoServer, type EchoServer } from '../helpers/echo-server.js';
import { stopAll, tempDir } from '../../scripts/lib/local-processes.js';
import { startPortal, type Portal } from './portal-fixture.js';

// Security property 1, "the relay reads nothing": the relay runs with its test tap, which appends
// every byte of every frame the relay RECEIVES to a file. A marker goes through the portal many
// times, in both directions (echo). The tap must hold all that traffic (it saw the volume, and it
// saw the relay's own control messages in clear) but never the marker, nor its hex or base64 form.

const MARKER = Buffer.from(`WICKET-PLAINTEXT-MARKER-${randomBytes(12).toString('hex')}`);
const REPEATS = 2_000;

let echo: EchoServer;
let portal: Portal;
let tapFile: string;

beforeAll(async () => {
  echo = await startEchoServer();
  tapFile = join(tempDir('wicket-e2e-tap-'), 'relay.tap');
  portal = await startPortal({ target: echo.address, relayName: 'tapped', relayArgs: ['--tap', tapFile] });
});

afterAll(async () => {
  await stopAll();
  await echo?.close();
});

describe('the relay reads nothing (security property 1)', () => {
  it('a marker sent through the portal never appears in the bytes the relay received', async () => {
    const payload = Buffer.concat(Array.from({ length: REPEATS }, () => MARKER));
    const client = await connectTcp(portal.inletAddress);
    await client.write(payload);
    client.end();
    const outcome = await client.outcome(30_000);
    expect(outcome.received.equals(payload), 'the echo came back intact').toBe(true);

    // Stop the relay cleanly so the tap is flushed to disk.
    await portal.relay.proc.kill('SIGTERM');
    const tapped = readFileSync(tapFile);
    expect(statSync(tapFile).size, 'the tap recorded at least the traffic both ways').toBeGreaterThan(2 * payload.length);
    expect(tapped.includes(Buffer.from('"t":"open"')), 'the tap sees the relay\'s own control frames in clear').toBe(true);
    expect(tapped.includes(MARKER)).toBe(false);
    expect(tapped.includes(Buffer.from(MARKER.toString('hex')))).toBe(false);
    expect(tapped.includes(Buffer.from(MARKER.toString('base64').slice(0, 24)))).toBe(false);
    // Not even a fragment of it: the first 16 bytes of the marker are unique enough.
    expect(tapped.includes(MARKER.subarray(0, 16))).toBe(false);
  });
});
