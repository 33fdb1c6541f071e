import { afterEach, describe, expect, it, vi } from 'vitest';
import { SseUsageFilter } from '../../../agent/gateway/sse-usage-filter.js';
import { GATEWAY_MAX_SSE_EVENT_BYTES } from '../../../protocol/limits.js';
import { seededBytes, seededRandom } from '../../helpers/seeded.js';

// The filter sits between the backend's server-sent events and the app. Read-only (the app asked
// for usage, or it is not a chat stream) it must pass the backend's exact bytes whatever the
// chunking; hiding (the gateway asked for usage) it must remove exactly the usage chunk and the
// `usage` keys. Either way: usage, model and first-token time for the ledger, and never a lost or
// withheld byte, whatever the backend sends.

const MODEL = 'gpt-4o-2024-08-06';
const USAGE = { completion_tokens: 4, prompt_tokens: 11, total_tokens: 15, prompt_tokens_details: { cached_tokens: 0 } };
/** Multi-byte UTF-8 on purpose (2, 3 and 4 bytes), so byte splits fall inside characters. */
const PIECES = ['Hé', 'llo ', '日本', ' 🙂'];

type Event = Record<string, unknown> | string;

/** A chat/completions stream shaped as Azure sends it (prompt-filter chunk first, role chunk, pieces, finish, usage, [DONE]). */
function chatEvents(includeUsage: boolean): Event[] {
  const usageField = includeUsage ? { usage: null } : {};
  const chunk = (choice: Record<string, unknown>): Record<string, unknown> => ({
    choices: [{ ...choice, index: 0, logprobs: null }],
    created: 1_700_000_000,
    id: 'chatcmpl-1',
    model: MODEL,
    object: 'chat.completion.chunk',
    ...usageField,
  });
  const events: Event[] = [
    { choices: [], created: 0, id: '', model: '', object: '', prompt_filter_results: [{ prompt_index: 0, content_filter_results: {} }] },
    chunk({ content_filter_results: {}, delta: { content: '', refusal: null, role: 'assistant' }, finish_reason: null }),
    ...PIECES.map((piece) => chunk({ delta: { content: piece }, finish_reason: null })),
    chunk({ content_filter_results: {}, delta: {}, finish_reason: 'stop' }),
  ];
  if (includeUsage) events.push({ choices: [], created: 1_700_000_000, id: 'chatcmpl-1', model: MODEL, object: 'chat.completion.chunk', usage: USAGE });
  events.push('[DONE]');
  return events;
}

function sse(events: Event[], eol = '\n'): Buffer {
  return Buffer.from(events.map((e) => `data: ${typeof e === 'string' ? e : JSON.stringify(e)}${eol}${eol}`).join(''), 'utf8');
}

/** The data of each event of an SSE text (JSON parsed where it is JSON). */
function dataOf(bytes: Buffer): unknown[] {
  return bytes
    .toString('utf8')
    .split(/\r?\n\r?\n/)
    .filter((e) => e !== '')
    .map((e) => {
      const data = e.split(/\r?\n/).filter((l) => l.startsWith('data:')).map((l) => l.slice(l.startsWith('data: ') ? 6 : 5)).join('\n');
      try {
        return JSON.parse(data) as unknown;
      } catch {
        return data;
      }
    });
}

function run(chunks: Buffer[], hideUsage: boolean): { out: Buffer; filter: SseUsageFilter } {
  const filter = new SseUsageFilter({ hideUsage });
  const out = chunks.map((c) => filter.push(c));
  out.push(filter.end());
  return { out: Buffer.concat(out), filter };
}

function splitAt(bytes: Buffer, ...at: number[]): Buffer[] {
  const bounds = [0, ...at, bytes.length];
  return bounds.slice(1).map((end, i) => bytes.subarray(bounds[i], end));
}

