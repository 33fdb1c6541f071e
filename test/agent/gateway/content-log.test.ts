import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { answerText, ContentLog, type ContentEntry, fitText, promptText } from '../../../agent/gateway/content-log.js';
import { gatewaySpecSchema, type ContentLogSpec } from '../../../agent/gateway/gateway-spec.js';
import { identifierFor } from '../../helpers/identifier.js';

let dir: string;
let path: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'wicket-content-'));
  path = join(dir, 'content.jsonl');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function captureLogger(): { logger: Logger; lines: { level: number; msg: string }[] } {
  const lines: { level: number; msg: string }[] = [];
  return { logger: pino({ level: 'info' }, { write: (text: string) => void lines.push(JSON.parse(text) as { level: number; msg: string }) }), lines };
}

/** A spec as the gateway block's schema fills it in (defaults included). */
function spec(contentLog: Record<string, unknown>): ContentLogSpec {
  const parsed = gatewaySpecSchema().parse({ kind: 'azure-openai', backends: [{ name: 'eastus', url: 'https://aoai.example' }], contentLog: { path, ...contentLog } });
  return parsed.contentLog!;
}

function entry(prompt: string, answer: string): ContentEntry {
  return {
    at: Date.UTC(2026, 11, 1),
    outlet: 'openai',
    identity: identifierFor(1),
    attributes: { team: 'cardiology' },
    deployment: 'gpt-4o',
    operation: 'chat',
    status: 200,
    requestBody: { model: 'gpt-4o', messages: [{ role: 'user', content: prompt }] },
    responseText: JSON.stringify({ choices: [{ index: 0, message: { role: 'assistant', content: answer } }] }),
  };
}

interface Line {
  request: string;
  response: string;
  identity: string;
  status: number;
}

function readLines(file = path): Line[] {
  return readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Line);
}

describe('ContentLog', () => {
  it('is off by default: no spec, no log, no file', () => {
    const parsed = gatewaySpecSchema().parse({ kind: 'azure-openai', backends: [{ name: 'eastus', url: 'https://aoai.example' }] });
    expect(ContentLog.open(parsed.contentLog, { logger: captureLogger().logger })).toBeUndefined();
    expect(readdirSync(dir)).toEqual([]);
  });

  it('appends one JSON line per request to a 0600 file; close() flushes', async () => {
    const log = ContentLog.open(spec({}), { logger: captureLogger().logger });
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const first = entry('What is 2+2?', 'Four.');
    log.write(first);
    log.write(entry('And 3+3?', 'Six.'));
    await log.close();
    const lines = readFileSync(path, 'utf8').split('\n');
    expect(lines).toHaveLength(3);
    // The entry's own fields as given; the request and response bodies become plain text.
    const { requestBody, responseText, ...fields } = first;
    expect(JSON.parse(lines[0]!)).toEqual({ ...fields, request: 'user: What is 2+2?', response: 'Four.' });
  });

  it('an existing file readable by others is narrowed to 0600, with a warning', async () => {
    writeFileSync(path, '');
    chmodSync(path, 0o644);
    const { logger, lines } = captureLogger();
    const log = ContentLog.open(spec({}), { logger });
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(lines.some((l) => l.level === 40 && /narrowed to 0600/.test(l.msg))).toBe(true);
    await log.close();
  });

  it('refuses a symlink at the path (WICKET_ERR_CONFIG): it could point anywhere', () => {
    const target = join(dir, 'elsewhere');
    writeFileSync(target, '');
    symlinkSync(target, path);
    expect(() => ContentLog.open(spec({}), { logger: captureLogger().logger })).toThrow(/WICKET_ERR_CONFIG: gateway.contentLog.path/);
  });

  it('redact patterns replace every match in prompts and answers before writing', async () => {
    const log = ContentLog.open(spec({ redact: ['\\b\\d{3}-\\d{2}-\\d{4}\\b', 'sk-[A-Za-z0-9]+'] }), { logger: captureLogger().logger });
    log.write(entry('My SSN is 123-45-6789 and 987-65-4321; key sk-abc123', 'Noted 123-45-6789.'));
    log.write(entry('again 123-45-6789', 'ok'));
    await log.close();
    const text = readFileSync(path, 'utf8');
    expect(text).not.toMatch(/\d{3}-\d{2}-\d{4}|sk-abc/);
    const [first, second] = readLines();
    expect(first!.request).toBe('user: My SSN is [REDACTED] and [REDACTED]; key [REDACTED]');
    expect(first!.response).toBe('Noted [REDACTED].');
    expect(second!.request).toBe('user: again [REDACTED]');
  });

  it('caps each entry at maxEntryBytes, cutting the texts with a truncation marker', async () => {
    const log = ContentLog.open(spec({ maxEntryBytes: 1_024 }), { logger: captureLogger().logger });
    log.write(entry('é'.repeat(5_000), 'short answer'));
    log.write(entry('x'.repeat(3_000), '"\n'.repeat(3_000)));
    await log.close();
    const raw = readFileSync(path, 'utf8').split('\n').filter((l) => l !== '');
    for (const line of raw) expect(Buffer.byteLength(line + '\n')).toBeLessThanOrEqual(1_024);
    const [first, second] = readLines();
    expect(first!.response).toBe('short answer');
    expect(first!.request).toMatch(/^user: é+…\[truncated \d+ bytes\]$/);
    const kept = Buffer.byteLength(first!.request.replace(/…\[truncated \d+ bytes\]$/, ''));
    expect(Number(/truncated (\d+) bytes/.exec(first!.request)![1]) + kept).toBe(Buffer.byteLength(`user: ${'é'.repeat(5_000)}`));
    expect(second!.request).toMatch(/…\[truncated \d+ bytes\]$/);
    expect(second!.response).toMatch(/…\[truncated \d+ bytes\]$/);
  });

  it('rotates once to <path>.1 (replacing an older one) before the file passes maxTotalBytes', async () => {
    writeFileSync(`${path}.1`, 'an older rotation\n', { mode: 0o600 });
    const log = ContentLog.open(spec({ maxTotalBytes: 4_096, maxEntryBytes: 1_024 }), { logger: captureLogger().logger });
    for (let i = 0; i < 30; i++) log.write(entry(`prompt ${i} ${'p'.repeat(300)}`, `answer ${i}`));
    await log.close();
    expect(statSync(path).size).toBeLessThanOrEqual(4_096);
    expect(statSync(`${path}.1`).size).toBeLessThanOrEqual(4_096);
    expect(statSync(`${path}.1`).mode & 0o777).toBe(0o600);
    expect(existsSync(`${path}.2`)).toBe(false);
    const older = readLines(`${path}.1`);
    const newer = readLines();
    expect(readFileSync(`${path}.1`, 'utf8')).not.toContain('an older rotation');
    // The newest entries survive, in order, across the two files.
    const numbers = [...older, ...newer].map((l) => Number(/prompt (\d+)/.exec(l.request)![1]));
    expect(numbers.at(-1)).toBe(29);
    expect(numbers).toEqual([...numbers].sort((a, b) => a - b));
    expect(numbers[0]).toBe(29 - numbers.length + 1);
  });
});

