import { GATEWAY_MAX_SSE_EVENT_BYTES } from '../../protocol/limits.js';
import { normaliseUsage, type TokenUsage } from './response-usage.js';

// Reads a streamed answer (server-sent events) on its way to the app, for the ledger: the usage
// (chat/completions: the last chunk when `stream_options.include_usage` is on; responses: its
// terminal `response.completed` / `.incomplete` / `.failed` event), the model, and when the first token came.
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
  // The unfinished event, held as latin1 text (one char per byte), not decoded UTF-8: what is
  // passed on is then the backend's exact bytes (a UTF-8 character split across chunks, or invalid
  // UTF-8, used to be replaced or lost when hiding, and the bytes a decoder held were dropped when
  // the stream turned unreadable), and lengths are bytes, as GATEWAY_MAX_SSE_EVENT_BYTES says.
  // Kept as pieces, searched only where new bytes came: a large event arriving in small chunks
  // used to be rescanned whole on every chunk (quadratic, the event loop held for minutes).
  #pending: string[] = [];
  #pendingBytes = 0;
  /** The last ≤ 3 pending bytes: an event end (up to 4 bytes) may begin there and end in the next chunk. */
  #tail = '';

  constructor(options: { hideUsage: boolean }) {
    this.#hideUsage = options.hideUsage;
  }

  /** Takes backend bytes; returns what to send the app now (possibly nothing yet). */
  push(chunk: Buffer): Buffer {
    if (this.unreadable) return chunk;
    let text = chunk.toString('latin1');
    let out = '';
    for (;;) {
      const end = EVENT_END.exec(this.#tail + text);
      if (end === null) break;
      const cut = end.index + end[0].length - this.#tail.length;
      const whole = this.#pending.join('') + text.slice(0, cut);
      text = text.slice(cut);
      this.#pending = [];
      this.#pendingBytes = 0;
      this.#tail = '';
      out += this.#event(whole.slice(0, whole.length - end[0].length), whole);
    }
    if (text !== '') {
      this.#pending.push(text);
      this.#pendingBytes += text.length;
      this.#tail = (this.#tail + text).slice(-3);
    }
    if (this.#pendingBytes > GATEWAY_MAX_SSE_EVENT_BYTES) {
      this.unreadable = true;
      out += this.#pending.join('');
      this.#pending = [];
      this.#pendingBytes = 0;
      this.#tail = '';
    }
    // Without hiding, the backend's bytes go on as they came; the events were read on the side.
    return this.#hideUsage ? Buffer.from(out, 'latin1') : chunk;
  }

  /** The stream ended: whatever is left (an unterminated last event) goes to the app as it is. */
  end(): Buffer {
    const rest = this.#pending.join('');
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#tail = '';
    if (rest.length > 0 && !this.unreadable) this.#event(rest, rest);
    return this.#hideUsage ? Buffer.from(rest, 'latin1') : Buffer.alloc(0);
  }

  /** One event (`text` without its blank-line end, `whole` with it; latin1 both): what to forward of it. */
  #event(text: string, whole: string): string {
    let data = '';
    for (const line of text.split(/\r?\n/)) {
      if (line.startsWith('data:')) data += (data === '' ? '' : '\n') + line.slice(line.startsWith('data: ') ? 6 : 5);
    }
    if (data === '' || data === '[DONE]') return whole;
    let json: Record<string, unknown>;
    try {
      const value: unknown = JSON.parse(Buffer.from(data, 'latin1').toString('utf8'));
      if (typeof value !== 'object' || value === null || Array.isArray(value)) return whole;
      json = value as Record<string, unknown>;
    } catch {
      return whole;
    }
    // Azure's first chunk (prompt filter results) says model "": the next ones name it.
    if (this.model === null && typeof json.model === 'string' && json.model !== '') this.model = json.model;
    const response = json.response as Record<string, unknown> | undefined;
    // The responses API reports usage on its terminal event: completed, but also incomplete
    // (max_output_tokens reached) or failed — tokens spent either way.
    if (typeof json.type === 'string' && json.type.startsWith('response.') && typeof response === 'object' && response !== null) {
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
    return Buffer.from(`data: ${JSON.stringify(json)}\n\n`, 'utf8').toString('latin1');
  }
}

function carriesOutput(json: Record<string, unknown>): boolean {
  if (typeof json.type === 'string') return json.type === 'response.output_text.delta';
  // A chunk with choices is not yet a token: Azure's role chunk (`delta: {role, content: ""}`) and
  // content-filter chunks come first, and a reasoning model's role chunk long before its answer.
  return Array.isArray(json.choices) && json.choices.some(choiceCarriesOutput);
}

function choiceCarriesOutput(choice: unknown): boolean {
  if (typeof choice !== 'object' || choice === null) return false;
  const c = choice as { text?: unknown; delta?: unknown };
  if (typeof c.text === 'string') return c.text !== '';
  if (typeof c.delta !== 'object' || c.delta === null) return false;
  const d = c.delta as { content?: unknown; refusal?: unknown; tool_calls?: unknown; function_call?: unknown };
  return (
    (typeof d.content === 'string' && d.content !== '') ||
    (typeof d.refusal === 'string' && d.refusal !== '') ||
    (Array.isArray(d.tool_calls) && d.tool_calls.length > 0) ||
    (typeof d.function_call === 'object' && d.function_call !== null)
  );
}
