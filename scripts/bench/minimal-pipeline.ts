// A reference for the latency floor: the least a Node pipeline with Wicket's shape can do. The
// same three processes (inlet -> relay -> outlet over `ws`), and on each message, when CRYPTO=1,
// one ChaCha20-Poly1305 seal at the sender and one open at the receiver, on libsodium as Wicket
// does. Nothing else: no authentication, no Noise handshake (a fixed key), no mux, no flow
// control, one connection. Not a product; `latency-reference.ts` runs it next to Wicket and ssh.
//
//   relay  LISTEN_PORT                  ws server; forwards every message to the other connection
//   out    RELAY_PORT TARGET_PORT       ws client; relay messages <-> one TCP connection to target
//   in     RELAY_PORT LISTEN_PORT       ws client; the latest accepted TCP connection <-> relay messages
//
// Prints "ready" on stdout once listening or connected. Loopback only.
import { connect, createServer, type Socket } from 'node:net';
import sodium from 'sodium-native';
import WebSocket, { WebSocketServer } from 'ws';
import { AEAD_TAG_LEN as TAG } from '../../protocol/limits.js';

const [role, first, second] = process.argv.slice(2);
const CRYPTO = process.env.CRYPTO === '1';
// One key per direction (inlet -> outlet, outlet -> inlet), each with its own counter nonce.
const KEY_UP = Buffer.alloc(32, 7);
const KEY_DOWN = Buffer.alloc(32, 8);

/** One direction's AEAD with a counter nonce, as a Noise CipherState would use it. */
class Direction {
  #n = 0;
  readonly #nonce = Buffer.alloc(12);

  constructor(private readonly key: Buffer) {}

  seal(plaintext: Buffer): Buffer {
    if (!CRYPTO) return plaintext;
    const message = Buffer.allocUnsafe(plaintext.length + TAG);
    sodium.crypto_aead_chacha20poly1305_ietf_encrypt(message, plaintext, null, null, this.#next(), this.key);
    return message;
  }

  open(message: Buffer): Buffer {
    if (!CRYPTO) return message;
    const plaintext = Buffer.allocUnsafe(message.length - TAG);
    sodium.crypto_aead_chacha20poly1305_ietf_decrypt(plaintext, null, message, null, this.#next(), this.key);
    return plaintext;
  }

  #next(): Buffer {
    this.#nonce.writeUInt32LE(this.#n++, 4);
    return this.#nonce;
  }
}

async function dialRelay(port: number): Promise<WebSocket> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: false });
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  return ws;
}

if (role === 'relay') {
  const server = new WebSocketServer({ host: '127.0.0.1', port: Number(first), perMessageDeflate: false });
  const peers: WebSocket[] = [];
  server.on('connection', (ws) => {
    peers.push(ws);
    ws.on('message', (data: Buffer) => peers.find((p) => p !== ws)?.send(data, { binary: true }));
  });
  server.on('listening', () => console.log('ready'));
} else if (role === 'out') {
  const ws = await dialRelay(Number(first));
  const target = connect(Number(second), '127.0.0.1');
  await new Promise((resolve) => target.once('connect', resolve));
  const fromInlet = new Direction(KEY_UP);
  const toInlet = new Direction(KEY_DOWN);
  target.setNoDelay(true);
  ws.on('message', (data: Buffer) => target.write(fromInlet.open(data)));
  target.on('data', (chunk: Buffer) => ws.send(toInlet.seal(chunk), { binary: true }));
  console.log('ready');
} else if (role === 'in') {
  const ws = await dialRelay(Number(first));
  // One stream: each new client connection takes over from the previous one (the outlet keeps
  // its one target connection, and both ends keep counting nonces).
  const toOutlet = new Direction(KEY_UP);
  const fromOutlet = new Direction(KEY_DOWN);
  let client: Socket | undefined;
  ws.on('message', (data: Buffer) => {
    const plaintext = fromOutlet.open(data);
    if (client !== undefined && !client.destroyed) client.write(plaintext);
  });
  createServer((socket) => {
    client?.destroy();
    client = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => ws.send(toOutlet.seal(chunk), { binary: true }));
  }).listen(Number(second), '127.0.0.1', () => console.log('ready'));
} else {
  console.error('usage: minimal-pipeline.ts relay PORT | out RELAY_PORT TARGET_PORT | in RELAY_PORT LISTEN_PORT');
  process.exit(2);
}
