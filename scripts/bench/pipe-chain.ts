// A reference for the bulk ceiling: the least three Node processes in Wicket's shape can do.
// Each accepted connection is piped to a connection of its own to the next process (Node's
// stream pipe, with its backpressure), with TLS 1.3 on the two middle hops as Wicket's relay hops
// have (TLS=1, the relay's own suites) or without it; with AEAD=1 the first and last process also
// seal and open every chunk they read with ChaCha20-Poly1305 on node:crypto, as Wicket's channel
// does for bulk messages (a 4-byte length before each sealed chunk; a fixed key, a counter
// nonce). Nothing else: no WebSocket framing, no multiplexing, no authentication, no handshake.
// Not a product; `npm run bench:bulk-reference` runs it next to Wicket and ssh -L.
//
//   in   LISTEN_PORT NEXT_PORT     plain TCP in, TLS (or TCP) out        (the inlet's place)
//   mid  LISTEN_PORT NEXT_PORT     TLS (or TCP) in and out               (the relay's place)
//   out  LISTEN_PORT TARGET_PORT   TLS (or TCP) in, plain TCP out        (the outlet's place)
//
// TLS=1 takes the certificate and key from CERT and KEY (PEM files). Prints "ready" on stdout
// once listening. Loopback only; one direction (upload) is sealed, the other piped as it is.
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect as netConnect, createServer as netServer, type Socket } from 'node:net';
import { Transform, type TransformCallback } from 'node:stream';
import { connect as tlsConnect, createServer as tlsServer } from 'node:tls';
import { RELAY_TLS_CIPHERS, RELAY_TLS_MIN_VERSION } from '../../protocol/relay-tls.js';

const [role, listenPort, nextPort] = process.argv.slice(2);
const TLS = process.env.TLS === '1';
const AEAD = process.env.AEAD === '1';
const KEY = Buffer.alloc(32, 7);
const TAG = 16;
const HOST = '127.0.0.1';

if (!['in', 'mid', 'out'].includes(role ?? '') || !Number.isInteger(Number(listenPort)) || !Number.isInteger(Number(nextPort))) {
  console.error('usage: pipe-chain.ts in|mid|out LISTEN_PORT NEXT_PORT   (TLS=1 with CERT and KEY for TLS hops; AEAD=1)');
  process.exit(2);
}

const tlsIn = TLS && role !== 'in';
const tlsOut = TLS && role !== 'out';
const tlsOptions = { minVersion: RELAY_TLS_MIN_VERSION, ciphers: RELAY_TLS_CIPHERS } as const;

function dialNext(): Socket {
  const port = Number(nextPort);
  // The reference measures bytes, not trust: the next hop's certificate is not checked.
  return tlsOut ? tlsConnect({ host: HOST, port, rejectUnauthorized: false, ...tlsOptions }) : netConnect(port, HOST);
}

/** A 12-byte nonce per message from a counter (Noise's ChaChaPoly layout). */
class Nonces {
  #n = 0;
  readonly #nonce = Buffer.alloc(12);
  next(): Buffer {
    this.#nonce.writeUInt32LE(this.#n++, 4);
    return this.#nonce;
  }
}

/** Each chunk read becomes [length u32][ciphertext][tag]. */
function sealer(): Transform {
  const nonces = new Nonces();
  return new Transform({
    transform(chunk: Buffer, _encoding, done: TransformCallback) {
      const cipher = createCipheriv('chacha20-poly1305', KEY, nonces.next(), { authTagLength: TAG });
      const head = Buffer.allocUnsafe(4);
      head.writeUInt32BE(chunk.length + TAG, 0);
      this.push(Buffer.concat([head, cipher.update(chunk), cipher.final(), cipher.getAuthTag()]));
      done();
    },
  });
}

/**
 * Undoes sealer(): whole messages are opened and their plaintext passed on. A message arrives in
 * several reads (TLS hands over at most a 16 KiB record per read); they are held as they came and
 * joined once when the message is whole, not once per read.
 */
function opener(): Transform {
  const nonces = new Nonces();
  let pieces: Buffer[] = [];
  let heldBytes = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, done: TransformCallback) {
      pieces.push(chunk);
      heldBytes += chunk.length;
      while (heldBytes >= 4) {
        if (pieces[0]!.length < 4) pieces = [Buffer.concat(pieces, heldBytes)];
        const length = pieces[0]!.readUInt32BE(0);
        if (heldBytes < 4 + length) break;
        const held = pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces, heldBytes);
        const decipher = createDecipheriv('chacha20-poly1305', KEY, nonces.next(), { authTagLength: TAG });
        decipher.setAuthTag(held.subarray(4 + length - TAG, 4 + length));
        this.push(decipher.update(held.subarray(4, 4 + length - TAG)));
        decipher.final();
        const rest = held.subarray(4 + length);
        pieces = rest.length > 0 ? [rest] : [];
        heldBytes = rest.length;
      }
      done();
    },
  });
}

/** Both directions piped; either side failing or closing takes the other down. */
function join(accepted: Socket): void {
  const next = dialNext();
  accepted.setNoDelay(true);
  next.setNoDelay(true);
  if (AEAD && role === 'in') accepted.pipe(sealer()).pipe(next);
  else if (AEAD && role === 'out') accepted.pipe(opener()).pipe(next);
  else accepted.pipe(next);
  next.pipe(accepted);
  const cut = () => {
    accepted.destroy();
    next.destroy();
  };
  accepted.on('error', cut).on('close', cut);
  next.on('error', cut).on('close', cut);
}

const server = tlsIn
  ? tlsServer({ cert: readFileSync(process.env.CERT!), key: readFileSync(process.env.KEY!), ...tlsOptions }, join)
  : netServer(join);
server.listen(Number(listenPort), HOST, () => console.log('ready'));