function bytewise(bytes: Buffer): Buffer[] {
  return [...bytes].map((b) => Buffer.from([b]));
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('SseUsageFilter reading (the app asked for usage: bytes untouched)', () => {
  it('captures the chat/completions usage chunk and the model, not Azure\'s empty first model', () => {
    const input = sse(chatEvents(true));
    const { out, filter } = run([input], false);
    expect(out.equals(input)).toBe(true);
    expect(filter.usage).toEqual({ promptTokens: 11, completionTokens: 4, totalTokens: 15 });
    expect(filter.model).toBe(MODEL);
    expect(filter.unreadable).toBe(false);
  });

  it('captures the responses API usage from response.completed (input/output tokens) and its model', () => {
    const events = [
      'event: response.created\ndata: {"type":"response.created","response":{"model":"gpt-4.1","usage":null}}\n\n',
      'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","delta":"Hi"}\n\n',
      'event: response.completed\ndata: {"type":"response.completed","response":{"model":"gpt-4.1-2025-04-14","usage":{"input_tokens":7,"output_tokens":2,"total_tokens":9}}}\n\n',
    ];
    const input = Buffer.from(events.join(''));
    const { out, filter } = run([input], false);
    expect(out.equals(input)).toBe(true);
    expect(filter.usage).toEqual({ promptTokens: 7, completionTokens: 2, totalTokens: 9 });
    expect(filter.model).toBe('gpt-4.1-2025-04-14');
    expect(filter.firstTokenAt).toBeDefined();
  });

  it.each([
    ['LF', '\n'],
    ['CRLF', '\r\n'],
  ])('passes the exact bytes and reads the same usage at every split point (%s)', (_name, eol) => {
    const input = sse(chatEvents(true), eol);
    for (let i = 0; i <= input.length; i++) {
      const { out, filter } = run(splitAt(input, i), false);
      expect(out.equals(input), `split at ${i}`).toBe(true);
      expect(filter.usage?.totalTokens, `split at ${i}`).toBe(15);
      expect(filter.model).toBe(MODEL);
    }
    const { out, filter } = run(bytewise(input), false);
    expect(out.equals(input)).toBe(true);
    expect(filter.usage?.totalTokens).toBe(15);
  });

  it('passes the exact bytes at seeded three-way splits', () => {
    const input = sse(chatEvents(true), '\r\n');
    const random = seededRandom(0x55e);
    for (let n = 0; n < 300; n++) {
      const a = Math.floor(random() * input.length);
      const b = a + Math.floor(random() * (input.length - a));
      const { out, filter } = run(splitAt(input, a, b), false);
      expect(out.equals(input), `split at ${a}, ${b}`).toBe(true);
      expect(filter.usage?.totalTokens).toBe(15);
    }
  });

  it('reads events whose end is any mix of LF and CRLF', () => {
    const usage = JSON.stringify({ choices: [], model: MODEL, usage: USAGE });
    const input = Buffer.from(`data: {"choices":[],"model":""}\n\r\ndata: ${usage}\r\n\ndata: [DONE]\r\n\r\n`);
    const { out, filter } = run(bytewise(input), false);
    expect(out.equals(input)).toBe(true);
    expect(filter.usage?.totalTokens).toBe(15);
  });

  it('sets firstTokenAt on the first chunk with content, not on the prompt-filter or role chunk', () => {
    let clock = 0;
    vi.spyOn(performance, 'now').mockImplementation(() => clock);
    const events = chatEvents(false).map((e) => sse([e]));
    const filter = new SseUsageFilter({ hideUsage: false });
    events.forEach((bytes, i) => {
      clock = 1_000 + i;
      filter.push(bytes);
    });
    // 0: prompt filter results, 1: role chunk with content "", 2: the first piece.
    expect(filter.firstTokenAt).toBe(1_002);
  });

  it('counts a legacy completions chunk (choices[].text) and a tool call as output', () => {
    const completions = new SseUsageFilter({ hideUsage: false });
    completions.push(Buffer.from('data: {"choices":[{"text":"","index":0}]}\n\n'));
    expect(completions.firstTokenAt).toBeUndefined();
    completions.push(Buffer.from('data: {"choices":[{"text":"Hi","index":0}]}\n\n'));
    expect(completions.firstTokenAt).toBeDefined();
    const tools = new SseUsageFilter({ hideUsage: false });
    tools.push(Buffer.from('data: {"choices":[{"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"function":{"name":"f"}}]}}]}\n\n'));
    expect(tools.firstTokenAt).toBeDefined();
  });

  it('passes garbage data lines, comments and other fields untouched, and reads no usage from them', () => {
    const input = Buffer.from(
      [
        ': keep-alive comment\n\n',
        'data: {not json\n\n',
        'data: [1,2,3]\n\n',
        'data: null\n\n',
        'data: "a string"\n\n',
        'data: {"usage":{"prompt_tokens":-1,"total_tokens":"x"}}\n\n',
        'event: weird\nid: 7\nretry: 10\ndata:{"choices":[],"usage":{"prompt_tokens":1e400}}\n\n',
        'data\n\n',
        '\n\n\n',
        'data: {"choices":[{"delta":{"content":"x"}}],"model":42}\n\n',
      ].join(''),
    );
    for (const hideUsage of [false, true]) {
      const filter = new SseUsageFilter({ hideUsage });
      const out = Buffer.concat([...bytewise(input).map((c) => filter.push(c)), filter.end()]);
      if (!hideUsage) expect(out.equals(input)).toBe(true);
      expect(filter.usage).toBeUndefined();
      expect(filter.model).toBeNull();
      expect(filter.unreadable).toBe(false);
    }
  });

  it('survives seeded random bytes (invalid UTF-8 included) and passes them exactly, hiding or not', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const noise = seededBytes(seed, 4_096);
      // Sprinkle event ends and data prefixes so the bytes are cut into "events".
      for (let i = 0; i < noise.length; i += 97) noise.write(i % 2 === 0 ? '\n\ndata: ' : '\r\n\r\n', i, 'latin1');
      const random = seededRandom(seed);
      const cuts: number[] = [];
      for (let at = 0; at < noise.length; at += 1 + Math.floor(random() * 300)) cuts.push(at);
      for (const hideUsage of [false, true]) {
        const { out, filter } = run(splitAt(noise, ...cuts), hideUsage);
        expect(out.equals(noise), `seed ${seed}, hide ${hideUsage}`).toBe(true);
        expect(filter.usage).toBeUndefined();
      }
    }
  });

  it('sends an unterminated last event on at the end (and still reads it)', () => {
    const last = Buffer.from(`data: ${JSON.stringify({ choices: [], model: MODEL, usage: USAGE })}`);
    for (const hideUsage of [false, true]) {
      const { out, filter } = run([last], hideUsage);
      expect(out.equals(last)).toBe(true);
      expect(filter.usage?.totalTokens).toBe(15);
    }
  });
});

