import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';

// A TCP echo target for portal tests, on 127.0.0.1 only. Echoes every byte back with
// backpressure (pipe), half-closes when the client half-closes (FIN in → FIN out after the echo),
// and can abort every live connection with a TCP RST (`resetAll`) to play a target that dies
// mid-stream.

export interface EchoServer {
  port: number;
  /** "127.0.0.1:PORT" */
  address: string;
  /** Live connections. */
  readonly connections: ReadonlySet<Socket>;
  /** Connections accepted since start. */
  accepted(): number;
  /** Resolves when at least `count` connections have been accepted (bounded by `timeoutMs`). */
  waitForConnections(count: number, timeoutMs?: number): Promise<void>;
  /** RST every live connection (a crashed target, from the outlet's point of view). */
  resetAll(): void;
  close(): Promise<void>;
}

export interface EchoServerOptions {
  /** Do not echo: just hold connections open and read (a target that never answers). */
  silent?: boolean;
  /** Serve TLS with this certificate and key (PEM): a target for outlets with --tls. */
  tls?: { cert: Buffer | string; key: Buffer | string };
}

export async function startEchoServer(options: EchoServerOptions = {}): Promise<EchoServer> {
  const connections = new Set<Socket>();
  let accepted = 0;
  const waiters: (() => void)[] = [];
  const onConnection = (socket: Socket) => {
    accepted++;
    connections.add(socket);
    socket.setNoDelay(true);
    socket.on('close', () => connections.delete(socket));
    socket.on('error', () => undefined);
    if (options.silent === true) socket.resume();
    else socket.pipe(socket); // pipe ends our side when theirs ends: FIN after the echo
    for (const wake of waiters.splice(0)) wake();
  };
  const server: Server =
    options.tls === undefined
      ? createServer({ allowHalfOpen: true }, onConnection)
      : createTlsServer({ allowHalfOpen: true, cert: options.tls.cert, key: options.tls.key }, onConnection);
  server.on('tlsClientError', () => undefined);
  // Every TCP connection, including TLS ones still in their handshake, so close() never waits.
  const raw = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    raw.add(socket);
    socket.on('close', () => raw.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    address: `127.0.0.1:${port}`,
    connections,
    accepted: () => accepted,
    async waitForConnections(count: number, timeoutMs = 10_000): Promise<void> {
      const deadline = Date.now() + timeoutMs;
      while (accepted < count) {
        if (Date.now() > deadline) throw new Error(`echo server: ${accepted} of ${count} connections after ${timeoutMs} ms`);
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 100);
        });
      }
    },
    resetAll(): void {
      // A TLS socket cannot RST itself; its TCP socket underneath can.
      for (const socket of connections) {
        const tcp = (socket as Socket & { _parent?: Socket })._parent ?? socket;
        try {
          tcp.resetAndDestroy();
        } catch {
          socket.destroy();
        }
      }
    },
    close(): Promise<void> {
      for (const socket of connections) socket.destroy();
      for (const socket of raw) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

export interface TcpOutcome {
  /** Every byte received before the connection ended. */
  received: Buffer;
  /** 'end': a clean FIN; 'reset': ECONNRESET (or EPIPE) — a broken stream. */
  ending: 'end' | 'reset' | 'error';
  errorCode?: string;
}

/**
 * A client connection that records how it ends: a clean FIN ('end') and a TCP RST ('reset') are
 * what the portal tests tell apart. `write` sends, `end` half-closes, `outcome` resolves when the
 * socket is closed (bounded by `timeoutMs`: a hang is a failure, not a wait forever).
 */
export interface TcpClient {
  socket: Socket;
  write(data: Buffer): Promise<void>;
  end(): void;
  /** Resolves once `n` bytes have arrived (or rejects at the timeout). */
  waitForBytes(n: number, timeoutMs?: number): Promise<void>;
  received(): Buffer;
  outcome(timeoutMs?: number): Promise<TcpOutcome>;
}

/** Connects, sends `data`, half-closes, and resolves with how the connection ended. */
export async function sendThenFinish(address: string, data: Buffer, timeoutMs?: number): Promise<TcpOutcome> {
  const client = await connectTcp(address);
  await client.write(data);
  client.end();
  return client.outcome(timeoutMs);
}

export async function connectTcp(address: string): Promise<TcpClient> {
  const colon = address.lastIndexOf(':');
  const host = address.slice(0, colon).replace(/^\[|\]$/g, '');
  const port = Number(address.slice(colon + 1));
  const socket = connect({ host, port, allowHalfOpen: true });
  socket.setNoDelay(true);
  const chunks: Buffer[] = [];
  let bytes = 0;
  let ending: TcpOutcome['ending'] | undefined;
  let errorCode: string | undefined;
  const byteWaiters = new Set<() => void>();
  socket.on('data', (chunk: Buffer) => {
    chunks.push(chunk);
    bytes += chunk.length;
    for (const wake of byteWaiters) wake();
  });
  socket.on('end', () => {
    ending ??= 'end';
  });
  socket.on('error', (err: NodeJS.ErrnoException) => {
    errorCode = err.code;
    ending = err.code === 'ECONNRESET' || err.code === 'EPIPE' ? 'reset' : 'error';
  });
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const received = () => Buffer.concat(chunks);
  return {
    socket,
    write: (data) =>
      new Promise<void>((resolve, reject) => {
        socket.write(data, (err) => (err ? reject(err) : resolve()));
      }),
    end: () => socket.end(),
    received,
    async waitForBytes(n: number, timeoutMs = 15_000): Promise<void> {
      const deadline = Date.now() + timeoutMs;
      while (bytes < n) {
        if (socket.destroyed) throw new Error(`connection closed after ${bytes} of ${n} bytes (${ending ?? 'closed'})`);
        if (Date.now() > deadline) throw new Error(`${bytes} of ${n} bytes after ${timeoutMs} ms`);
        await new Promise<void>((resolve) => {
          byteWaiters.add(resolve);
          setTimeout(resolve, 100);
        }).finally(() => undefined);
        byteWaiters.clear();
      }
    },
    async outcome(timeoutMs = 15_000): Promise<TcpOutcome> {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`connection still open after ${timeoutMs} ms (received ${bytes} bytes)`)), timeoutMs);
      });
      try {
        await Promise.race([closed, timeout]);
      } finally {
        clearTimeout(timer);
      }
      const result: TcpOutcome = { received: received(), ending: ending ?? 'error' };
      if (errorCode !== undefined) result.errorCode = errorCode;
      return result;
    },
  };
}

/** One new connection to `address` (an inlet in front of an echo), `text` echoed back within `timeoutMs`. */
export async function echoOnce(address: string, text: string, timeoutMs: number): Promise<boolean> {
  const app = await connectTcp(address).catch(() => undefined);
  if (app === undefined) return false;
  try {
    await app.write(Buffer.from(text));
    await app.waitForBytes(text.length, timeoutMs);
    return app.received().toString() === text;
  } catch {
    return false;
  } finally {
    app.socket.destroy();
  }
}

/**
 * When the first new connection to `address` echoed, probing every 50 ms (each probe allowed 1 s)
 * for at most `deadlineMs`: how soon a path came back (failover tests). Undefined: it did not.
 */
export async function firstEchoWithin(address: string, deadlineMs: number): Promise<number | undefined> {
  const deadline = Date.now() + deadlineMs;
  for (let attempt = 0; Date.now() < deadline && attempt < 500; attempt++) {
    if (await echoOnce(address, `probe ${attempt}`, 1_000)) return Date.now();
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return undefined;
}
