import { createServer, type Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { MESH_PATH } from '../../protocol/mesh-messages.js';
import { dialRelayPeer } from '../../relay/mesh/mesh-dial.js';
import { withTimeout } from '../helpers/raw-relay-client.js';

// Dialling another relay (relay/mesh/mesh-dial.ts) against a plain WebSocket server that speaks
// first, as an accepting relay does (its hello goes out as soon as it accepts).

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
});

async function serve(onConnection: (ws: WebSocket, path: string | undefined) => void): Promise<string> {
  const server = createServer((_req, res) => res.writeHead(404).end());
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws, req) => onConnection(ws, req.url));
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  server.on('close', () => wss.close());
  return `ws://127.0.0.1:${(server.address() as { port: number }).port}`;
}

describe('mesh dial', () => {
  it('a frame the other relay sends the moment it accepts reaches the link attached on open (20 dials, none lost)', async () => {
    const paths: (string | undefined)[] = [];
    const url = await serve((ws, path) => {
      paths.push(path);
      ws.send(Buffer.from('hello first'), { binary: true });
    });
    for (let i = 0; i < 20; i++) {
      const dialled = await dialRelayPeer({ url }, 5_000, (ws) => ({ ws, first: new Promise<Buffer>((resolve) => ws.once('message', resolve)) }));
      // Attached a tick late (after the await), the listener used to miss this frame every time in one process.
      expect((await withTimeout(dialled.first, 2_000, `dial ${i}: the accepting side's first frame`)).toString()).toBe('hello first');
      dialled.ws.terminate();
    }
    expect(new Set(paths)).toEqual(new Set([MESH_PATH]));
  });

  it('nothing listening, or an HTTP answer instead of an upgrade, is WICKET_ERR_RELAY_UNREACHABLE and attaches nothing', async () => {
    let attached = 0;
    const attach = () => attached++;
    await expect(dialRelayPeer({ url: 'ws://127.0.0.1:1' }, 5_000, attach)).rejects.toThrow(/WICKET_ERR_RELAY_UNREACHABLE/);
    // A plain HTTP server on that port: 404 to the upgrade.
    const plain = createServer((_req, res) => res.writeHead(404).end());
    servers.push(plain);
    await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
    await expect(dialRelayPeer({ url: `ws://127.0.0.1:${(plain.address() as { port: number }).port}` }, 5_000, attach)).rejects.toThrow(/answered HTTP 404/);
    expect(attached).toBe(0);
  });
});
