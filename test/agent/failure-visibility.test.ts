import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTestCa, type TestCaFiles } from '../../examples/test-ca.js';
import { WICKET_VERSION } from '../../protocol/version.js';
import { connectTcp, type EchoServer, startEchoServer } from '../helpers/echo-server.js';
import {
  type AgentHome,
  enrollAgent,
  type NodeProcess,
  type RelayProcess,
  runAgent,
  startNodeProcess,
  startRelayProcess,
  stopAll,
  tempDir,
} from '../../scripts/lib/local-processes.js';

// Failures an operator can see without reading JSON logs: `agent status` names each inlet's and
// outlet's state and keeps its last error (code, message, ISO time); `outlet create` checks its
// target and warns; a TLS name mismatch lists the certificate's names; a policy refusal names the
// peer and its attributes. The app side of every failure stays a TCP reset.

interface LastError {
  code: string;
  message: string;
  at: string;
}
interface Status {
  version: string;
  inlets: { name: string; state: string; lastError?: LastError }[];
  outlets: { name: string; state: string; lastError?: LastError }[];
}

let relay: RelayProcess;
let echo: EchoServer;
let tlsEcho: EchoServer;
let ca: TestCaFiles;
let closedPort: number;
let outletAgent: AgentHome;
let inletAgent: AgentHome;
let strangerAgent: AgentHome;
let outletNode: NodeProcess;
let inletNode: NodeProcess;
let strangerNode: NodeProcess;

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', () => resolve()));
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

async function status(agent: AgentHome): Promise<Status> {
  const result = await runAgent(agent.home, ['status', '--json']);
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as Status;
}