describe('promptText / answerText', () => {
  it('reads chat messages (strings and text parts), completions prompts, embeddings and responses input', () => {
    expect(
      promptText({
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: [{ type: 'text', text: 'Describe' }, { type: 'image_url', image_url: { url: 'data:...' } }, { type: 'text', text: 'this' }] },
        ],
      }),
    ).toBe('system: Be brief.\nuser: Describe\nthis');
    expect(promptText({ prompt: ['one', 'two'] })).toBe('one\ntwo');
    expect(promptText({ input: 'embed me' })).toBe('embed me');
    expect(promptText({ input: [[1, 2, 3]] })).toBe('');
    expect(promptText({ instructions: 'Be kind.', input: [{ role: 'user', content: [{ type: 'input_text', text: 'Hello' }] }] })).toBe('instructions: Be kind.\nuser: Hello');
    expect(promptText(null)).toBe('');
    expect(promptText('text')).toBe('');
  });

  it('reads chat, completions and responses answers, whole or streamed', () => {
    expect(answerText(JSON.stringify({ choices: [{ message: { content: 'Hi!' } }] }))).toBe('Hi!');
    expect(answerText(JSON.stringify({ choices: [{ text: 'done' }] }))).toBe('done');
    expect(answerText(JSON.stringify({ output: [{ type: 'message', content: [{ type: 'output_text', text: 'resp' }] }] }))).toBe('resp');
    expect(answerText(JSON.stringify({ data: [{ embedding: [0.1] }] }))).toBe('');
    const chatStream = [
      'data: {"choices":[{"index":0,"delta":{"role":"assistant"}}]}',
      'data: {"choices":[{"index":0,"delta":{"content":"Hel"}}]}',
      'data: {"choices":[{"index":0,"delta":{"content":"lo"}}]}',
      'data: {"choices":[],"usage":{"prompt_tokens":3}}',
      'data: [DONE]',
      '',
    ].join('\n\n');
    expect(answerText(chatStream)).toBe('Hello');
    const responsesStream = [
      'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","delta":"Bon"}',
      'event: response.output_text.delta\r\ndata: {"type":"response.output_text.delta","delta":"jour"}',
      'data: not json',
      '',
    ].join('\n\n');
    expect(answerText(responsesStream)).toBe('Bonjour');
    expect(answerText('data: {"type":"response.completed","response":{"output_text":"all at once"}}\n\n')).toBe('all at once');
    expect(answerText('')).toBe('');
  });

  it('fitText cuts on a character boundary and fits the JSON-escaped budget', () => {
    const cut = fitText('€'.repeat(100), 60);
    expect(Buffer.byteLength(JSON.stringify(cut)) - 2).toBeLessThanOrEqual(60);
    expect(cut).not.toContain('\ufffd');
    expect(fitText('short', 60)).toBe('short');
  });
});
