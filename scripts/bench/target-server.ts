// The benchmark's target service, run as its own process so the client and the service do not
// share an event loop. Two listeners on 127.0.0.1:
//   sink: reads until the client half-closes, then answers the byte count (u64) and ends;
//   echo: writes back every byte it reads.
// Prints one JSON line {"sink": port, "echo": port} on stdout when listening.
import { createServer, type Socket } from 'node:net';

function listen(onSocket: (socket: Socket) => void): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer(onSocket);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : 0);
    });
  });
}

const sink = await listen((socket) => {
  let count = 0;
  socket.on('data', (chunk) => {
    count += chunk.length;
  });
  socket.on('end', () => {
    const answer = Buffer.alloc(8);
    answer.writeBigUInt64BE(BigInt(count));
    socket.end(answer);
  });
  socket.on('error', () => socket.destroy());
});

const echo = await listen((socket) => {
  socket.setNoDelay(true);
  socket.pipe(socket);
  socket.on('error', () => socket.destroy());
});

process.stdout.write(`${JSON.stringify({ sink, echo })}\n`);
process.on('SIGTERM', () => process.exit(0));
