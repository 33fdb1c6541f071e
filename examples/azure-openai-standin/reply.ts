// A successful answer, and how it goes on the wire. Every operation decides its whole answer up
// front (a JSON body, or the list of server-sent events), so the faults apply the same way to
// all of them: a first-token delay before the head, a pause between events, and a cut after N
// body bytes that kills the connection.
//
// Two event-stream dialects exist: chat and legacy completions send bare `data:` lines ending
// with `data: [DONE]`; the Responses API names each event (`event: response.created`) and ends
// with `response.completed` (or `response.incomplete`), no `[DONE]`.

import type { OutgoingHttpHeaders } from 'node:http';
import type { Faults, FaultyBodyWriter } from './fault-injection.js';

export type Reply =
  | { readonly kind: 'json'; readonly body: unknown }
  | { readonly kind: 'sse'; readonly frames: readonly string[] };

/** `data: …` frames for each chunk, then `data: [DONE]`. */
export function dataFrames(chunks: readonly unknown[]): string[] {
  return [...chunks.map((chunk) => `data: ${JSON.stringify(chunk)}\n\n`), 'data: [DONE]\n\n'];
}

/** One named event, as the Responses API sends it. */
export function namedFrame(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

/**
 * Sends `reply` with status 200. `writeHead` is the server's (it counts the status); resolves
 * when the reply is out, was cut by a fault, or the client went away.
 */
export async function sendReply(
  reply: Reply,
  writer: FaultyBodyWriter,
  faults: Faults,
  writeHead: (status: number, headers: OutgoingHttpHeaders) => boolean,
): Promise<void> {
  await writer.pause(faults.firstTokenDelayMs);
  if (reply.kind === 'json') {
    const body = JSON.stringify(reply.body);
    if (!writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) })) return;
    if (await writer.write(body)) writer.end();
    return;
  }
  if (!writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' })) return;
  for (const [index, frame] of reply.frames.entries()) {
    if (index > 0) await writer.pause(faults.chunkDelayMs);
    if (!(await writer.write(frame))) return;
  }
  writer.end();
}

/** What an operation knows when it answers: the deployment, its model, and the clock. */
export interface OperationContext {
  readonly deployment: string;
  /** The model version the deployment reports (e.g. gpt-4o-mini-2024-07-18). */
  readonly model: string;
  readonly nowMs: number;
}
