import { closeSync, constants, createWriteStream, fchmodSync, fstatSync, openSync, renameSync, type WriteStream } from 'node:fs';
import type { Logger } from 'pino';
import { wicketError } from '../../protocol/errors.js';
import type { ContentLogSpec } from './gateway-spec.js';
import type { GatewayOperation } from './usage-row.js';

// The content log: prompts and answers as JSON lines, for an operator who must keep them (audit,
// abuse review). Off unless the outlet's gateway block names a path: prompts are the most
// sensitive thing the gateway sees, so keeping them is a decision, never a default.
//
// - The file is the owner's only: created 0600 without following a symlink. An existing file that
//   others can read is narrowed to 0600 with a warning, not refused: what it held was already
//   exposed, and refusing would leave it exposed AND stop the log; narrowing closes the hole now.
// - `redact` patterns are applied before anything else, so a truncation can never cut a match in
//   half and leave part of it readable.
// - Each line is capped (maxEntryBytes, the texts cut with a `…[truncated N bytes]` marker); the
//   file is rotated once to `<path>.1` before it passes maxTotalBytes, so the disk use is bounded
//   by twice the cap.
// - Writes go through a write stream (asynchronous, batched by the stream); the request path only
//   formats one line. When the disk falls behind, entries past BUFFER_CAP_BYTES are dropped and
//   counted in a warning (the log is best effort; memory must not grow with a stuck disk).

export interface ContentEntry {
  at: number;
  outlet: string;
  identity: string;
  attributes: Record<string, string>;
  deployment: string | null;
  operation: GatewayOperation;
  status: number;
  /** The app's request body, parsed JSON. */
  requestBody: unknown;
  /** The backend's answer as the app got it: a JSON body or a server-sent-event stream. */
  responseText: string;
}

export interface ContentLogOptions {
  logger: Logger;
}

/** Bytes a lagging disk may owe before entries are dropped (a few full-size entries, at least 8 MiB). */
const BUFFER_CAP_MIN_BYTES = 8 * 1024 * 1024;
/** Dropped entries are reported at most this often. */
const DROP_LOG_EVERY_MS = 60_000;
const REDACTED = '[REDACTED]';
/** Rounds of shortening a text until its JSON form fits (escapes make the first guess short of it). */
const FIT_ROUNDS = 8;

// --- the texts of an OpenAI request and answer ------------------------------------------------
// Only text is kept: images, audio, token arrays and tool schemas are skipped (they are large and
// not what a reviewer reads). Unknown shapes give '' rather than an error: the log never fails a
// request.

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const TEXT_PART_TYPES = new Set(['text', 'input_text', 'output_text']);

/** A message's content: a string, or parts of which the text ones count. */
function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  const texts: string[] = [];
  for (const part of content) {
    if (typeof part === 'string') texts.push(part);
    else if (isObject(part) && typeof part.type === 'string' && TEXT_PART_TYPES.has(part.type) && typeof part.text === 'string') texts.push(part.text);
  }
  return texts.join('\n');
}

/** A message as `role: text` (the role tells a reviewer who said it), or '' when it has no text. */
function messageText(message: unknown): string {
  if (typeof message === 'string') return message;
  if (!isObject(message)) return '';
  const text = contentText(message.content);
  if (text === '') return '';
  return typeof message.role === 'string' ? `${message.role}: ${text}` : text;
}

/** The prompt text of a request body: chat messages, completions prompt, embeddings / responses input. */
export function promptText(body: unknown): string {
  if (!isObject(body)) return '';
  const out: string[] = [];
  if (typeof body.instructions === 'string') out.push(`instructions: ${body.instructions}`);
  for (const field of ['messages', 'prompt', 'input'] as const) {
    const value = body[field];
    if (typeof value === 'string') out.push(value);
    else if (Array.isArray(value)) for (const item of value) out.push(messageText(item));
  }
  return out.filter((text) => text !== '').join('\n');
}

/** The answer text of one JSON body: chat choices, completions choices, responses output. */
function bodyAnswer(body: unknown): string {
  if (!isObject(body)) return '';
  const out: string[] = [];
  if (Array.isArray(body.choices)) {
    for (const choice of body.choices) {
      if (!isObject(choice)) continue;
      if (isObject(choice.message)) out.push(contentText(choice.message.content));
      else if (typeof choice.text === 'string') out.push(choice.text);
    }
  }
  if (typeof body.output_text === 'string') out.push(body.output_text);
  else if (Array.isArray(body.output)) for (const item of body.output) if (isObject(item)) out.push(contentText(item.content));
  return out.filter((text) => text !== '').join('\n');
}

