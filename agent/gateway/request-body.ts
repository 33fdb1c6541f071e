import type { IncomingMessage } from 'node:http';
import type { ByteBudget } from './byte-budget.js';

// Reads an app's request body whole (the gateway parses it to estimate tokens and to ask for
// streamed usage), refusing one larger than `limit` as soon as its length says so or its bytes
// pass it, giving up when the front's deadline aborts (a body trickled in to hold the stream), and
// taking every byte it keeps from the gateway's shared budget first ('busy' when that is spent).
// `held` is what was taken: the caller gives it back once the request is over, whatever happened.

export type BodyResult = ({ kind: 'body'; body: Buffer } | { kind: 'too-large' } | { kind: 'timeout' } | { kind: 'aborted' } | { kind: 'busy' }) & { held: number };

export function readRequestBody(req: IncomingMessage, limit: number, deadline: AbortSignal, budget: ByteBudget): Promise<BodyResult> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return Promise.resolve({ kind: 'too-large', held: 0 });
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    let size = 0;
    let settled = false;
    const settle = (result: { kind: 'body'; body: Buffer } | { kind: 'too-large' | 'timeout' | 'aborted' | 'busy' }): void => {
      if (settled) return;
      settled = true;
      deadline.removeEventListener('abort', onDeadline);
      req.off('data', onData);
      resolve({ ...result, held: size });
    };
    const onDeadline = (): void => settle({ kind: 'timeout' });
    const onData = (chunk: Buffer): void => {
      if (size + chunk.length > limit) {
        settle({ kind: 'too-large' });
        return;
      }
      if (!budget.take(chunk.length)) {
        settle({ kind: 'busy' });
        return;
      }
      size += chunk.length;
      parts.push(chunk);
    };
    if (deadline.aborted) return settle({ kind: 'timeout' });
    deadline.addEventListener('abort', onDeadline);
    req.on('data', onData);
    req.once('end', () => settle({ kind: 'body', body: parts.length === 1 ? parts[0]! : Buffer.concat(parts, size) }));
    req.once('error', () => settle({ kind: 'aborted' }));
    req.once('close', () => settle(req.complete ? { kind: 'body', body: Buffer.concat(parts, size) } : { kind: 'aborted' }));
  });
}
