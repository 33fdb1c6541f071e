// A reference for the latency and HTTP floors: the least a Node pipeline with Wicket's shape can
// do. The same three processes (inlet -> relay -> outlet over `ws`), and on each message, when
// CRYPTO=1, one ChaCha20-Poly1305 seal at the sender and one open at the receiver, on libsodium as
// Wicket does. With TLS=1 (CERT and KEY: PEM files) the two relay hops are wss:// with the relay's
// own TLS 1.3 suites, as deployed. Nothing else: no authentication (the relay's certificate is not
// checked), no Noise handshake (a fixed key), no flow control, no batching (each read is one
// message). Connections are carried side by side, each message being [connection id u32][kind u8]
// [bytes] (kinds: open, data, end, reset), so wrk's 64-connection and new-connection runs can go
// through it too. Not a product; `latency-reference.ts` and `http-reference.ts` run it next to
// Wicket and ssh -L.
//
//   relay  LISTEN_PORT                  ws server; forwards every message to the other connection
//   out    RELAY_PORT TARGET_PORT       ws client; relay messages <-> a TCP connection to target per id
//   in     RELAY_PORT LISTEN_PORT       ws client; each accepted TCP connection (an id) <-> relay messages
//
// Prints "ready" on stdout once listening or connected. Loopback only.
import { readFileSync } from 'node:fs';
import { createServer as httpsServer } from 'node:https';
import { connect, createServer, type Socket } from 'node:net';
import sodium from 'sodium-native';
import WebSocket, { WebSocketServer } from 'ws';
import { AEAD_TAG_LEN as TAG } from '../../protocol/limits.js';
import { RELAY_TLS_CIPHERS, RELAY_TLS_MIN_VERSION } from '../../protocol/relay-tls.js';

const [role, first, second] = process.argv.slice(2);
const CRYPTO = process.env.CRYPTO === '1';
const TLS = process.env.TLS === '1';
const tlsOptions = { minVersion: RELAY_TLS_MIN_VERSION, ciphers: RELAY_TLS_CIPHERS } as const;
// One key per direction (inlet -> outlet, outlet -> inlet), each with its own counter nonce.
const KEY_UP = Buffer.alloc(32, 7);
const KEY_DOWN = Buffer.alloc(32, 8);

const HEADER = 5;
const [OPEN, DATA, END, RESET] = [0, 1, 2, 3];

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
  const ws = new WebSocket(`${TLS ? 'wss' : 'ws'}://127.0.0.1:${port}`, {
    perMessageDeflate: false,
    // As Wicket's agents: an all-zero mask, so frames go out without an XOR pass (relay-dial.ts).
    generateMask: (mask: Buffer) => {
      mask.fill(0);
    },
    ...(TLS ? { rejectUnauthorized: false, ...tlsOptions } : {}),
  });
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  return ws;
}

if (role === 'relay') {
  const https = TLS ? httpsServer({ cert: readFileSync(process.env.CERT!), key: readFileSync(process.env.KEY!), ...tlsOptions }) : undefined;
  const server = https
    ? new WebSocketServer({ server: https, perMessageDeflate: false })
    : new WebSocketServer({ host: '127.0.0.1', port: Number(first), perMessageDeflate: false });
  const peers: WebSocket[] = [];
  server.on('connection', (ws) => {
    peers.push(ws);
    ws.on('message', (data: Buffer) => peers.find((p) => p !== ws)?.send(data, { binary: true }));
  });
  if (https) https.listen(Number(first), '127.0.0.1', () => console.log('ready'));
  else server.on('listening', () => console.log('ready'));
} else if (role === 'out' || role === 'in') {
  const ws = await dialRelay(Number(first));
  const [sending, receiving] = role === 'in' ? [new Direction(KEY_UP), new Direction(KEY_DOWN)] : [new Direction(KEY_DOWN), new Direction(KEY_UP)];
  const sockets = new Map<number, Socket>();
  const send = (id: number, kind: number, data?: Buffer) => {
    const plaintext = Buffer.allocUnsafe(HEADER + (data?.length ?? 0));
    plaintext.writeUInt32BE(id, 0);
    plaintext[4] = kind;
    data?.copy(plaintext, HEADER);
    ws.send(sending.seal(plaintext), { binary: true });
  };
  const carry = (id: number, socket: Socket) => {
    sockets.set(id, socket);
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => send(id, DATA, chunk));
    socket.on('end', () => send(id, END));
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      if (sockets.delete(id)) send(id, RESET);
    });
  };
  ws.on('message', (data: Buffer) => {
    const message = receiving.open(data);
    const id = message.readUInt32BE(0);
    const kind = message[4];
    if (kind === OPEN && role === 'out') carry(id, connect({ port: Number(second), host: '127.0.0.1', allowHalfOpen: true }));
    const socket = sockets.get(id);
    if (socket === undefined) return;
    if (kind === DATA) socket.write(message.subarray(HEADER));
    else if (kind === END) socket.end();
    else if (kind === RESET) {
      sockets.delete(id);
      socket.destroy();
    }
  });
  if (role === 'out') console.log('ready');
  else {
    let nextId = 0;
    createServer({ allowHalfOpen: true }, (socket) => {
      const id = nextId++;
      send(id, OPEN);
      carry(id, socket);
    }).listen(Number(second), '127.0.0.1', () => console.log('ready'));
  }
} else {
  console.error('usage: minimal-pipeline.ts relay PORT | out RELAY_PORT TARGET_PORT | in RELAY_PORT LISTEN_PORT');
  process.exit(2);
}