describe('SseUsageFilter hiding (the gateway asked for usage)', () => {
  const expected = (): unknown[] =>
    chatEvents(true)
      .filter((e) => typeof e === 'string' || !('usage' in e && e.usage !== null))
      .map((e) => {
        if (typeof e === 'string') return e;
        const { usage: _usage, ...rest } = e;
        return rest;
      });

  it('removes the usage-only chunk and every `usage` key; all else in order, [DONE] kept', () => {
    const { out, filter } = run([sse(chatEvents(true))], true);
    expect(dataOf(out)).toEqual(expected());
    expect(out.toString('utf8')).not.toContain('usage');
    expect(dataOf(out).at(-1)).toBe('[DONE]');
    expect(filter.usage).toEqual({ promptTokens: 11, completionTokens: 4, totalTokens: 15 });
    expect(filter.model).toBe(MODEL);
  });

  it.each([
    ['LF', '\n'],
    ['CRLF', '\r\n'],
  ])('gives the same output at every split point, characters whole (%s)', (_name, eol) => {
    const input = sse(chatEvents(true), eol);
    const whole = run([input], true).out;
    expect(dataOf(whole)).toEqual(expected());
    expect(whole.toString('utf8')).toContain('日本');
    for (let i = 0; i <= input.length; i++) {
      const { out, filter } = run(splitAt(input, i), true);
      expect(out.equals(whole), `split at ${i}`).toBe(true);
      expect(filter.usage?.totalTokens).toBe(15);
    }
    expect(run(bytewise(input), true).out.equals(whole)).toBe(true);
  });

  it('passes events without a usage key byte for byte (Azure\'s prompt-filter chunk, [DONE])', () => {
    const input = sse([chatEvents(true)[0]!, '[DONE]'], '\r\n');
    expect(run([input], true).out.equals(input)).toBe(true);
  });

  it('keeps a content chunk that carries the usage itself, without the usage', () => {
    const input = sse([{ choices: [{ delta: { content: 'x' }, index: 0 }], model: MODEL, usage: USAGE }, '[DONE]']);
    const { out, filter } = run([input], true);
    expect(dataOf(out)).toEqual([{ choices: [{ delta: { content: 'x' }, index: 0 }], model: MODEL }, '[DONE]']);
    expect(filter.usage?.totalTokens).toBe(15);
  });

  it('withholds nothing once an event has ended, only the unfinished one', () => {
    const filter = new SseUsageFilter({ hideUsage: true });
    const first = sse([chatEvents(true)[2]!]);
    const out = filter.push(Buffer.concat([first, Buffer.from('data: {"cho')]));
    expect(dataOf(out)).toHaveLength(1);
    expect(filter.push(Buffer.from('ices":[]}\n\n')).toString()).toBe('data: {"choices":[]}\n\n');
  });
});