/** The answer text of a server-sent-event stream: deltas accumulated per choice, then responses deltas. */
function streamAnswer(raw: string): string {
  const choices = new Map<number, string>();
  let responseDeltas = '';
  let completed = '';
  const dispatch = (data: string): void => {
    if (data === '' || data === '[DONE]') return;
    let event: unknown;
    try {
      event = JSON.parse(data);
    } catch {
      return;
    }
    if (!isObject(event)) return;
    if (Array.isArray(event.choices)) {
      for (const choice of event.choices) {
        if (!isObject(choice)) continue;
        const index = typeof choice.index === 'number' ? choice.index : 0;
        const piece = isObject(choice.delta) ? contentText(choice.delta.content) : typeof choice.text === 'string' ? choice.text : '';
        if (piece !== '') choices.set(index, (choices.get(index) ?? '') + piece);
      }
    }
    if (event.type === 'response.output_text.delta' && typeof event.delta === 'string') responseDeltas += event.delta;
    if (event.type === 'response.completed') completed = bodyAnswer(event.response);
  };
  // An event is its `data:` lines joined by newlines, ended by a blank line (the SSE format).
  let data: string[] = [];
  for (const line of raw.split(/\r?\n/)) {
    if (line === '') {
      dispatch(data.join('\n'));
      data = [];
    } else if (line.startsWith('data:')) {
      data.push(line.slice(line.startsWith('data: ') ? 6 : 5));
    }
  }
  dispatch(data.join('\n'));
  const fromChoices = [...choices.entries()].sort(([a], [b]) => a - b).map(([, text]) => text);
  const text = [...fromChoices, responseDeltas].filter((t) => t !== '').join('\n');
  return text !== '' ? text : completed;
}

/** The answer text of what the app got: a JSON body, or a stream of server-sent events. */
export function answerText(raw: string): string {
  if (raw.trimStart().startsWith('{')) {
    try {
      return bodyAnswer(JSON.parse(raw));
    } catch {
      // Not one JSON document: read it as a stream.
    }
  }
  return streamAnswer(raw);
}

// --- the file ------------------------------------------------------------------------------------

