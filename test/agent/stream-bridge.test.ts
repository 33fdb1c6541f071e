import { createHash } from 'node:crypto';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { MuxStream } from '../../protocol/mux/index.js';
import { StreamBridge } from '../../agent/stream-bridge.js';
import { connectTcp, sendThenFinish, type EchoServer, startEchoServer } from '../helpers/echo-server.js';
import { seededBytes } from '../helpers/seeded.js';
import { project, sessionPair, silentLogger, type Wire } from './session-pair.js';

// The TCP <-> stream bridge with real sockets on both ends and a real secure channel between
// them (back to back, no relay): app → [listener + bridge] → channel → [bridge + target socket].
// What it proves: bytes cross intact both ways, a clean end is a FIN, and anything that breaks
// mid-stream reaches the app as a TCP RST (ECONNRESET), never as a clean end.

interface Portal {
  wire: Wire;
  address: string;
  target: EchoServer;
  targetSockets: Socket[];
  close(): Promise<void>;
}

const portals: Portal[] = [];
afterEach(async () => {
  for (const p of portals.splice(0)) await p.close();
});

async function openPortal(targetOptions: Parameters<typeof startEchoServer>[0] = {}): Promise<Portal> {
  const p = project();
  const wire = sessionPair(p, { initiator: { party: p.member({ i: 'true' }), allow: 'o' }, responder: { party: p.member({ o: 'true' }), allow: 'i' } });
  await wire.initiator.established;
  const target = await startEchoServer(targetOptions);
  const targetSockets: Socket[] = [];
  // Outlet side: each accepted stream connects to the target, then bridges.
  wire.responder.on('stream', (stream: MuxStream) => {
    stream.pause();
    const socket = connect({ host: '127.0.0.1', port: target.port, allowHalfOpen: true });
    targetSockets.push(socket);
    socket.once('connect', () => {
      new StreamBridge(socket, stream, { logger: silentLogger, resource: 'outlet', peer: 'inlet' });
      stream.resume();
    });
  });
  // Inlet side: each app connection becomes a stream.
  const server: Server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) => {
    const stream = wire.initiator.openStream();
    new StreamBridge(socket, stream, { logger: silentLogger, resource: 'inlet', peer: 'outlet' });
    socket.resume();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const portal: Portal = {
    wire,
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    target,
    targetSockets,
    async close() {
      wire.initiator.close('WICKET_ERR_CHANNEL_CLOSED', 'test over');
      wire.responder.close('WICKET_ERR_CHANNEL_CLOSED', 'test over');
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await target.close();
    },
  };
  portals.push(portal);
  return portal;
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('stream bridge', () => {
  it('echoes 4 MiB of seeded random bytes intact and ends with a clean FIN', async () => {
    const portal = await openPortal();
    const data = seededBytes(0x5eed, 4 * 1024 * 1024);
    const outcome = await sendThenFinish(portal.address, data, 30_000);
    expect(outcome.ending).toBe('end');
    expect(outcome.received.length).toBe(data.length);
    expect(sha256(outcome.received)).toBe(sha256(data));
  });

  it('keeps the response flowing after the app half-closes (FIN is per direction)', async () => {
    const portal = await openPortal();
    // The echo arrives after our FIN, then the target's FIN.
    const outcome = await sendThenFinish(portal.address, Buffer.from('request then FIN'));
    expect(outcome.received.toString()).toBe('request then FIN');
    expect(outcome.ending).toBe('end');
  });

  it('a bulk upload does not cost a tiny extra message per socket read', async () => {
    // Socket reads are 64 KiB, one frame carries 26 bytes less: written as read, every read would
    // become a full message plus a 26-byte one, each paying a whole message's fixed cost on every
    // hop. The bridge regroups reads into full frames.
    const TOTAL = 64 * 1024 * 1024;
    const portal = await openPortal({ silent: true });
    const client = await connectTcp(portal.address);
    const sent = client.write(seededBytes(3, TOTAL));
    const carried = () => portal.wire.sent.toResponder.reduce((n, m) => n + m.length, 0);
    const deadline = Date.now() + 30_000;
    while (carried() < TOTAL && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await sent;
    const sizes = portal.wire.sent.toResponder.map((m) => m.length);
    const tiny = sizes.filter((n) => n < 1024).length;
    expect(carried()).toBeGreaterThanOrEqual(TOTAL);
    // A handful of control messages (OPEN, pings, the tail) are small; per-read tails would be
    // about a third of all messages.
    expect(tiny).toBeLessThan(sizes.length * 0.1);
    client.socket.destroy();
  });

  it('a target that resets mid-stream reaches the app as ECONNRESET, not a clean end', async () => {
    const portal = await openPortal();
    const client = await connectTcp(portal.address);
    await client.write(Buffer.from('first part'));
    await client.waitForBytes(10);
    portal.target.resetAll();
    const outcome = await client.outcome();
    expect(outcome.ending).toBe('reset');
    expect(outcome.errorCode).toBe('ECONNRESET');
  });

  it('a channel closed mid-stream (peer gone) resets the app connection and the target connection', async () => {
    const portal = await openPortal();
    const client = await connectTcp(portal.address);
    await client.write(Buffer.from('x'));
    await client.waitForBytes(1);
    const targetSide = portal.targetSockets[0]!;
    const targetClosed = new Promise<string | undefined>((resolve) => {
      targetSide.once('error', (err: NodeJS.ErrnoException) => resolve(err.code));
      targetSide.once('close', () => resolve(undefined));
    });
    portal.wire.initiator.circuitClosed('WICKET_ERR_CIRCUIT_CLOSED');
    const outcome = await client.outcome();
    expect(outcome.ending).toBe('reset');
    // The outlet side learned through the circuit close and reset its target connection too.
    portal.wire.responder.circuitClosed('WICKET_ERR_CIRCUIT_CLOSED');
    await targetClosed;
    expect(targetSide.destroyed).toBe(true);
  });

  it('an app that resets its connection resets the stream on the far side', async () => {
    const portal = await openPortal();
    const farReset = new Promise<string>((resolve) => {
      portal.wire.responder.once('stream', (stream: MuxStream) => stream.once('reset', (err: { code: string }) => resolve(err.code)));
    });
    const client = await connectTcp(portal.address);
    await client.write(Buffer.from('y'));
    await client.waitForBytes(1);
    client.socket.resetAndDestroy();
    expect(await farReset).toBe('WICKET_ERR_STREAM_RESET');
  });

  it('a reader that stops reading pushes back to the source instead of buffering without bound', async () => {
    // The source offers 256 MiB; the app reads nothing. With backpressure end to end (socket →
    // stream → channel → stream → socket) the source stops making progress once the buffers on the
    // way are full: kernel socket buffers and one stream window, far below what it offers. Without
    // it, the bridges would soak everything up in memory and the source would finish.
    const OFFERED_MIB = 256;
    let sourceSocket: Socket | undefined;
    const source = createServer((socket) => {
      sourceSocket = socket;
      socket.on('error', () => undefined);
      const chunk = seededBytes(7, 1024 * 1024);
      let sent = 0;
      const pump = () => {
        while (sent < OFFERED_MIB) {
          sent++;
          if (!socket.write(chunk)) {
            socket.once('drain', pump);
            return;
          }
        }
        socket.end();
      };
      pump();
    });
    await new Promise<void>((resolve) => source.listen(0, '127.0.0.1', () => resolve()));
    const p = project();
    const wire = sessionPair(p, { initiator: { party: p.member({ i: 'true' }), allow: 'o' }, responder: { party: p.member({ o: 'true' }), allow: 'i' } });
    await wire.initiator.established;
    wire.responder.on('stream', (stream: MuxStream) => {
      stream.pause();
      const socket = connect({ host: '127.0.0.1', port: (source.address() as AddressInfo).port, allowHalfOpen: true });
      socket.once('connect', () => {
        new StreamBridge(socket, stream, { logger: silentLogger, resource: 'outlet', peer: 'inlet' });
        stream.resume();
      });
    });
    const inlet = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) => {
      new StreamBridge(socket, wire.initiator.openStream(), { logger: silentLogger, resource: 'inlet', peer: 'outlet' });
      socket.resume();
    });
    await new Promise<void>((resolve) => inlet.listen(0, '127.0.0.1', () => resolve()));
    const client = await connectTcp(`127.0.0.1:${(inlet.address() as AddressInfo).port}`);
    try {
      client.socket.pause();
      // Wait (bounded) until the source makes no progress for 5 polls in a row.
      const progress = () => (sourceSocket === undefined ? 0 : sourceSocket.bytesWritten - sourceSocket.writableLength);
      let last = -1;
      let still = 0;
      for (let poll = 0; poll < 300 && still < 5; poll++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        const now = progress();
        still = now === last ? still + 1 : 0;
        last = now;
      }
      expect(still).toBe(5);
      expect(last).toBeGreaterThan(0);
      expect(last).toBeLessThan(96 * 1024 * 1024);
      // Reading again lets the source move on.
      client.socket.resume();
      await client.waitForBytes(last + 16 * 1024 * 1024, 30_000);
      expect(progress()).toBeGreaterThan(last);
    } finally {
      client.socket.destroy();
      wire.initiator.close('WICKET_ERR_CHANNEL_CLOSED', 'test over');
      wire.responder.close('WICKET_ERR_CHANNEL_CLOSED', 'test over');
      await new Promise<void>((resolve) => inlet.close(() => resolve()));
      sourceSocket?.destroy();
      await new Promise<void>((resolve) => source.close(() => resolve()));
    }
  });
});
