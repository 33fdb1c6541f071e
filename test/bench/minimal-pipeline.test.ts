import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupAll } from '../../scripts/bench/cleanup.js';
import { startMinimalPipeline } from '../../scripts/bench/minimal-path.js';
import { selfSignedCertificate } from '../../scripts/bench/self-signed.js';

// The reference benches compare Wicket with minimal-pipeline.ts: its figures mean something only
// if it carries every connection's bytes to its own target connection and back, whole and in
// order, FIN included, over its TLS relay hops and end-to-end AEAD.

let echo: Server;
let echoPort: number;

beforeAll(async () => {
  echo = createServer({ allowHalfOpen: true }, (socket) => socket.pipe(socket));
  await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
  echoPort = (echo.address() as { port: number }).port;
});

afterAll(async () => {
  await cleanupAll();
  await new Promise((resolve) => echo.close(resolve));
});

/** Sends `payload`, half-closes, and resolves with everything read until the far end's FIN. */
function roundTrip(port: number, payload: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('end', () => {
      socket.end();
      resolve(Buffer.concat(chunks));
    });
    socket.on('error', reject);
    socket.write(payload, () => socket.end());
  });
}

describe('minimal pipeline (reference bench)', () => {
  it('carries 8 concurrent connections, each its own bytes back, over wss:// with AEAD', async () => {
    const pipeline = await startMinimalPipeline(echoPort, { crypto: true, tls: selfSignedCertificate('minimal-pipeline-test') });
    const payloads = Array.from({ length: 8 }, (_, i) => Buffer.alloc(200_000 + i * 1_000, i + 1));
    const answers = await Promise.all(payloads.map((payload) => roundTrip(pipeline.port, payload)));
    answers.forEach((answer, i) => expect(answer.equals(payloads[i]!)).toBe(true));
  });

  it('carries a connection over plain ws:// without the AEAD', async () => {
    const pipeline = await startMinimalPipeline(echoPort, { crypto: false });
    const payload = Buffer.from('x'.repeat(70_000));
    expect((await roundTrip(pipeline.port, payload)).equals(payload)).toBe(true);
  });
});
