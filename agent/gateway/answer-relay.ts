import type { ServerResponse } from 'node:http';
import { GATEWAY_USAGE_PARSE_BYTES } from '../../protocol/limits.js';
import type { BackendAnswer } from './backend.js';
import { appResponseHeaders } from './gateway-headers.js';
import { type TokenUsage, USAGE_TAIL_BYTES, usageInTail, usageOfAnswer } from './response-usage.js';
import { SseUsageFilter } from './sse-usage-filter.js';

// Passes one backend answer to the app, reading it on the way for the ledger: usage and model
// (from the whole JSON body, or from the server-sent events), and when the first token came.
// Backpressure is the app's: a write the stream refuses waits for 'drain' before the next chunk is
// read from the backend. Once the first byte went to the app nothing is retried: a backend that
// cuts the answer, or an app that leaves, ends with the app's stream reset, never a clean end.

export interface RelayOutcome {
  usage: TokenUsage | undefined;
  model: string | null;
  /** ms from `startedAt` to the first token (streams) or first body byte. */
  ttftMs: number | null;
  /** The backend's answer broke off (the app's stream was reset). */
  cut: boolean;
  /** The app left before the answer was whole. */
  appGone: boolean;
  /** What the app got, kept only when `keepText` (the content log) and only up to it. */
  text: string;
}

export interface RelayOptions {
  hideStreamUsage: boolean;
  extraHeaders: Record<string, string>;
  startedAt: number;
  /** Bytes of the answer to keep as text for the content log (0: none). */
  keepText: number;
}

export async function relayAnswer(answer: BackendAnswer, res: ServerResponse, options: RelayOptions): Promise<RelayOutcome> {
  const contentType = String(answer.headers['content-type'] ?? '');
  const filter = contentType.includes('text/event-stream') ? new SseUsageFilter({ hideUsage: options.hideStreamUsage }) : undefined;
  res.writeHead(answer.status, { ...appResponseHeaders(answer.headers, filter !== undefined && options.hideStreamUsage), ...options.extraHeaders });
  const whole: Buffer[] = [];
  let wholeBytes = 0;
  let tail: Buffer = Buffer.alloc(0);
  let firstByteAt: number | undefined;
  let text = '';
  const outcome: RelayOutcome = { usage: undefined, model: null, ttftMs: null, cut: false, appGone: false, text: '' };
  // One watcher for the app leaving, shared by every wait for 'drain' (a listener per wait would
  // pile up on a long stream to a slow app).
  let appLeft: () => void = () => {};
  const left = new Promise<void>((resolve) => (appLeft = resolve));
  res.once('close', appLeft);
  const send = async (bytes: Buffer): Promise<void> => {
    if (bytes.length === 0) return;
    firstByteAt ??= performance.now();
    if (text.length < options.keepText) text += bytes.toString('utf8', 0, Math.min(bytes.length, options.keepText - text.length));
    if (!res.write(bytes)) await Promise.race([new Promise<void>((resolve) => res.once('drain', resolve)), left]);
  };
  try {
    for await (const chunk of answer.body as AsyncIterable<Buffer>) {
      if (res.destroyed) {
        outcome.appGone = true;
        break;
      }
      if (filter === undefined) {
        // A JSON answer: kept whole up to the parse cap, else only its tail (where usage sits).
        if (wholeBytes + chunk.length <= GATEWAY_USAGE_PARSE_BYTES) whole.push(chunk);
        wholeBytes += chunk.length;
        tail = chunk.length >= USAGE_TAIL_BYTES ? chunk.subarray(-USAGE_TAIL_BYTES) : Buffer.concat([tail, chunk]).subarray(-USAGE_TAIL_BYTES);
        await send(chunk);
      } else {
        await send(filter.push(chunk));
      }
    }
    if (filter !== undefined && !outcome.appGone) await send(filter.end());
  } catch {
    // The backend broke off mid-answer (or the app left and the request was aborted).
    if (res.destroyed || res.writableEnded) outcome.appGone = true;
    else outcome.cut = true;
  }
  res.off('close', appLeft);
  if (outcome.cut || outcome.appGone) {
    answer.body.destroy();
    res.destroy();
  } else {
    res.end();
  }
  if (filter !== undefined) {
    outcome.usage = filter.usage;
    outcome.model = filter.model;
    if (filter.firstTokenAt !== undefined) outcome.ttftMs = Math.round(filter.firstTokenAt - options.startedAt);
  } else if (!outcome.cut && !outcome.appGone) {
    const read = wholeBytes <= GATEWAY_USAGE_PARSE_BYTES ? usageOfAnswer(Buffer.concat(whole, wholeBytes)) : { usage: usageInTail(tail), model: null };
    outcome.usage = read.usage;
    outcome.model = read.model;
  }
  if (outcome.ttftMs === null && firstByteAt !== undefined) outcome.ttftMs = Math.round(firstByteAt - options.startedAt);
  outcome.text = text;
  return outcome;
}
