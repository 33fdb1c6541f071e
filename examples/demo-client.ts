// The demo's app: asks an Azure OpenAI deployment a question through the official `openai` npm
// package's AzureOpenAI client, exactly as an app in Health Corp's network would, except that its
// endpoint is the Wicket inlet on localhost.
//
//   npx tsx examples/demo-client.ts --endpoint http://127.0.0.1:8443 [--stream] [--json]
//       [--deployment gpt-4o-mini] [--api-version 2024-10-21] [--api-key-file F]
//       [--question "What is Ockham's Razor?"] [--max-retries 0] [--ca-file ca.pem]
//
// The API key comes from --api-key-file or $AZURE_OPENAI_API_KEY and is never printed. Retries
// default to 0: a revoked portal must fail at once, not after the SDK's backoff. On failure it
// prints one line (e.g. "demo-client: the portal is closed: connection reset by peer") on stderr
// and exits 1; a usage mistake exits 2.
//
// askQuestion() is the same thing in-process, for tests and scripts/demo.ts.

import { readFileSync, realpathSync } from 'node:fs';
import http from 'node:http';
import { pathToFileURL } from 'node:url';
import { Command, InvalidArgumentError } from 'commander';
import {
  APIConnectionError,
  APIConnectionTimeoutError,
  APIError,
  AuthenticationError,
  AzureOpenAI,
  NotFoundError,
  RateLimitError,
} from 'openai';
import { Secret } from '../protocol/secret.js';
import { watchedAgent } from './watched-agent.js';

export const DEFAULT_DEPLOYMENT = 'gpt-4o-mini';
/** The current GA data-plane version. */
export const DEFAULT_API_VERSION = '2024-10-21';
export const DEFAULT_QUESTION = "What is Ockham's Razor?";
const DEFAULT_TIMEOUT_MS = 30_000;

export interface AskOptions {
  /** Base address of the service, e.g. the inlet's `http://127.0.0.1:8443` (no `/openai`). */
  readonly endpoint: string;
  readonly apiKey: string | Secret<string>;
  readonly deployment?: string;
  readonly apiVersion?: string;
  readonly question?: string;
  readonly stream?: boolean;
  /** Called with each piece of text as it arrives (streaming only). */
  readonly onText?: (text: string) => void;
  /** Default 0. */
  readonly maxRetries?: number;
  readonly timeoutMs?: number;
  /** Extra CA certificate(s) to trust for an https endpoint (the demo's test CA). */
  readonly caCertPem?: string | Buffer;
  /** Extra request headers, e.g. the stand-in's fault-injection headers. */
  readonly headers?: Readonly<Record<string, string>>;
}

export interface Answer {
  readonly text: string;
  readonly streamed: boolean;
  /** Content-bearing chunks received (0 when not streamed). */
  readonly chunks: number;
  readonly model: string;
  readonly finishReason: string | null;
  readonly usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number } | null;
  /** The service's `x-request-id` response header. */
  readonly requestId: string | null;
}

export async function askQuestion(options: AskOptions): Promise<Answer> {
  const apiKey = typeof options.apiKey === 'string' ? new Secret(options.apiKey) : options.apiKey;
  const deployment = options.deployment ?? DEFAULT_DEPLOYMENT;
  const endpoint = options.endpoint.replace(/\/+$/, '');
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  // One abort for everything that can go wrong after the request left: a broken connection (see
  // watched-agent.ts for why the SDK alone would hang) or the whole question taking too long
  // (the SDK's own timeout stops counting once the headers arrive).
  const abort = new AbortController();
  const watch = watchedAgent(endpoint, { caCertPem: options.caCertPem, onBroken: () => abort.abort() });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    abort.abort();
  }, timeoutMs);
  try {
    let answer: Answer | undefined;
    let failure: unknown;
    try {
      answer = await ask(options, apiKey, deployment, endpoint, watch.agent, abort.signal);
    } catch (err) {
      failure = err;
    }
    // Checked even on success: the SDK ends a stream quietly when it is aborted, so a stream cut
    // short can look finished.
    const broken = watch.broken();
    if (broken) {
      throw Object.assign(new Error(`connection broken: ${broken.message}`, { cause: failure ?? broken }), { code: broken.code });
    }
    if (timedOut) {
      throw Object.assign(new Error(`no complete answer within ${timeoutMs} ms`, { cause: failure }), { code: 'ETIMEDOUT' });
    }
    if (answer === undefined) throw failure;
    return answer;
  } finally {
    clearTimeout(timer);
    watch.dispose();
  }
}