describe('SseUsageFilter with an event over GATEWAY_MAX_SSE_EVENT_BYTES', () => {
  /**
   * A prefix event, a huge event (multi-byte characters straddling chunk ends; as characters it is
   * well under the cap, as bytes well over it), then a usage chunk.
   */
  function oversized(eol: string): Buffer {
    const huge = `data: {"choices":[{"delta":{"content":"${'é日'.repeat(Math.ceil(GATEWAY_MAX_SSE_EVENT_BYTES / 5) + 50_000)}"}}]}${eol}${eol}`;
    return Buffer.concat([sse([chatEvents(false)[2]!], eol), Buffer.from(huge), sse([{ choices: [], model: MODEL, usage: USAGE }, '[DONE]'], eol)]);
  }

  it.each([
    [false, '\n'],
    [true, '\n'],
    [true, '\r\n'],
  ])('turns unreadable and passes every byte untouched (hide %s, %j)', (hideUsage, eol) => {
    const input = oversized(eol);
    // 65 537-byte chunks: the split points fall inside the 2- and 3-byte characters.
    const chunks: Buffer[] = [];
    for (let at = 0; at < input.length; at += 65_537) chunks.push(input.subarray(at, at + 65_537));
    const filter = new SseUsageFilter({ hideUsage });
    const out: Buffer[] = [];
    let inBytes = 0;
    for (const chunk of chunks) {
      out.push(filter.push(chunk));
      inBytes += chunk.length;
      // Once unreadable, nothing is held back: all bytes in so far are out.
      if (filter.unreadable) expect(Buffer.concat(out).length).toBe(inBytes);
    }
    out.push(filter.end());
    expect(filter.unreadable).toBe(true);
    expect(Buffer.concat(out).equals(input)).toBe(true);
    // Usage after the unreadable point is unknown (the ledger says so), not guessed.
    expect(filter.usage).toBeUndefined();
  });

  it('turns unreadable mid-character, passing the following bytes as they come', () => {
    const filter = new SseUsageFilter({ hideUsage: true });
    const head = Buffer.from(`data: "${'x'.repeat(GATEWAY_MAX_SSE_EVENT_BYTES - 'data: "'.length)}`);
    expect(filter.push(head).length).toBe(0);
    // The chunk that crosses the cap ends inside "é": its first byte must not be lost.
    const tail = Buffer.from('xé"\n\n');
    const out = [tail.subarray(0, 2), ...bytewise(tail.subarray(2))].map((b) => filter.push(b));
    expect(filter.unreadable).toBe(true);
    expect(Buffer.concat([...out, filter.end()]).equals(Buffer.concat([head, tail]))).toBe(true);
  });

  it('stays readable at exactly the cap', () => {
    const filter = new SseUsageFilter({ hideUsage: false });
    const pad = GATEWAY_MAX_SSE_EVENT_BYTES - 'data: ""'.length;
    filter.push(Buffer.from(`data: "${'x'.repeat(pad)}"`));
    expect(filter.unreadable).toBe(false);
    filter.push(Buffer.from('\n\ndata: ' + JSON.stringify({ choices: [], usage: USAGE }) + '\n\n'));
    expect(filter.unreadable).toBe(false);
    expect(filter.usage?.totalTokens).toBe(15);
  });
});
