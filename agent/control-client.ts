import { connect } from 'node:net';
import { ERROR_CODES, type ErrorCode, wicketError } from '../protocol/errors.js';
import { permissionError } from './vault.js';
import { CONTROL_MAX_LINE, CONTROL_REQUEST_TIMEOUT_MS } from '../protocol/limits.js';
import type { ControlOp } from './control-server.js';

// The CLI's side of the control socket (control-server.ts has the protocol): one request, one
// reply, then the connection closes. A node that is not running — no socket file, or a stale one
// nobody answers — is WICKET_ERR_CONTROL with the fix in the message. An error reply comes back as
// a WicketError with the node's code, so the CLI reports it exactly as if it had failed locally.

function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_CODES, code);
}

export async function controlRequest(
  socketPath: string,
  op: ControlOp,
  args: Record<string, unknown> = {},
  timeoutMs = CONTROL_REQUEST_TIMEOUT_MS,
): Promise<unknown> {
  return new Promise<unknown>((resolve, reject) => {
    const socket = connect(socketPath);
    let buffered = '';
    let settled = false;
    const finish = (err: Error | undefined, value?: unknown) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (err !== undefined) reject(err);
      else resolve(value);
    };
    const timer = setTimeout(() => finish(wicketError('WICKET_ERR_CONTROL', `the node did not answer ${op} within ${timeoutMs} ms`)), timeoutMs);
    socket.setEncoding('utf8');
    socket.once('connect', () => socket.write(`${JSON.stringify({ id: 1, op, args })}\n`));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      const denied = permissionError(err, socketPath, 'connect to the node\'s control socket (w on the socket, x on the agent home)');
      if (denied !== undefined) return finish(denied);
      const notRunning = err.code === 'ENOENT' || err.code === 'ECONNREFUSED';
      finish(
        wicketError(
          'WICKET_ERR_CONTROL',
          notRunning
            ? `no node is running for this home (${socketPath}); start it with \`agent node start\` (same WICKET_HOME)`
            : `control socket ${socketPath}: ${err.code ?? err.message}`,
        ),
      );
    });
    socket.on('data', (text: string) => {
      buffered += text;
      const newline = buffered.indexOf('\n');
      if (newline < 0) {
        // The node's answers are small except status; cap them all the same.
        if (buffered.length > 64 * CONTROL_MAX_LINE) finish(wicketError('WICKET_ERR_CONTROL', 'reply from the node is too long'));
        return;
      }
      let reply: { id?: unknown; result?: unknown; error?: { code?: unknown; message?: unknown } };
      try {
        reply = JSON.parse(buffered.slice(0, newline)) as typeof reply;
      } catch {
        finish(wicketError('WICKET_ERR_CONTROL', 'reply from the node is not JSON'));
        return;
      }
      if (reply.error !== undefined && reply.error !== null) {
        const code = isErrorCode(reply.error.code) ? reply.error.code : 'WICKET_ERR_CONTROL';
        const message = typeof reply.error.message === 'string' ? reply.error.message : 'request failed';
        // The node's message already starts with "CODE: "; keep only the detail.
        const detail = message.startsWith(`${code}: `) ? message.slice(code.length + 2) : message;
        finish(wicketError(code, detail));
        return;
      }
      finish(undefined, reply.result);
    });
    socket.on('close', () => finish(wicketError('WICKET_ERR_CONTROL', 'the node closed the control connection without answering')));
  });
}