async function ask(
  options: AskOptions,
  apiKey: Secret<string>,
  deployment: string,
  endpoint: string,
  agent: http.Agent,
  signal: AbortSignal,
): Promise<Answer> {
  const client = new AzureOpenAI({
    // baseURL rather than `endpoint`, so a stray OPENAI_BASE_URL in the environment cannot clash.
    baseURL: `${endpoint}/openai`,
    apiKey: apiKey.reveal(),
    apiVersion: options.apiVersion ?? DEFAULT_API_VERSION,
    deployment,
    maxRetries: options.maxRetries ?? 0,
    timeout: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    httpAgent: agent,
    ...(options.headers ? { defaultHeaders: { ...options.headers } } : {}),
  });
  const messages = [{ role: 'user' as const, content: options.question ?? DEFAULT_QUESTION }];

  if (!options.stream) {
    const { data, response } = await client.chat.completions
      .create({ model: deployment, messages }, { signal })
      .withResponse();
    const choice = data.choices[0];
    return {
      text: choice?.message.content ?? '',
      streamed: false,
      chunks: 0,
      model: data.model,
      finishReason: choice?.finish_reason ?? null,
      usage: data.usage
        ? { prompt_tokens: data.usage.prompt_tokens, completion_tokens: data.usage.completion_tokens, total_tokens: data.usage.total_tokens }
        : null,
      requestId: response.headers.get('x-request-id'),
    };
  }

  const { data: stream, response } = await client.chat.completions
    .create({ model: deployment, messages, stream: true, stream_options: { include_usage: true } }, { signal })
    .withResponse();
  let text = '';
  let chunks = 0;
  let model = '';
  let finishReason: string | null = null;
  let usage: Answer['usage'] = null;
  for await (const chunk of stream) {
    // Azure's first chunk carries only prompt filter results: no choices, empty model.
    if (chunk.model) model = chunk.model;
    if (chunk.usage) {
      usage = { prompt_tokens: chunk.usage.prompt_tokens, completion_tokens: chunk.usage.completion_tokens, total_tokens: chunk.usage.total_tokens };
    }
    const choice = chunk.choices[0];
    if (!choice) continue;
    if (choice.finish_reason) finishReason = choice.finish_reason;
    const piece = choice.delta?.content;
    if (piece) {
      chunks += 1;
      text += piece;
      options.onText?.(piece);
    }
  }
  return { text, streamed: true, chunks, model, finishReason, usage, requestId: response.headers.get('x-request-id') };
}

const PORTAL_CLOSED_CODES: Readonly<Record<string, string>> = {
  ECONNRESET: 'connection reset by peer',
  ECONNREFUSED: 'connection refused',
  EPIPE: 'connection broken (EPIPE)',
  ERR_STREAM_PREMATURE_CLOSE: 'the connection closed before the response was complete',
  UND_ERR_SOCKET: 'connection reset by peer',
};

/** One line that says what went wrong, for a person; never includes the API key. */
export function describeFailure(err: unknown): string {
  const code = (err as { code?: unknown } | undefined)?.code;
  if (err instanceof APIConnectionTimeoutError || code === 'ETIMEDOUT') return 'timed out waiting for the service';
  if (err instanceof AuthenticationError) return `401 unauthorized: the service refused the API key (${serviceMessage(err)})`;
  if (err instanceof NotFoundError) return `404 not found${err.code ? ` (${err.code})` : ''}: ${serviceMessage(err)}`;
  if (err instanceof RateLimitError) {
    const retryAfter = err.headers?.['retry-after'];
    return `429 rate limited${retryAfter ? `, retry after ${retryAfter} s` : ''}: ${serviceMessage(err)}`;
  }
  const closed = portalClosedReason(err);
  if (closed) return `the portal is closed: ${closed}`;
  if (err instanceof APIConnectionError) return `cannot reach the service: ${causeMessage(err)}`;
  if (err instanceof APIError) return `${err.status ?? 'error'}${err.code ? ` ${err.code}` : ''}: ${serviceMessage(err)}`;
  return err instanceof Error ? err.message : String(err);
}