/** An ISO 8601 time within the last minute. */
function expectRecent(at: string): void {
  expect(at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  expect(Date.now() - Date.parse(at)).toBeLessThan(60_000);
}

beforeAll(async () => {
  relay = await startRelayProcess();
  ca = await makeTestCa(tempDir('wicket-ca-'), { serverNames: ['target.test'] });
  [echo, tlsEcho] = await Promise.all([startEchoServer(), startEchoServer({ tls: { cert: readFileSync(ca.certPath), key: readFileSync(ca.keyPath) } })]);
  closedPort = await freePort();
  [outletAgent, inletAgent, strangerAgent] = await Promise.all([
    enrollAgent(relay, { attributes: ['svc-outlet'], relayNames: ['svc', 'wrong-name', 'down', 'made-ok', 'made-down', 'made-tls'] }),
    enrollAgent(relay, { attributes: ['svc-inlet', 'team=blue'] }),
    enrollAgent(relay, { attributes: ['guest', 'team=red'] }),
  ]);
  outletNode = await startNodeProcess(outletAgent, {
    outlets: [
      { to: echo.address, relay: 'svc', allow: 'svc-inlet' },
      { to: tlsEcho.address, tls: true, tlsCa: ca.caCertPath, tlsServername: 'impostor.test', relay: 'wrong-name', allow: 'svc-inlet' },
      { to: `127.0.0.1:${closedPort}`, relay: 'down', allow: 'svc-inlet' },
    ],
  });
  [inletNode, strangerNode] = await Promise.all([
    startNodeProcess(inletAgent, { inlets: ['svc', 'wrong-name', 'down'].map((via) => ({ from: '127.0.0.1:0', via, allow: 'svc-outlet' })) }),
    startNodeProcess(strangerAgent, { inlets: [{ from: '127.0.0.1:0', via: 'svc', allow: 'svc-outlet' }] }),
  ]);
}, 120_000);

afterAll(async () => {
  await stopAll();
  await echo?.close();
  await tlsEcho?.close();
});

describe('agent status: named states and last errors', () => {
  it('shows the version, each resource\'s named state, and the target checked at start', async () => {
    const s = await status(outletAgent);
    expect(s.version).toBe(WICKET_VERSION);
    const outlets = Object.fromEntries(s.outlets.map((o) => [o.name, o]));
    expect(outlets.svc!.state).toBe('registered');
    expect(outlets.svc!.lastError).toBeUndefined();
    // Checked when the node started: the refused TCP connect and the name mismatch are already there.
    expect(outlets.down!.state).toBe('target-unreachable');
    expect(outlets.down!.lastError!.code).toBe('WICKET_ERR_TARGET_UNREACHABLE');
    expect(outlets.down!.lastError!.message).toContain(`127.0.0.1:${closedPort}: ECONNREFUSED`);
    expectRecent(outlets.down!.lastError!.at);
    expect(outlets['wrong-name']!.state).toBe('target-unreachable');
    expect((await status(inletAgent)).inlets.map((i) => i.state)).toEqual(['listening', 'listening', 'listening']);
    // The start-up check warned in the log, by name of level.
    const warned = await outletNode.proc.waitForLog({ level: 'warn', outlet: 'down', code: 'WICKET_ERR_TARGET_UNREACHABLE' });
    expect(warned.msg).toMatch(/target does not answer/);
  });

  it('the human-readable status prints the state and the last error with its time', async () => {
    const result = await runAgent(outletAgent.home, ['status']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`^version {5}${WICKET_VERSION.replace(/\./g, '\\.')}$`, 'm'));
    expect(result.stdout).toMatch(/^ {2}down {2}target-unreachable {2}relay down to 127\.0\.0\.1:\d+/m);
    expect(result.stdout).toMatch(/^ {6}last error \d{4}-\d\d-\d\dT[\d:.]+Z {2}WICKET_ERR_TARGET_UNREACHABLE: 127\.0\.0\.1:\d+: ECONNREFUSED$/m);
  });

  it('a TLS name mismatch resets the app and names the expected name and every name the certificate has', async () => {
    const client = await connectTcp(inletNode.inlets['wrong-name']!);
    await client.write(Buffer.from('hello?')).catch(() => undefined);
    const outcome = await client.outcome();
    expect(outcome.ending).toBe('reset');
    const outlet = (await status(outletAgent)).outlets.find((o) => o.name === 'wrong-name')!;
    expect(outlet.state).toBe('target-unreachable');
    expect(outlet.lastError!.code).toBe('WICKET_ERR_TLS_TARGET');
    expect(outlet.lastError!.message).toBe(
      `${tlsEcho.address}: the certificate is not valid for impostor.test: it names CN=target.test, subjectAltName DNS:target.test (ERR_TLS_CERT_ALTNAME_INVALID)`,
    );
    // The inlet's channel itself is fine: the refusal was the target's, reported at the outlet.
    expect((await status(inletAgent)).inlets.find((i) => i.name === 'wrong-name')!.state).toBe('open');
  });

  it('a target that is down reaches the app as a TCP reset (ECONNRESET), not a clean end', async () => {
    const client = await connectTcp(inletNode.inlets.down!);
    await client.write(Buffer.from('anyone?')).catch(() => undefined);
    const outcome = await client.outcome();
    expect(outcome.ending).toBe('reset');
    expect(outcome.errorCode).toBe('ECONNRESET');
    expect(outcome.received.length).toBe(0);
  });

  it('a policy refusal logs the peer, its attributes and the policy at warn, and is both sides\' last error', async () => {
    const client = await connectTcp(strangerNode.inlets.svc!);
    await client.write(Buffer.from('let me in')).catch(() => undefined);
    expect((await client.outcome()).ending).toBe('reset');
    const logged = await outletNode.proc.waitForLog({ code: 'WICKET_ERR_POLICY_DENIED', peer: strangerAgent.identifier });
    expect(logged.level).toBe('warn');
    expect(logged.attributes).toEqual({ guest: 'true', team: 'red' });
    expect(logged.policy).toBe('svc-inlet');
    const outlet = (await status(outletAgent)).outlets.find((o) => o.name === 'svc')!;
    expect(outlet.state).toBe('registered');
    expect(outlet.lastError!.code).toBe('WICKET_ERR_POLICY_DENIED');
    expect(outlet.lastError!.message).toBe(`peer ${strangerAgent.identifier} with attributes [guest, team=red] does not satisfy the policy "svc-inlet"`);
    const inlet = (await status(strangerAgent)).inlets[0]!;
    expect(inlet.state).toBe('refused');
    expect(inlet.lastError!.code).toBe('WICKET_ERR_POLICY_DENIED');
    expectRecent(inlet.lastError!.at);
  });
});

