// `npm run demo`: the whole Wicket story on one machine, with real processes.
//
//   AI Corp:     the Azure OpenAI stand-in (HTTPS, a throwaway CA) and an outlet agent
//   Health Corp: an inlet agent on 127.0.0.1 and an app built on the official `openai` SDK
//   the relay:   on loopback, hosting the project authority
//
// The app calls only the inlet's localhost address. Every step prints the CLI command a user
// would type. At the end the admin revokes the inlet's identity and the next call fails.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { askQuestion, describeFailure } from '../examples/demo-client.js';
import { startStandin } from '../examples/azure-openai-standin/index.js';
import { makeTestCa } from '../examples/test-ca.js';
import { Secret } from '../protocol/secret.js';
import {
  runAgent,
  startNodeProcess,
  startRelayProcess,
  stopAll,
  tempDir,
  type AgentHome,
} from './lib/local-processes.js';

const STANDIN_NAME = 'aoai-standin.internal';
const DEPLOYMENT = 'gpt-4o-mini';
const started = Date.now();

function step(text: string): void {
  const seconds = ((Date.now() - started) / 1000).toFixed(1).padStart(5);
  process.stdout.write(`\n[${seconds}s] ${text}\n`);
}

function show(command: string): void {
  process.stdout.write(`        $ ${command}\n`);
}

async function agent(home: string, args: string[], shown: string): Promise<string> {
  show(`agent ${shown}`);
  const result = await runAgent(home, args);
  if (result.code !== 0) throw new Error(`agent ${args[0]} failed: ${result.stderr.trim().split('\n').pop()}`);
  return result.stdout.trim();
}

async function enroll(home: string, ticket: string): Promise<AgentHome> {
  const ticketFile = join(home, 'enroll.ticket');
  writeFileSync(ticketFile, ticket, { mode: 0o600 });
  const out = await agent(home, ['enroll', '--ticket-file', ticketFile, '--json'], 'enroll --ticket-file enroll.ticket');
  const info = JSON.parse(out.split('\n').pop()!) as { identifier: string; attributes: Record<string, string> };
  process.stdout.write(`        enrolled ${info.identifier} with ${JSON.stringify(info.attributes)}\n`);
  return { home, identifier: info.identifier };
}

async function main(): Promise<void> {
  const work = tempDir('wicket-demo-');
  const apiKey = new Secret(`demo-${Math.random().toString(36).slice(2)}`);

  step(`AI Corp: a private Azure OpenAI endpoint (stand-in, HTTPS with a throwaway CA, as ${STANDIN_NAME})`);
  const ca = await makeTestCa(join(work, 'ca'), { serverNames: [STANDIN_NAME, '127.0.0.1'] });
  const standin = await startStandin({
    apiKey,
    host: '127.0.0.1',
    tls: { cert: readFileSync(ca.certPath), key: readFileSync(ca.keyPath) },
  });
  process.stdout.write(`        serving ${DEPLOYMENT} on ${standin.url} (reachable only inside "AI Corp")\n`);

  step('The relay starts on loopback and prints a one-time admin ticket');
  show('relay start --listen 127.0.0.1:0 --data relay-data');
  const relay = await startRelayProcess({ dataDir: join(work, 'relay-data') });
  if (!relay.adminTicket) throw new Error('the relay did not print an admin ticket on its first start');
  process.stdout.write(`        relay ${relay.url}, authority ${relay.authority}\n`);

  step("The admin enrolls with it and creates one ticket for each side");
  const admin = await enroll(tempDir('wicket-demo-admin-'), relay.adminTicket);
  const outletTicket = await agent(admin.home, ['ticket', 'create', '--attribute', 'openai-outlet', '--relay', 'openai', '--expires-in', '60m'], 'ticket create --attribute openai-outlet --relay openai --expires-in 60m');
  const inletTicket = await agent(admin.home, ['ticket', 'create', '--attribute', 'openai-inlet', '--expires-in', '60m'], 'ticket create --attribute openai-inlet --expires-in 60m');
  process.stdout.write('        two one-use tickets minted (not shown: they are secrets)\n');

  step('AI Corp: the outlet agent enrolls and opens the door to the private endpoint (TLS to it)');
  const outlet = await enroll(tempDir('wicket-demo-outlet-'), outletTicket);
  show('agent node start');
  await startNodeProcess(outlet);
  await agent(
    outlet.home,
    ['outlet', 'create', '--to', `127.0.0.1:${standin.port}`, '--tls', '--tls-ca', ca.caCertPath, '--tls-servername', STANDIN_NAME, '--relay', 'openai', '--allow', 'openai-inlet'],
    `outlet create --to 127.0.0.1:${standin.port} --tls --tls-ca ca.pem --tls-servername ${STANDIN_NAME} --relay openai --allow openai-inlet`,
  );

  step('Health Corp: the inlet agent enrolls and listens on localhost');
  const inlet = await enroll(tempDir('wicket-demo-inlet-'), inletTicket);
  show('agent node start');
  await startNodeProcess(inlet);
  const inletAddress = await agent(inlet.home, ['inlet', 'create', '--from', '127.0.0.1:0', '--via', 'openai', '--allow', 'openai-outlet'], 'inlet create --from 127.0.0.1:0 --via openai --allow openai-outlet');
  const endpoint = `http://${inletAddress.split('\n').pop()}`;
  process.stdout.write(`        the app's Azure OpenAI endpoint is now ${endpoint}\n`);

  step(`Health Corp's app (official openai SDK, AzureOpenAI) asks "What is Ockham's Razor?" through ${endpoint}`);
  const answer = await askQuestion({ endpoint, apiKey, deployment: DEPLOYMENT });
  process.stdout.write(`        ${answer.text}\n        (model ${answer.model}, ${answer.usage?.total_tokens ?? '?'} tokens, x-request-id ${answer.requestId})\n`);

  step('The same question, streamed');
  process.stdout.write('        ');
  const streamed = await askQuestion({ endpoint, apiKey, deployment: DEPLOYMENT, stream: true, onText: (t) => process.stdout.write(t) });
  process.stdout.write(`\n        (${streamed.chunks} chunks)\n`);

  step("The admin revokes the inlet's identity");
  const revokeStarted = Date.now();
  const revoked = await agent(admin.home, ['member', 'revoke', inlet.identifier], `member revoke ${inlet.identifier}`);
  process.stdout.write(`        ${revoked} (${Date.now() - revokeStarted} ms, command included)\n`);

  step('The app asks again through the same localhost address');
  try {
    await askQuestion({ endpoint, apiKey, deployment: DEPLOYMENT, timeoutMs: 10_000 });
    throw new Error('the call through a revoked inlet succeeded: revocation did not bite');
  } catch (err) {
    if (err instanceof Error && err.message.startsWith('the call through a revoked inlet')) throw err;
    process.stdout.write(`        refused, as it should be: ${describeFailure(err)}\n`);
  }

  step('Done: every process is stopped');
  await standin.close();
}

main()
  .then(async () => {
    await stopAll();
    process.stdout.write(`\nWicket demo finished in ${((Date.now() - started) / 1000).toFixed(1)} s.\n`);
    process.exit(0);
  })
  .catch(async (err: unknown) => {
    process.stderr.write(`\ndemo failed: ${err instanceof Error ? err.message : String(err)}\n`);
    await stopAll();
    process.exit(1);
  });
