// `npm run demo`: the whole Wicket story on one machine, with real processes.
//
//   AI Corp:     the Azure OpenAI stand-in (HTTPS, a throwaway CA) and an outlet agent running
//                the Azure OpenAI gateway: it alone holds the service key, records usage per
//                caller identity and holds each team to its limits
//   Health Corp: two inlet agents on 127.0.0.1 (cardiology, radiology), each behind an app built
//                on the official `openai` SDK that sends a placeholder key
//   the relay:   on loopback, hosting the project authority
//
// The apps call only their inlet's localhost address. Every step prints the CLI command a user
// would type. Radiology runs into its requests-per-minute limit; the outlet prints the usage per
// identity; then the admin revokes cardiology's identity and its next call fails.
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
/** What the apps send as their key: anything. The gateway drops it and uses the outlet's. */
const PLACEHOLDER_KEY = 'any-placeholder-the-gateway-drops-it';
const RADIOLOGY_REQUESTS_PER_MINUTE = 2;
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

function indent(text: string): string {
  return text.split('\n').map((line) => `        ${line}`).join('\n');
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

  step('The relay starts on loopback and saves a one-time admin ticket in relay-data/admin-ticket (0600)');
  show('relay start --listen 127.0.0.1:0 --data relay-data');
  const relay = await startRelayProcess({ dataDir: join(work, 'relay-data') });
  if (!relay.adminTicket) throw new Error('the relay saved no admin ticket on its first start');
  process.stdout.write(`        relay ${relay.url}, authority ${relay.authority}\n`);

  step("The admin enrolls with it and creates one ticket for each side");
  const admin = await enroll(tempDir('wicket-demo-admin-'), relay.adminTicket);
  const outletTicket = await agent(admin.home, ['ticket', 'create', '--attribute', 'openai-outlet', '--relay', 'openai', '--expires-in', '60m'], 'ticket create --attribute openai-outlet --relay openai --expires-in 60m');
  const cardiologyTicket = await agent(admin.home, ['ticket', 'create', '--attribute', 'openai-inlet', '--attribute', 'team=cardiology', '--expires-in', '60m'], 'ticket create --attribute openai-inlet --attribute team=cardiology --expires-in 60m');
  const radiologyTicket = await agent(admin.home, ['ticket', 'create', '--attribute', 'openai-inlet', '--attribute', 'team=radiology', '--expires-in', '60m'], 'ticket create --attribute openai-inlet --attribute team=radiology --expires-in 60m');
  process.stdout.write('        three one-use tickets minted (not shown: they are secrets)\n');

  step('AI Corp: the outlet agent enrolls and runs the Azure OpenAI gateway in front of the private endpoint');
  const outlet = await enroll(tempDir('wicket-demo-outlet-'), outletTicket);
  // Only the outlet holds the service key, in a 0600 file; on Azure it would use its managed identity.
  const keyFile = join(outlet.home, 'aoai.key');
  writeFileSync(keyFile, apiKey.reveal(), { mode: 0o600 });
  const nodeConfig = {
    outlets: [
      {
        name: 'openai',
        relay: 'openai',
        allow: 'openai-inlet',
        gateway: {
          kind: 'azure-openai',
          backends: [{ name: 'stand-in', url: standin.url, tlsCa: ca.caCertPath, auth: { kind: 'api-key', file: keyFile } }],
          limits: [{ attribute: 'team', value: 'radiology', requestsPerMinute: RADIOLOGY_REQUESTS_PER_MINUTE }],
        },
      },
    ],
  };
  writeFileSync(join(outlet.home, 'node.json'), JSON.stringify(nodeConfig, null, 2), { mode: 0o600 });
  process.stdout.write(`        node.json: ${JSON.stringify(nodeConfig.outlets[0]!.gateway.limits)} (backend key in aoai.key, mode 0600)\n`);
  show('agent node start --config node.json');
  await startNodeProcess(outlet, nodeConfig);

  step('Health Corp: two inlet agents (cardiology, radiology) enroll and listen on localhost');
  const endpoints: string[] = [];
  const inlets: AgentHome[] = [];
  for (const ticket of [cardiologyTicket, radiologyTicket]) {
    const inlet = await enroll(tempDir('wicket-demo-inlet-'), ticket);
    show('agent node start');
    await startNodeProcess(inlet);
    const address = await agent(inlet.home, ['inlet', 'create', '--from', '127.0.0.1:0', '--via', 'openai', '--allow', 'openai-outlet'], 'inlet create --from 127.0.0.1:0 --via openai --allow openai-outlet');
    endpoints.push(`http://${address.split('\n').pop()}`);
    inlets.push(inlet);
  }
  const [cardiology, radiology] = endpoints as [string, string];
  process.stdout.write(`        cardiology's endpoint ${cardiology}, radiology's ${radiology}; both apps send a placeholder key\n`);

  step(`Cardiology's app (official openai SDK, AzureOpenAI) asks "What is Ockham's Razor?" through ${cardiology}`);
  const answer = await askQuestion({ endpoint: cardiology, apiKey: PLACEHOLDER_KEY, deployment: DEPLOYMENT });
  process.stdout.write(`        ${answer.text}\n        (model ${answer.model}, ${answer.usage?.total_tokens ?? '?'} tokens, x-request-id ${answer.requestId})\n`);

  step('The same question, streamed');
  process.stdout.write('        ');
  const streamed = await askQuestion({ endpoint: cardiology, apiKey: PLACEHOLDER_KEY, deployment: DEPLOYMENT, stream: true, onText: (t) => process.stdout.write(t) });
  process.stdout.write(`\n        (${streamed.chunks} chunks)\n`);

  step(`Radiology's app asks three times; its team may make ${RADIOLOGY_REQUESTS_PER_MINUTE} requests a minute`);
  for (let i = 1; i <= 3; i++) {
    try {
      const reply = await askQuestion({ endpoint: radiology, apiKey: PLACEHOLDER_KEY, deployment: DEPLOYMENT });
      process.stdout.write(`        ${i}: answered (${reply.usage?.total_tokens ?? '?'} tokens)\n`);
    } catch (err) {
      process.stdout.write(`        ${i}: ${describeFailure(err)}\n`);
    }
  }

  step('AI Corp sees who used how many tokens (the ledger is written in batches; give it a moment)');
  await new Promise((r) => setTimeout(r, 600));
  process.stdout.write(`${indent(await agent(outlet.home, ['usage', '--by', 'identity'], 'usage --by identity'))}\n`);
  process.stdout.write(`${indent(await agent(outlet.home, ['usage', '--by', 'attribute:team'], 'usage --by attribute:team'))}\n`);
  const inlet = inlets[0]!;
  const endpoint = cardiology;

  step("The admin revokes cardiology's identity");
  const revokeStarted = Date.now();
  const revoked = await agent(admin.home, ['member', 'revoke', inlet.identifier], `member revoke ${inlet.identifier}`);
  process.stdout.write(`        ${revoked} (${Date.now() - revokeStarted} ms, command included)\n`);

  step("Cardiology's app asks again through the same localhost address");
  try {
    await askQuestion({ endpoint, apiKey: PLACEHOLDER_KEY, deployment: DEPLOYMENT, timeoutMs: 10_000 });
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
