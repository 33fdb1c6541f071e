import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTestCa } from '../../examples/test-ca.js';
import { ManagedProcess, REPO_ROOT, runCommand, stopAll, tempDir } from '../../scripts/lib/local-processes.js';

// The seed scenario with real network isolation, in network namespaces this test creates:
//
//   relay ns    10.231.0.1 (its own address) with a veth to each corp; IP forwarding OFF, so the
//               corps cannot reach each other through it
//   AI Corp     10.231.1.2: the Azure OpenAI stand-in (HTTPS) and the outlet; nftables drops ALL
//               inbound except loopback and replies to its own outbound connections
//   Health Corp 10.231.2.2: the inlet on 127.0.0.1 and the app (official openai SDK)
//
// The relay listens on a non-loopback address, so it serves TLS with its self-signed certificate,
// pinned in the tickets. Proves: the app cannot reach the stand-in directly, not even from the
// relay's network, and can through the inlet. Needs root, iproute2 and nftables; otherwise skips
// and says why. Addresses are only ever those of the namespaces made here.

const id = process.pid % 10_000;
const NS = { relay: `wkr${id}`, ai: `wka${id}`, health: `wkh${id}` };
const RELAY_IP = '10.231.0.1';
const AI_IP = '10.231.1.2';
const SERVERNAME = 'aoai-standin.internal';
const STANDIN_PORT = 8443;
const API_KEY = 'netns-test-key-0123456789';