describe('outlet create checks its target', () => {
  it('a healthy target: created, no warning', async () => {
    const r = await runAgent(outletAgent.home, ['outlet', 'create', '--to', echo.address, '--relay', 'made-ok', '--allow', 'svc-inlet']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/warning/);
  });

  it('a target that refuses: created all the same, with `warning: …` on stderr naming the target', async () => {
    const r = await runAgent(outletAgent.home, ['outlet', 'create', '--to', `127.0.0.1:${closedPort}`, '--relay', 'made-down', '--allow', 'svc-inlet', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const warning = `outlet made-down created, but its target check failed: WICKET_ERR_TARGET_UNREACHABLE: 127.0.0.1:${closedPort}: ECONNREFUSED`;
    expect(r.stderr.split('\n').filter((l) => l.startsWith('warning: '))).toEqual([`warning: ${warning}`]);
    expect(JSON.parse(r.stdout)).toMatchObject({ name: 'made-down', relay: 'made-down', warning });
    expect((await status(outletAgent)).outlets.find((o) => o.name === 'made-down')!.state).toBe('target-unreachable');
  });

  it('a TLS target whose certificate does not name the host: the warning lists the certificate\'s names', async () => {
    const r = await runAgent(outletAgent.home, ['outlet', 'create', '--to', tlsEcho.address, '--tls', '--tls-ca', ca.caCertPath, '--relay', 'made-tls', '--allow', 'svc-inlet']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(
      `warning: outlet made-tls created, but its target check failed: WICKET_ERR_TLS_TARGET: ${tlsEcho.address}: the certificate is not valid for 127.0.0.1: it names CN=target.test, subjectAltName DNS:target.test (ERR_TLS_CERT_ALTNAME_INVALID)`,
    );
  });
});

describe('a clean stop', () => {
  it('SIGTERM after traffic: exit 0, and nothing from the stop on carries an error code or a warning', async () => {
    const mark = inletNode.proc.stderrLines.length;
    const { code } = await inletNode.proc.kill('SIGTERM');
    expect(code).toBe(0);
    const lines = inletNode.proc.stderrLines.slice(mark).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => l.msg)).toEqual(expect.arrayContaining(['shutting down', 'left the relay', 'node stopped']));
    expect(lines.filter((l) => l.code !== undefined || l.level !== 'info')).toEqual([]);
  });
});

describe('relay TLS with a CA-signed certificate', () => {
  it('a relay URL the certificate does not name: the error names the URL host and every name the certificate has', async () => {
    const relayCa = await makeTestCa(tempDir('wicket-relay-ca-'), { serverNames: ['relay.test', 'relay-alt.test'] });
    // Tickets carry no pin for an operator's certificate: the agent checks chain and name as usual.
    const tlsRelay = await startRelayProcess({ extraArgs: ['--tls-cert', relayCa.certPath, '--tls-key', relayCa.keyPath] });
    expect(tlsRelay.url).toMatch(/^wss:\/\/127\.0\.0\.1:/);
    const home = tempDir('wicket-agent-');
    const r = await runAgent(home, ['enroll', '--ticket', tlsRelay.adminTicket!], { env: { NODE_EXTRA_CA_CERTS: relayCa.caCertPath } });
    expect(r.code).toBe(1);
    const line = r.stderr.split('\n').filter((l) => l.startsWith('error: ')).at(-1)!;
    expect(line).toContain('WICKET_ERR_RELAY_UNREACHABLE');
    expect(line).toContain(
      `the certificate is not valid for 127.0.0.1: it names CN=relay.test, subjectAltName DNS:relay.test, DNS:relay-alt.test (ERR_TLS_CERT_ALTNAME_INVALID); the relay URL must use one of those names`,
    );
    await tlsRelay.proc.kill('SIGTERM');
  });
});

