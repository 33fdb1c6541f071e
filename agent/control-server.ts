import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { asWicketError, isWicketError, wicketError } from '../protocol/errors.js';
import { CONTROL_MAX_CLIENTS, CONTROL_MAX_LINE } from '../protocol/limits.js';

// The node's local control socket: a Unix socket at `${home}/control.sock`, mode 0600 (only the
// agent's user may drive the node), speaking newline-delimited JSON:
//
//   request  {"id": <u32>, "op": "<op>", "args": {...}}\n
//   reply    {"id": <u32>, "result": <any>}\n   or   {"id": <u32|null>, "error": {"code", "message"}}\n
//
// Hostile input is answered, never fatal: a line that is not JSON, not an object, or names an
// unknown op gets an error reply (WICKET_ERR_CONTROL_REQUEST) and the connection stays usable; a
// line longer than CONTROL_MAX_LINE gets an error reply and the connection is closed (it is
// buffered only up to the cap, so a client cannot make the node hold more than that).

export const CONTROL_OPS = [
  'status',
  'inlet.create',
  'inlet.list',
  'inlet.delete',
  'outlet.create',
  'outlet.list',
  'outlet.delete',
] as const;
export type ControlOp = (typeof CONTROL_OPS)[number];

export interface ControlRequest {
  id: number | null;
  op: ControlOp;
  args: Record<string, unknown>;
}

/** Handles one validated request; a throw becomes an error reply with the error's code. */
export type ControlHandler = (op: ControlOp, args: Record<string, unknown>) => Promise<unknown> | unknown;

export interface ControlReply {
  id: number | null;
  result?: unknown;
  error?: { code: string; message: string };
}

/** Parses one request line. Throws WICKET_ERR_CONTROL_REQUEST with what is wrong. */
export function parseControlRequest(line: string): ControlRequest {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw wicketError('WICKET_ERR_CONTROL_REQUEST', 'request is not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw wicketError('WICKET_ERR_CONTROL_REQUEST', 'request is not a JSON object');
  }
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (key !== 'id' && key !== 'op' && key !== 'args') throw wicketError('WICKET_ERR_CONTROL_REQUEST', `unexpected field ${JSON.stringify(key.slice(0, 40))}`);
  }
  const id = record.id;
  if (id !== undefined && !(Number.isInteger(id) && (id as number) >= 0 && (id as number) <= 0xffff_ffff)) {
    throw wicketError('WICKET_ERR_CONTROL_REQUEST', 'id must be an unsigned 32-bit integer');
  }
  const op = record.op;
  if (typeof op !== 'string' || !(CONTROL_OPS as readonly string[]).includes(op)) {
    const shown = typeof op === 'string' ? JSON.stringify(op.slice(0, 40)) : typeof op;
    throw wicketError('WICKET_ERR_CONTROL_REQUEST', `unknown op ${shown} (known: ${CONTROL_OPS.join(', ')})`);
  }
  const args = record.args ?? {};
  if (typeof args !== 'object' || args === null || Array.isArray(args)) {
    throw wicketError('WICKET_ERR_CONTROL_REQUEST', 'args must be a JSON object');
  }
  return { id: (id as number | undefined) ?? null, op: op as ControlOp, args: args as Record<string, unknown> };
}

/** The request id of a line we could not parse, when it is recoverable, so the client can match. */
function bestEffortId(line: string): number | null {
  const match = /"id"\s*:\s*(\d{1,10})/.exec(line.slice(0, 256));
  const id = match === null ? NaN : Number(match[1]);
  return Number.isInteger(id) && id <= 0xffff_ffff ? id : null;
}

export class ControlServer {
  readonly path: string;
  readonly #server: Server;
  readonly #clients = new Set<Socket>();
  readonly #handler: ControlHandler;
  readonly #log: Logger;

  private constructor(path: string, handler: ControlHandler, logger: Logger) {
    this.path = path;
    this.#handler = handler;
    this.#log = logger.child({ component: 'control' });
    this.#server = createServer((socket) => this.#accept(socket));
    this.#server.on('error', (err) => this.#log.error({ err }, 'control socket error'));
  }

