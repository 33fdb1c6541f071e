import { randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Secret } from '../../protocol/secret.js';
import { decodeTicket, ticketKeyFromSecret } from '../../protocol/ticket.js';
import { connectTcp, startEchoServer, type EchoServer } from '../helpers/echo-server.js';
import { stopAll, tempDir } from '../../scripts/lib/local-processes.js';
import { startPortal, type Portal } from './portal-fixture.js';

// Security property 1, "the relay reads nothing": the relay runs with its test tap, which appends
// every byte of every frame the relay RECEIVES to a file. A marker goes through the portal many
// times, in both directions (echo). The tap must hold all that traffic (it saw the volume, and it
// saw the relay's own control messages in clear) but never the marker, nor its hex or base64 form,
// nor the secret of the ticket an agent enrolled with through it.

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

    // Nor the secret of the ticket the admin enrolled with (`agent enroll`, through this relay):
    // the enroll carried the ticket's public key and a proof, never the secret or its seed.
    const ticket = decodeTicket(portal.relay.adminTicket!);
    const secret = ticket.secret.reveal();
    const ticketKey = ticketKeyFromSecret(new Secret(Buffer.from(secret)));
    expect(tapped.includes(Buffer.from(`"ticketKey":"${ticketKey.publicKey.toString('base64url')}"`)), 'the tap saw the enroll').toBe(true);
    expect(tapped.includes(Buffer.from('"secret"'))).toBe(false);
    for (const form of [secret, ticketKey.exportSeed().reveal()]) {
      for (const text of [form.toString('base64url'), form.toString('base64'), form.toString('hex')]) expect(tapped.includes(Buffer.from(text))).toBe(false);
      expect(tapped.includes(form)).toBe(false);
    }
  });
});