function sh(args: string[]): { ok: boolean; output: string } {
  const r = spawnSync(args[0]!, args.slice(1), { encoding: 'utf8', timeout: 10_000 });
  return { ok: r.status === 0, output: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}` };
}

function inNs(ns: string, ...args: string[]): { ok: boolean; output: string } {
  return sh(['ip', 'netns', 'exec', ns, ...args]);
}

function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root: network namespaces need CAP_SYS_ADMIN';
  if (!sh(['ip', '-V']).ok) return 'iproute2 (ip) is not installed';
  if (!sh(['nft', '--version']).ok) return 'nftables (nft) is not installed';
  const probe = `wkp${id}`;
  const made = sh(['ip', 'netns', 'add', probe]);
  sh(['ip', 'netns', 'del', probe]);
  if (!made.ok) return `ip netns add is not permitted here: ${made.output.trim()}`;
  return undefined;
}

const reason = skipReason();
if (reason) console.log(`network-namespace test skipped: ${reason}`);

function must(result: { ok: boolean; output: string }, what: string): void {
  if (!result.ok) throw new Error(`${what}: ${result.output}`);
}

function buildTopology(): void {
  for (const ns of Object.values(NS)) {
    must(sh(['ip', 'netns', 'add', ns]), `netns add ${ns}`);
    must(inNs(ns, 'ip', 'link', 'set', 'lo', 'up'), `lo up in ${ns}`);
  }
  must(inNs(NS.relay, 'ip', 'addr', 'add', `${RELAY_IP}/32`, 'dev', 'lo'), 'relay address');
  must(inNs(NS.relay, 'sysctl', '-qw', 'net.ipv4.ip_forward=0'), 'relay forwarding off');
  const links: [keyof typeof NS, number][] = [['ai', 1], ['health', 2]];
  for (const [corp, net] of links) {
    const corpEnd = `wk${corp[0]}${id}`;
    const relayEnd = `wk${corp[0]}r${id}`;
    must(sh(['ip', 'link', 'add', corpEnd, 'netns', NS[corp], 'type', 'veth', 'peer', 'name', relayEnd, 'netns', NS.relay]), `veth ${corp}`);
    must(inNs(NS.relay, 'ip', 'addr', 'add', `10.231.${net}.1/24`, 'dev', relayEnd), 'relay veth address');
    must(inNs(NS.relay, 'ip', 'link', 'set', relayEnd, 'up'), 'relay veth up');
    must(inNs(NS[corp], 'ip', 'addr', 'add', `10.231.${net}.2/24`, 'dev', corpEnd), `${corp} address`);
    must(inNs(NS[corp], 'ip', 'link', 'set', corpEnd, 'up'), `${corp} veth up`);
    must(inNs(NS[corp], 'ip', 'route', 'add', `${RELAY_IP}/32`, 'via', `10.231.${net}.1`), `${corp} route to relay`);
  }
  // AI Corp (and Health Corp) accept nothing from outside: only loopback and replies.
  for (const corp of [NS.ai, NS.health]) {
    const rules = [
      'table inet wicket_test {',
      '  chain input {',
      '    type filter hook input priority 0; policy drop;',
      '    iif lo accept',
      '    ct state established,related accept',
      '  }',
      '}',
    ].join('\n');
    const file = join(tempDir('wicket-nft-'), 'rules.nft');
    writeFileSync(file, rules);
    must(inNs(corp, 'nft', '-f', file), `nftables in ${corp}`);
  }
}

function teardown(): void {
  for (const ns of Object.values(NS)) sh(['ip', 'netns', 'del', ns]);
}

function nodeInNs(ns: string, name: string, args: string[], env: NodeJS.ProcessEnv = {}): ManagedProcess {
  return new ManagedProcess(name, 'ip', ['netns', 'exec', ns, process.execPath, ...args], {
    ...process.env,
    WICKET_LOG_FORMAT: 'json',
    ...env,
  });
}

async function runToEnd(proc: ManagedProcess, timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), timeoutMs);
  const { code } = await proc.exited;
  clearTimeout(timer);
  await new Promise((r) => setImmediate(r));
  return { code, stdout: proc.stdoutLines.join('\n'), stderr: proc.stderrLines.join('\n') };
}

/** A TCP connect attempt from inside `ns`, bounded: 'connected' or why not. */
async function tryConnect(ns: string, host: string, port: number): Promise<string> {
  const script = `const s=require('net').connect(${port},'${host}');s.setTimeout(2000);s.on('connect',()=>{console.log('connected');process.exit(0)});s.on('timeout',()=>{console.log('timeout');process.exit(1)});s.on('error',e=>{console.log(e.code);process.exit(1)});`;
  const r = await runToEnd(nodeInNs(ns, `probe ${ns}`, ['-e', script]), 10_000);
  return r.stdout.trim();
}

const AGENT = join(REPO_ROOT, 'bin', 'agent.js');
const RELAY = join(REPO_ROOT, 'bin', 'relay.js');

describe.skipIf(reason !== undefined)('network namespaces: AI Corp and Health Corp joined only by Wicket', () => {
  let inletAddress = '';
  let apiKeyFile = '';

  beforeAll(async () => {
    teardown();
    buildTopology();
    const work = tempDir('wicket-netns-');
    apiKeyFile = join(work, 'api-key');
    writeFileSync(apiKeyFile, API_KEY, { mode: 0o600 });
    const ca = await makeTestCa(join(work, 'ca'), { serverNames: [SERVERNAME] });

    // AI Corp's private service.
    const standin = nodeInNs(NS.ai, 'standin', [
      '--import', 'tsx', join(REPO_ROOT, 'examples/azure-openai-standin/main.ts'),
      '--listen', `0.0.0.0:${STANDIN_PORT}`, '--cert', ca.certPath, '--key', ca.keyPath, '--api-key-file', apiKeyFile,
    ]);
    await standin.waitForJson((v) => typeof v.url === 'string');

    // The relay, on its own non-loopback address: TLS with a pinned self-signed certificate.
    const dataDir = join(work, 'relay');
    const relay = nodeInNs(NS.relay, 'relay', [RELAY, 'start', '--listen', `${RELAY_IP}:7400`, '--data', dataDir, '--json']);
    const relayInfo = await relay.waitForJson<{ url: string; fingerprint?: string }>((v) => typeof v.url === 'string');
    expect(relayInfo.url).toMatch(/^wss:\/\//);
    expect(relayInfo.fingerprint).toBeTruthy();

    const enroll = async (ns: string, attribute: string, relayName?: string) => {
      const args = ['ticket', 'create', '--data', dataDir, '--attribute', attribute, '--json'];
      if (relayName) args.push('--relay', relayName);
      const minted = await runCommand('relay', args);
      expect(minted.code, minted.stderr).toBe(0);
      const home = tempDir('wicket-netns-agent-');
      const ticketFile = join(home, 'ticket');
      writeFileSync(ticketFile, (JSON.parse(minted.stdout.trim()) as { ticket: string }).ticket, { mode: 0o600 });
      const r = await runToEnd(nodeInNs(ns, `enroll ${attribute}`, [AGENT, 'enroll', '--ticket-file', ticketFile], { WICKET_HOME: home }), 30_000);
      expect(r.code, r.stderr).toBe(0);
      return home;
    };
    const outletHome = await enroll(NS.ai, 'openai-outlet', 'openai');
    const inletHome = await enroll(NS.health, 'openai-inlet');

    const writeConfig = (home: string, config: unknown) => {
      const file = join(home, 'node.json');
      writeFileSync(file, JSON.stringify(config));
      return file;
    };
    const outlet = nodeInNs(NS.ai, 'outlet', [AGENT, 'node', 'start', '--json', '--config', writeConfig(outletHome, {
      outlets: [{ name: 'openai', to: `127.0.0.1:${STANDIN_PORT}`, tls: true, tlsCa: ca.caCertPath, tlsServername: SERVERNAME, relay: 'openai', allow: 'openai-inlet' }],
    })], { WICKET_HOME: outletHome });
    await outlet.waitForJson((v) => v.ready === true);
    const inlet = nodeInNs(NS.health, 'inlet', [AGENT, 'node', 'start', '--json', '--config', writeConfig(inletHome, {
      inlets: [{ name: 'openai', from: '127.0.0.1:0', via: 'openai', allow: 'openai-outlet' }],
    })], { WICKET_HOME: inletHome });
    const ready = await inlet.waitForJson<{ inlets: { address: string }[] }>((v) => v.ready === true);
    inletAddress = ready.inlets[0]!.address;
  }, 120_000);

  afterAll(async () => {
    await stopAll();
    teardown();
  });

  it('Health Corp cannot reach the AI Corp service directly', async () => {
    expect(await tryConnect(NS.health, AI_IP, STANDIN_PORT)).not.toBe('connected');
  });

  it('AI Corp drops inbound even from the relay network, which has a route to it', async () => {
    expect(await tryConnect(NS.relay, AI_IP, STANDIN_PORT)).toBe('timeout');
  });

  it("Health Corp's app (official openai SDK) gets the answer through the inlet", async () => {
    const client = nodeInNs(NS.health, 'demo-client', [
      '--import', 'tsx', join(REPO_ROOT, 'examples/demo-client.ts'),
      '--endpoint', `http://${inletAddress}`, '--api-key-file', apiKeyFile, '--json',
    ]);
    const r = await runToEnd(client, 60_000);
    expect(r.code, r.stderr).toBe(0);
    const answer = JSON.parse(r.stdout.trim().split('\n').pop()!) as { text: string };
    expect(answer.text).toMatch(/Ockham/);
  });
});
