import { Console } from 'node:console';
import { Writable } from 'node:stream';
import { format, inspect } from 'node:util';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { Secret } from '../../protocol/secret.js';

// A Secret must never print its value by accident. Each test below renders a secret through one
// path that real code uses to print things, and checks the output shows [REDACTED] and none of
// the spellings of the value.

const RAW = Buffer.from('5ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e7aa01', 'hex');
const API_KEY = 'sk-test-DO-NOT-PRINT-0123456789abcdef';

function spellings(): string[] {
  return [
    RAW.toString('hex'),
    RAW.toString('base64'),
    RAW.toString('base64url'),
    inspect(RAW), // <Buffer 5e c7 …>
    RAW.subarray(0, 8).toString('hex'),
    API_KEY,
    'DO-NOT-PRINT',
  ];
}

function expectRedacted(output: string): void {
  expect(output).toContain('[REDACTED]');
  for (const leak of spellings()) expect(output).not.toContain(leak);
}

class MemoryStream extends Writable {
  chunks: string[] = [];
  override _write(chunk: Buffer | string, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    this.chunks.push(chunk.toString());
    done();
  }
  get text(): string {
    return this.chunks.join('');
  }
}

describe('Secret redaction', () => {
  const bufferSecret = new Secret(RAW);
  const stringSecret = new Secret(API_KEY);

  it('reveal() returns the wrapped value unchanged', () => {
    expect(bufferSecret.reveal()).toBe(RAW);
    expect(stringSecret.reveal()).toBe(API_KEY);
  });

  it('String() and toString() print [REDACTED]', () => {
    expectRedacted(String(bufferSecret));
    expectRedacted(bufferSecret.toString());
    expectRedacted(String(stringSecret));
  });

  it('template literals and string concatenation print [REDACTED]', () => {
    expectRedacted(`key=${bufferSecret} api=${stringSecret}`);
    expectRedacted('key=' + bufferSecret);
  });

  it('JSON.stringify prints [REDACTED], alone and nested', () => {
    expectRedacted(JSON.stringify(bufferSecret));
    expectRedacted(JSON.stringify({ config: { apiKey: stringSecret, list: [bufferSecret] } }));
  });

  it('util.inspect prints [REDACTED], nested and with showHidden', () => {
    expectRedacted(inspect(bufferSecret));
    expectRedacted(inspect({ deep: { deeper: { secret: bufferSecret, api: stringSecret } } }, { depth: 20, showHidden: true }));
  });

  it('util.format (%s %o %O %j) prints [REDACTED]', () => {
    expectRedacted(format('%s %o %O %j', bufferSecret, { s: stringSecret }, { s: bufferSecret }, { s: stringSecret }));
  });

  it('an error whose message or cause mentions a secret prints [REDACTED]', () => {
    const err = new Error(`could not use ${stringSecret}`, { cause: { secret: bufferSecret } });
    expectRedacted(`${err.message} ${inspect(err)}`);
  });

  it('console.log writes [REDACTED]', () => {
    const stream = new MemoryStream();
    const captured = new Console({ stdout: stream, stderr: stream });
    captured.log('secret:', bufferSecret, { apiKey: stringSecret });
    captured.error('%s', stringSecret);
    captured.dir({ nested: bufferSecret });
    expectRedacted(stream.text);
  });

  it('a pino logger writing to a memory stream writes [REDACTED]', () => {
    const stream = new MemoryStream();
    const logger = pino({ level: 'trace' }, stream);
    logger.info({ secret: bufferSecret, apiKey: stringSecret }, 'enrolling');
    logger.warn(`message with ${stringSecret}`);
    logger.child({ key: bufferSecret }).error({ err: new Error(`bad ${bufferSecret}`) }, 'failed');
    const text = stream.text;
    expect(text.split('\n').filter(Boolean).length).toBe(3);
    expectRedacted(text);
  });

  it('has no enumerable fields to copy the value out through spread or Object.entries', () => {
    expect(Object.keys(bufferSecret)).toEqual([]);
    expect(JSON.stringify({ ...bufferSecret })).toBe('{}');
    expect(Object.entries(stringSecret)).toEqual([]);
  });
});