function serviceMessage(err: APIError): string {
  const body = err.error as { message?: unknown } | undefined;
  return typeof body?.message === 'string' ? body.message : err.message;
}

/** Walks the cause chain for a socket-level failure: refused, reset, or cut short mid-body. */
function portalClosedReason(err: unknown): string | undefined {
  let current: unknown = err;
  for (let depth = 0; depth < 8 && current instanceof Error; depth += 1) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && PORTAL_CLOSED_CODES[code]) return PORTAL_CLOSED_CODES[code];
    if (/premature close|socket hang up|aborted|terminated/i.test(current.message)) {
      return 'the connection closed before the response was complete';
    }
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

function causeMessage(err: Error): string {
  const cause = (err as { cause?: unknown }).cause;
  return cause instanceof Error ? cause.message : err.message;
}

// ------------------------------------------------------------------------------------------------
// Command line
// ------------------------------------------------------------------------------------------------

function parseRetries(value: string): number {
  if (!/^\d{1,2}$/.test(value)) throw new InvalidArgumentError('expected an integer from 0 to 99');
  return Number(value);
}

async function main(argv: string[]): Promise<number> {
  const program = new Command()
    .name('demo-client')
    .description('Ask an Azure OpenAI deployment a question with the official openai SDK (AzureOpenAI).')
    .requiredOption('--endpoint <url>', 'service base address, e.g. the inlet http://127.0.0.1:8443')
    .option('--deployment <name>', 'deployment name', DEFAULT_DEPLOYMENT)
    .option('--api-version <version>', 'data-plane api-version', DEFAULT_API_VERSION)
    .option('--api-key-file <file>', 'file holding the API key (default: $AZURE_OPENAI_API_KEY)')
    .option('--question <text>', 'what to ask', DEFAULT_QUESTION)
    .option('--stream', 'stream the answer and print it as it arrives')
    .option('--json', 'print the result as one JSON object')
    .option('--max-retries <n>', 'SDK retries on failure', parseRetries, 0)
    .option('--ca-file <file>', 'extra CA certificate to trust for an https endpoint')
    .option('--timeout-ms <ms>', 'give up after this long', (v) => Number(v), DEFAULT_TIMEOUT_MS)
    .addHelpText('after', "\nExample:\n  AZURE_OPENAI_API_KEY=… npx tsx examples/demo-client.ts --endpoint http://127.0.0.1:8443 --stream\n")
    .exitOverride();
  try {
    program.parse(argv, { from: 'user' });
  } catch (err) {
    return (err as { exitCode?: number }).exitCode === 0 ? 0 : 2;
  }
  const opts = program.opts<{
    endpoint: string; deployment: string; apiVersion: string; apiKeyFile?: string; question: string;
    stream?: boolean; json?: boolean; maxRetries: number; caFile?: string; timeoutMs: number;
  }>();

  const keyText = opts.apiKeyFile ? readFileSync(opts.apiKeyFile, 'utf8').trim() : process.env['AZURE_OPENAI_API_KEY'];
  if (!keyText) {
    process.stderr.write('demo-client: no API key: pass --api-key-file or set AZURE_OPENAI_API_KEY\n');
    return 2;
  }
  const printLive = Boolean(opts.stream) && !opts.json;
  try {
    const answer = await askQuestion({
      endpoint: opts.endpoint,
      apiKey: new Secret(keyText),
      deployment: opts.deployment,
      apiVersion: opts.apiVersion,
      question: opts.question,
      stream: Boolean(opts.stream),
      maxRetries: opts.maxRetries,
      timeoutMs: opts.timeoutMs,
      ...(opts.caFile ? { caCertPem: readFileSync(opts.caFile) } : {}),
      ...(printLive ? { onText: (piece: string) => process.stdout.write(piece) } : {}),
    });
    if (opts.json) process.stdout.write(`${JSON.stringify(answer)}\n`);
    else process.stdout.write(printLive ? '\n' : `${answer.text}\n`);
    return 0;
  } catch (err) {
    if (printLive) process.stdout.write('\n');
    process.stderr.write(`demo-client: ${describeFailure(err)}\n`);
    return 1;
  }
}

function isMainModule(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(script)).href;
  } catch {
    return false;
  }
}

if (isMainModule()) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`demo-client: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