  /**
   * Listens on `path` (mode 0600). A stale socket file from a crashed node is replaced; a live one
   * means another node runs with this home: WICKET_ERR_CONTROL.
   */
  static async listen(path: string, handler: ControlHandler, logger: Logger): Promise<ControlServer> {
    await clearStaleSocket(path);
    const control = new ControlServer(path, handler, logger);
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) =>
        reject(wicketError('WICKET_ERR_CONTROL', `cannot listen on the control socket ${path}: ${err.code ?? err.message}`));
      control.#server.once('error', onError);
      // The socket file is created inside listen(): a tight umask means it is never, even for an
      // instant, connectable by others; chmod afterwards states the mode explicitly.
      const previous = process.umask(0o177);
      try {
        control.#server.listen(path, () => {
          control.#server.off('error', onError);
          resolve();
        });
      } finally {
        process.umask(previous);
      }
    });
    chmodSync(path, 0o600);
    return control;
  }

  async close(): Promise<void> {
    for (const client of this.#clients) client.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    try {
      unlinkSync(this.path);
    } catch {
      // already gone
    }
  }

  #accept(socket: Socket): void {
    if (this.#clients.size >= CONTROL_MAX_CLIENTS) {
      socket.end(reply({ id: null, error: { code: 'WICKET_ERR_CONTROL_REQUEST', message: 'WICKET_ERR_CONTROL_REQUEST: too many control clients' } }));
      return;
    }
    this.#clients.add(socket);
    socket.on('close', () => this.#clients.delete(socket));
    socket.on('error', () => socket.destroy());
    let buffered = '';
    // One request at a time per connection, in order: replies keep the request order.
    let queue: Promise<void> = Promise.resolve();
    socket.setEncoding('utf8');
    socket.on('data', (text: string) => {
      buffered += text;
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        if (line.length > CONTROL_MAX_LINE) {
          this.#refuseOversize(socket);
          return;
        }
        if (line.trim() === '') continue;
        queue = queue.then(() => this.#handle(socket, line));
      }
      if (buffered.length > CONTROL_MAX_LINE) this.#refuseOversize(socket);
    });
  }

  #refuseOversize(socket: Socket): void {
    this.#log.warn({ code: 'WICKET_ERR_CONTROL_REQUEST' }, 'control request line over the cap; connection closed');
    socket.removeAllListeners('data');
    socket.end(reply({ id: null, error: { code: 'WICKET_ERR_CONTROL_REQUEST', message: `WICKET_ERR_CONTROL_REQUEST: request line longer than ${CONTROL_MAX_LINE} bytes` } }));
    socket.destroySoon();
  }

  async #handle(socket: Socket, line: string): Promise<void> {
    let answer: ControlReply;
    let request: ControlRequest | undefined;
    try {
      request = parseControlRequest(line);
      const result = await this.#handler(request.op, request.args);
      answer = { id: request.id, result: result ?? null };
    } catch (err) {
      const error = asWicketError(err);
      if (!isWicketError(err)) this.#log.error({ err, op: request?.op }, 'control handler failed unexpectedly');
      else this.#log.debug({ code: error.code, op: request?.op }, 'control request refused');
      answer = { id: request?.id ?? bestEffortId(line), error: { code: error.code, message: error.message } };
    }
    if (!socket.destroyed && socket.writable) socket.write(reply(answer));
  }
}

function reply(answer: ControlReply): string {
  return `${JSON.stringify(answer)}\n`;
}

async function clearStaleSocket(path: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch {
    return; // nothing there
  }
  if (!isSocket) throw wicketError('WICKET_ERR_CONTROL', `${path} exists and is not a socket; remove it`);
  const alive = await new Promise<boolean>((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (alive) throw wicketError('WICKET_ERR_CONTROL', `another node is already running with this home (${path} answers)`);
  unlinkSync(path);
}
