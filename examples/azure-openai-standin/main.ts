// Command line for the Azure OpenAI stand-in.
//
//   npx tsx examples/azure-openai-standin/main.ts --listen 127.0.0.1:0 \
//       --cert server.pem --key server-key.pem --api-key-file api-key
//
// Prints one JSON line, {"url":"https://127.0.0.1:PORT"}, on stdout once it listens, and nothing
// else on stdout (diagnostics go to stderr). SIGTERM or SIGINT closes it and exits 0.
// Without --cert/--key it refuses to start unless --plain-http says plain HTTP is meant.

import { readFileSync } from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { Secret } from '../../protocol/secret.js';
import { startStandin, type StandinOptions } from './server.js';

function parseListen(value: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(value);
  const port = Number(match?.[3]);
  if (!match || port > 65_535) throw new InvalidArgumentError('expected HOST:PORT, e.g. 127.0.0.1:0');
  return { host: match[1] ?? match[2] ?? '127.0.0.1', port };
}

function parseCount(value: string): number {
  if (!/^\d{1,9}$/.test(value)) throw new InvalidArgumentError('expected a non-negative integer');
  return Number(value);
}

function parseRateLimit(value: string): { requests: number; windowMs: number } {
  const match = /^(\d{1,9})\/(\d{1,6})s?$/.exec(value);
  if (!match || Number(match[1]) < 1 || Number(match[2]) < 1) {
    throw new InvalidArgumentError('expected REQUESTS/SECONDS, e.g. 60/60');
  }
  return { requests: Number(match[1]), windowMs: Number(match[2]) * 1000 };
}

function collectDeployment(value: string, previous: Record<string, string> | undefined): Record<string, string> {
  const [name, model] = value.split('=', 2);
  if (!name) throw new InvalidArgumentError('expected NAME or NAME=MODEL');
  return { ...previous, [name]: model || name };
}

const program = new Command()
  .name('azure-openai-standin')
  .description('An HTTPS server that answers like the Azure OpenAI data plane (chat, completions, embeddings, responses).')
  .option('--listen <host:port>', 'address to listen on', parseListen, { host: '127.0.0.1', port: 0 })
  .option('--cert <file>', 'PEM server certificate (chain)')
  .option('--key <file>', 'PEM private key of the certificate')
  .option('--plain-http', 'serve plain HTTP instead of HTTPS (tests only)')
  .requiredOption('--api-key-file <file>', 'file holding the API key clients must present')
  .option('--deployment <name[=model]>', 'a deployment to serve (repeatable; default gpt-4o-mini and gpt-4o)', collectDeployment)
  .option('--rate-limit <requests/seconds>', 'answer 429 past this many requests per window, per deployment', parseRateLimit)
  .option('--chunk-delay-ms <ms>', 'pause between streamed events', parseCount)
  .option('--abort-after-bytes <n>', 'kill every connection after N response body bytes', parseCount)
  .option('--first-token-delay-ms <ms>', 'pause before the head of every successful answer', parseCount)
  .option('--region <name>', 'what the x-ms-region header says (e.g. "Sweden Central")')
  .addHelpText(
    'after',
    '\nExample:\n  npx tsx examples/azure-openai-standin/main.ts --listen 127.0.0.1:0 --cert c.pem --key k.pem --api-key-file key\n',
  );

async function main(): Promise<void> {
  program.parse();
  const opts = program.opts<{
    listen: { host: string; port: number };
    cert?: string;
    key?: string;
    plainHttp?: boolean;
    apiKeyFile: string;
    deployment?: Record<string, string>;
    rateLimit?: { requests: number; windowMs: number };
    chunkDelayMs?: number;
    abortAfterBytes?: number;
    firstTokenDelayMs?: number;
    region?: string;
  }>();
  if ((opts.cert === undefined) !== (opts.key === undefined)) {
    throw new Error('--cert and --key go together');
  }
  if (opts.cert === undefined && !opts.plainHttp) {
    throw new Error('give --cert and --key, or --plain-http to serve without TLS');
  }
  const apiKey = new Secret(readFileSync(opts.apiKeyFile, 'utf8').trim());
  const options: StandinOptions = {
    apiKey,
    host: opts.listen.host,
    port: opts.listen.port,
    ...(opts.cert !== undefined && opts.key !== undefined
      ? { tls: { cert: readFileSync(opts.cert), key: readFileSync(opts.key) } }
      : {}),
    ...(opts.deployment ? { deployments: opts.deployment } : {}),
    ...(opts.rateLimit ? { rateLimit: opts.rateLimit } : {}),
    ...(opts.chunkDelayMs !== undefined ? { chunkDelayMs: opts.chunkDelayMs } : {}),
    ...(opts.abortAfterBytes !== undefined ? { abortAfterBytes: opts.abortAfterBytes } : {}),
    ...(opts.firstTokenDelayMs !== undefined ? { firstTokenDelayMs: opts.firstTokenDelayMs } : {}),
    ...(opts.region !== undefined ? { region: opts.region } : {}),
  };
  const standin = await startStandin(options);
  process.stdout.write(`${JSON.stringify({ url: standin.url })}\n`);

  let closing = false;
  const shutdown = (): void => {
    if (closing) return;
    closing = true;
    standin.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}

main().catch((err: unknown) => {
  process.stderr.write(`azure-openai-standin: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(2);
});