/** Opens `path` for appending, 0600, refusing a symlink or anything but a regular file. */
function openLogFile(path: string, logger: Logger): { fd: number; size: number } {
  let fd: number;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
  } catch (err) {
    throw wicketError('WICKET_ERR_CONFIG', `gateway.contentLog.path: cannot open ${path} (${err instanceof Error ? err.message : String(err)}); it must be a writable regular file, not a symlink`, err);
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw wicketError('WICKET_ERR_CONFIG', `gateway.contentLog.path: ${path} is not a regular file`);
    if ((stat.mode & 0o077) !== 0) {
      fchmodSync(fd, 0o600);
      logger.warn({ path, mode: (stat.mode & 0o777).toString(8) }, 'content log was readable by others; narrowed to 0600');
    }
    return { fd, size: stat.size };
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

function jsonBytes(text: string): number {
  return Buffer.byteLength(JSON.stringify(text)) - 2;
}

/** The longest prefix of `buf` up to `bytes` that ends on a character boundary. */
function utf8Prefix(buf: Buffer, bytes: number): string {
  let end = Math.min(bytes, buf.length);
  while (end > 0 && end < buf.length && (buf[end]! & 0xc0) === 0x80) end--;
  return buf.subarray(0, end).toString('utf8');
}

/** `text`, cut so its JSON-escaped form fits `budget` bytes, marker included. */
export function fitText(text: string, budget: number): string {
  if (jsonBytes(text) <= budget) return text;
  const buf = Buffer.from(text, 'utf8');
  let keep = Math.max(0, budget - 32);
  let out = '';
  for (let round = 0; round < FIT_ROUNDS; round++) {
    const kept = utf8Prefix(buf, keep);
    out = `${kept}…[truncated ${buf.length - Buffer.byteLength(kept)} bytes]`;
    const over = jsonBytes(out) - budget;
    if (over <= 0 || keep === 0) return out;
    keep = round === FIT_ROUNDS - 2 ? 0 : Math.max(0, keep - over);
  }
  return out;
}

/** The two texts within `room` bytes: a short one keeps all of it, the long one gets the rest. */
function fitPair(request: string, response: string, room: number): [string, string] {
  const requestBytes = jsonBytes(request);
  const responseBytes = jsonBytes(response);
  if (requestBytes + responseBytes <= room) return [request, response];
  const half = Math.floor(room / 2);
  if (requestBytes <= half) return [request, fitText(response, room - requestBytes)];
  if (responseBytes <= half) return [fitText(request, room - responseBytes), response];
  return [fitText(request, half), fitText(response, room - half)];
}

export class ContentLog {
  readonly path: string;
  readonly #logger: Logger;
  readonly #redact: readonly RegExp[];
  readonly #maxEntryBytes: number;

  /** Bytes of one entry; the gateway keeps no more of an answer's text than this. */
  get maxEntryBytes(): number {
    return this.#maxEntryBytes;
  }
  readonly #maxTotalBytes: number;
  readonly #bufferCap: number;
  #stream: WriteStream;
  /** Streams of rotated files still draining into `<path>.1`. */
  readonly #draining = new Set<WriteStream>();
  #size: number;
  #closed = false;
  #broken = false;
  #dropped = 0;
  #lastDropLog = 0;

  private constructor(spec: ContentLogSpec, options: ContentLogOptions) {
    this.path = spec.path;
    this.#logger = options.logger;
    this.#redact = spec.redact.map((pattern) => new RegExp(pattern, 'g'));
    // One entry never exceeds the file cap, so a rotated file always holds at least one whole entry.
    this.#maxEntryBytes = Math.min(spec.maxEntryBytes, spec.maxTotalBytes);
    this.#maxTotalBytes = spec.maxTotalBytes;
    this.#bufferCap = Math.max(BUFFER_CAP_MIN_BYTES, 4 * spec.maxEntryBytes);
    const { fd, size } = openLogFile(spec.path, options.logger);
    this.#size = size;
    this.#stream = this.#streamFor(fd);
  }

  /** The content log `spec` asks for, or undefined when none is configured (the default). */
  static open(spec: ContentLogSpec, options: ContentLogOptions): ContentLog;
  static open(spec: ContentLogSpec | undefined, options: ContentLogOptions): ContentLog | undefined;
  static open(spec: ContentLogSpec | undefined, options: ContentLogOptions): ContentLog | undefined {
    return spec === undefined ? undefined : new ContentLog(spec, options);
  }

  /** Formats one entry and hands it to the write stream; never waits for the disk. */
  write(entry: ContentEntry): void {
    if (this.#closed || this.#broken) return;
    if (this.#stream.writableLength > this.#bufferCap) {
      this.#drop();
      return;
    }
    const line = this.format(entry);
    const bytes = Buffer.byteLength(line);
    if (this.#size > 0 && this.#size + bytes > this.#maxTotalBytes && !this.#rotate()) return;
    this.#stream.write(line);
    this.#size += bytes;
  }

  /** The JSON line for `entry` (redacted, capped), newline included. */
  format(entry: ContentEntry): string {
    const record = {
      at: entry.at,
      outlet: entry.outlet,
      identity: entry.identity,
      attributes: entry.attributes,
      deployment: entry.deployment,
      operation: entry.operation,
      status: entry.status,
      request: this.#redacted(promptText(entry.requestBody)),
      response: this.#redacted(answerText(entry.responseText)),
    };
    const line = JSON.stringify(record) + '\n';
    if (Buffer.byteLength(line) <= this.#maxEntryBytes) return line;
    // The metadata is never cut (it is small and bounded); the texts share what is left.
    const base = Buffer.byteLength(JSON.stringify({ ...record, request: '', response: '' }) + '\n');
    const [request, response] = fitPair(record.request, record.response, Math.max(0, this.#maxEntryBytes - base));
    return JSON.stringify({ ...record, request, response }) + '\n';
  }

  /** Flushes what is buffered and closes the file(s). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stream.end();
    await Promise.all([this.#stream, ...this.#draining].map(closed));
    if (this.#dropped > 0) this.#logDrops(true);
  }

  #redacted(text: string): string {
    let out = text;
    for (const pattern of this.#redact) {
      pattern.lastIndex = 0;
      out = out.replace(pattern, REDACTED);
    }
    return out;
  }

  #streamFor(fd: number): WriteStream {
    const stream = createWriteStream('', { fd, autoClose: true });
    stream.on('error', (err) => {
      // A disk error ends the log (it is best effort); the gateway keeps serving.
      if (this.#broken) return;
      this.#broken = true;
      this.#logger.error({ code: 'WICKET_ERR_CONTENT_LOG', path: this.path, err: err.message }, 'content log write failed; content logging stopped');
    });
    return stream;
  }

  /** Renames the file to `<path>.1` (replacing an older one) and starts a new one; false if it could not. */
  #rotate(): boolean {
    try {
      // The old stream keeps its descriptor, so bytes still buffered land in `<path>.1`, in order.
      renameSync(this.path, `${this.path}.1`);
      const { fd } = openLogFile(this.path, this.#logger);
      const old = this.#stream;
      this.#draining.add(old);
      old.end(() => this.#draining.delete(old));
      this.#stream = this.#streamFor(fd);
      this.#size = 0;
      return true;
    } catch (err) {
      this.#broken = true;
      this.#logger.error({ code: 'WICKET_ERR_CONTENT_LOG', path: this.path, err: err instanceof Error ? err.message : String(err) }, 'content log rotation failed; content logging stopped');
      return false;
    }
  }

  #drop(): void {
    this.#dropped++;
    this.#logDrops(false);
  }

  #logDrops(final: boolean): void {
    const now = Date.now();
    if (!final && now - this.#lastDropLog < DROP_LOG_EVERY_MS) return;
    this.#lastDropLog = now;
    this.#logger.warn({ path: this.path, dropped: this.#dropped }, 'content log is behind the disk; entries dropped (their usage rows are in the ledger)');
    this.#dropped = 0;
  }
}

/** Resolves once `stream` has closed its descriptor (at once if it already has). */
function closed(stream: WriteStream): Promise<void> {
  if (stream.closed) return Promise.resolve();
  return new Promise((resolve) => stream.once('close', () => resolve()));
}
