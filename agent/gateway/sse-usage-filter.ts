import { StringDecoder } from 'node:string_decoder';
import { GATEWAY_MAX_SSE_EVENT_BYTES } from '../../protocol/limits.js';
import { normaliseUsage, type TokenUsage } from './response-usage.js';

// Reads a streamed answer (server-sent events) on its way to the app, for the ledger: the usage
// (chat/completions: the last chunk when `stream_options.include_usage` is on; responses: the
// `response.completed` event), the model, and when the first token came.
//
// When the gateway itself asked for usage (the app did not), the app must see the stream it asked
// for: the extra usage chunk (empty `choices`, a `usage` object) is removed and the `"usage": null`
// the option adds to every other chunk is taken out again. Only then are events re-serialised;
// otherwise the backend's bytes pass exactly as they came, as soon as they came.
//
// An event longer than GATEWAY_MAX_SSE_EVENT_BYTES is not parsed: from there on the bytes pass
// untouched and the request's usage is unknown (the ledger row says so) — nothing is withheld.

const EVENT_END = /\r?\n\r?\n/;

export class SseUsageFilter {
  usage: TokenUsage | undefined;
  model: string | null = null;
  /** performance.now() of the first event that carried output. */
  firstTokenAt: number | undefined;
  /** The stream was too odd to read (an oversized event): usage unknown, bytes passed as they were. */
  unreadable = false;
  readonly #hideUsage: boolean;
  #pending = '';
  /** Holds a UTF-8 sequence split across two chunks until it is whole. */
  readonly #decoder = new StringDecoder('utf8');

  constructor(options: { hideUsage: boolean }) {
    this.#hideUsage = options.hideUsage;
  }

  /** Takes backend bytes; returns what to send the app now (possibly nothing yet). */
  push(chunk: Buffer): Buffer {
    if (this.unreadable) return chunk;
    this.#pending += this.#decoder.write(chunk);
    let out = '';
    for (;;) {
      const end = EVENT_END.exec(this.#pending);
      if (end === null) break;
      const event = this.#pending.slice(0, end.index);
      const whole = this.#pending.slice(0, end.index + end[0].length);
      this.#pending = this.#pending.slice(end.index + end[0].length);
      out += this.#event(event, whole);
    }
    if (this.#pending.length > GATEWAY_MAX_SSE_EVENT_BYTES) {
      this.unreadable = true;
      out += this.#pending;
      this.#pending = '';
    }
    // Without hiding, the backend's bytes go on as they came; the events were read on the side.
    return this.#hideUsage ? Buffer.from(out, 'utf8') : chunk;
  }

  /** The stream ended: whatever is left (an unterminated last event) goes to the app as it is. */
  end(): Buffer {
    const rest = this.#pending + this.#decoder.end();
    this.#pending = '';
    if (rest.length > 0 && !this.unreadable) this.#event(rest, rest);
    return this.#hideUsage ? Buffer.from(rest, 'utf8') : Buffer.alloc(0);
  }

  /** One event (`text` without its blank-line end, `whole` with it): what to forward of it. */
  #event(text: string, whole: string): string {
    let data = '';
    for (const line of text.split(/\r?\n/)) {
      if (line.startsWith('data:')) data += (data === '' ? '' : '\n') + line.slice(line.startsWith('data: ') ? 6 : 5);
    }
    if (data === '' || data === '[DONE]') return whole;
    let json: Record<string, unknown>;
    try {
      const value: unknown = JSON.parse(data);
      if (typeof value !== 'object' || value === null || Array.isArray(value)) return whole;
      json = value as Record<string, unknown>;
    } catch {
      return whole;
    }
    // Azure's first chunk (prompt filter results) says model "": the next ones name it.
    if (this.model === null && typeof json.model === 'string' && json.model !== '') this.model = json.model;
    const response = json.response as Record<string, unknown> | undefined;
    if (json.type === 'response.completed' && typeof response === 'object' && response !== null) {
      this.usage = normaliseUsage(response.usage) ?? this.usage;
      if (typeof response.model === 'string') this.model = response.model;
    }
    if (this.firstTokenAt === undefined && carriesOutput(json)) this.firstTokenAt = performance.now();
    const usage = normaliseUsage(json.usage);
    if (usage !== undefined) this.usage = usage;
    if (!this.#hideUsage || !('usage' in json)) return whole;
    // Ours to hide: the usage-only chunk goes; the `usage: null` on the others is taken out.
    if (Array.isArray(json.choices) && json.choices.length === 0 && usage !== undefined) return '';
    delete json.usage;
    return `data: ${JSON.stringify(json)}\n\n`;
  }
}

function carriesOutput(json: Record<string, unknown>): boolean {
  if (typeof json.type === 'string') return json.type === 'response.output_text.delta';
  return Array.isArray(json.choices) && json.choices.length > 0;
}
