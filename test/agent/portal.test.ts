import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONTROL_MAX_LINE } from '../../protocol/limits.js';
import { connectTcp, sendThenFinish, type EchoServer, startEchoServer } from '../helpers/echo-server.js';
import { seededBytes } from '../helpers/seeded.js';
import {
  type AgentHome,
  enrollAgent,
  type NodeProcess,
  type RelayProcess,
  runAgent,
  runCommand,
  startNodeProcess,
  startRelayProcess,
  stopAll,
  tempDir,
} from '../../scripts/lib/local-processes.js';
import { makeTestCa } from '../../examples/test-ca.js';

// TCP portals with real processes: a relay (`relay start`), agent nodes (`agent node start`, each
// with its own WICKET_HOME, enrolled from tickets) and a TCP echo target, all on 127.0.0.1.
//
//   app ──TCP──▶ inlet node ══ Noise XX over relay circuits ══ outlet node ──TCP──▶ echo target
//
// One relay and one pair of long-lived nodes serve most tests (several inlets and outlets each,
// as node.json lists them); tests that kill or revoke something get agents of their own.

let relay: RelayProcess;
let echo: EchoServer;
let resetEcho: EchoServer;
let tlsEcho: EchoServer;
let outletAgent: AgentHome;
let inletAgent: AgentHome;
let strangerAgent: AgentHome;
let outletNode: NodeProcess;
let inletNode: NodeProcess;
let strangerNode: NodeProcess;

/** Relay names of outlets whose target connection is the point of the test. */
const TARGET_CASES = ['tls-ok', 'tls-wrong-name', 'tls-untrusted', 'target-down'];

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

beforeAll(async () => {
  relay = await startRelayProcess();
  const ca = await makeTestCa(tempDir('wicket-ca-'), { serverNames: ['target.test'] });
  [echo, resetEcho, tlsEcho] = await Promise.all([
    startEchoServer(),
    startEchoServer(),
    startEchoServer({ tls: { cert: readFileSync(ca.certPath), key: readFileSync(ca.keyPath) } }),
  ]);
  const closedPort = await freePort();
  [outletAgent, inletAgent, strangerAgent] = await Promise.all([
    enrollAgent(relay, { attributes: ['svc-outlet'], relayNames: ['svc', 'svc-reset', 'svc-cli', ...TARGET_CASES] }),
    enrollAgent(relay, { attributes: ['svc-inlet'] }),
    enrollAgent(relay, { attributes: ['guest'] }),
  ]);
  outletNode = await startNodeProcess(outletAgent, {
    outlets: [
      { to: echo.address, relay: 'svc', allow: 'svc-inlet' },
      { name: 'resetting', to: resetEcho.address, relay: 'svc-reset', allow: 'svc-inlet' },
      // TLS to the target, verified against the test CA for the name target.test.
      { to: tlsEcho.address, tls: true, tlsCa: ca.caCertPath, tlsServername: 'target.test', relay: 'tls-ok', allow: 'svc-inlet' },
      { to: tlsEcho.address, tls: true, tlsCa: ca.caCertPath, tlsServername: 'impostor.test', relay: 'tls-wrong-name', allow: 'svc-inlet' },
      { to: tlsEcho.address, tls: true, relay: 'tls-untrusted', allow: 'svc-inlet' },
      { to: `127.0.0.1:${closedPort}`, relay: 'target-down', allow: 'svc-inlet' },
    ],
  });
  [inletNode, strangerNode] = await Promise.all([
    startNodeProcess(inletAgent, {
      inlets: [
        { from: '127.0.0.1:0', via: 'svc', allow: 'svc-outlet' },
        { name: 'resetting', from: '127.0.0.1:0', via: 'svc-reset', allow: 'svc-outlet' },
        // The inlet decides who may serve it: this one wants an outlet nobody is.
        { name: 'picky', from: '127.0.0.1:0', via: 'svc', allow: 'premium-outlet' },
        ...TARGET_CASES.map((name) => ({ from: '127.0.0.1:0', via: name, allow: 'svc-outlet' })),
      ],
    }),
    startNodeProcess(strangerAgent, { inlets: [{ from: '127.0.0.1:0', via: 'svc', allow: 'svc-outlet' }] }),
  ]);
}, 180_000);

afterAll(async () => {
  await stopAll();
  await echo?.close();
  await resetEcho?.close();
  await tlsEcho?.close();
});

/** A port nothing listens on (bound, then released). */
async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', () => resolve()));
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

describe('portal data path', () => {
  it('round-trips 1 MiB of seeded random bytes intact and ends with a clean FIN', async () => {
    const data = seededBytes(0xc0ffee, 1024 * 1024);
    const outcome = await sendThenFinish(inletNode.inlets.svc!, data, 30_000);
    expect(outcome.ending).toBe('end');
    expect(outcome.received.length).toBe(data.length);
    expect(sha256(outcome.received)).toBe(sha256(data));
  });

  it('carries many connections as streams on one channel, and status counts their bytes', async () => {
    const clients = await Promise.all(Array.from({ length: 5 }, () => connectTcp(inletNode.inlets.svc!)));
    await Promise.all(clients.map((c, i) => c.write(seededBytes(i, 1000 + i))));
    await Promise.all(clients.map((c, i) => c.waitForBytes(1000 + i)));
    const result = await runAgent(inletAgent.home, ['status', '--json']);
    expect(result.code).toBe(0);
    const status = JSON.parse(result.stdout) as {
      identifier: string;
      relay: { connected: boolean };
      inlets: { name: string; channel: string; streams: number }[];
      channels: { resource: string; state: string }[];
      streams: { resource: string; bytesSent: number; bytesReceived: number }[];
    };
    expect(status.identifier).toBe(inletAgent.identifier);
    expect(status.relay.connected).toBe(true);
    const svc = status.inlets.find((i) => i.name === 'svc')!;
    expect(svc.channel).toBe('open');
    expect(svc.streams).toBe(5);
    // One channel per inlet–outlet pair, whatever the number of connections.
    expect(status.channels.filter((c) => c.resource === 'svc' && c.state === 'open')).toHaveLength(1);
    const sent = status.streams.filter((s) => s.resource === 'svc').map((s) => s.bytesSent).sort((a, b) => a - b);
    expect(sent).toEqual([1000, 1001, 1002, 1003, 1004]);
    for (const c of clients) c.end();
    for (const c of clients) expect((await c.outcome()).ending).toBe('end');
  });

  it('a target that dies mid-stream reaches the app as a reset (ECONNRESET), not a clean end', async () => {
    const client = await connectTcp(inletNode.inlets.resetting!);
    await client.write(Buffer.from('half a response'));
    await client.waitForBytes(15);
    resetEcho.resetAll();
    const outcome = await client.outcome();
    expect(outcome.ending).toBe('reset');
    expect(outcome.errorCode).toBe('ECONNRESET');
  });
});

describe('outlet targets', () => {
  it('opens TLS to the target, verifying its certificate against --tls-ca for --tls-servername', async () => {
    const outcome = await sendThenFinish(inletNode.inlets['tls-ok']!, Buffer.from('over TLS to the target'));
    expect(outcome.received.toString()).toBe('over TLS to the target');
    expect(outcome.ending).toBe('end');
  });

  it.each([
    ['tls-wrong-name', 'a certificate for another name', 'WICKET_ERR_TLS_TARGET'],
    ['tls-untrusted', 'a certificate no trusted CA signed', 'WICKET_ERR_TLS_TARGET'],
    ['target-down', 'a target that refuses the connection', 'WICKET_ERR_TARGET_UNREACHABLE'],
  ])('%s: %s resets the app connection and logs %s', async (name, _what, code) => {
    const mark = outletNode.proc.stderrLines.length;
    const client = await connectTcp(inletNode.inlets[name]!);
    await client.write(Buffer.from('hello?')).catch(() => undefined);
    const outcome = await client.outcome();
    expect(outcome.ending).toBe('reset');
    expect(outcome.received.length).toBe(0);
    const logged = await outletNode.proc.waitForLine((l) => l.includes(`"code":"${code}"`) && l.includes(`"relayName":"${name}"`), { stream: 'stderr', from: mark });
    expect(logged).toMatch(/target connection failed/);
  });
});

describe('access policies', () => {
  it('the outlet refuses an identity its policy does not allow: app reset, WICKET_ERR_POLICY_DENIED logged', async () => {
    const client = await connectTcp(strangerNode.inlets.svc!);
    await client.write(Buffer.from('let me in')).catch(() => undefined);
    const outcome = await client.outcome();
    expect(outcome.ending).toBe('reset');
    expect(outcome.received.length).toBe(0);
    const logged = await outletNode.proc.waitForLog({ code: 'WICKET_ERR_POLICY_DENIED', peer: strangerAgent.identifier });
    expect(logged.msg).toMatch(/policy/);
    expect(echo.connections.size).toBe(0);
  });

  it('the inlet refuses an outlet its policy does not allow: app reset, WICKET_ERR_POLICY_DENIED logged', async () => {
    const client = await connectTcp(inletNode.inlets.picky!);
    await client.write(Buffer.from('secret request')).catch(() => undefined);
    const outcome = await client.outcome();
    expect(outcome.ending).toBe('reset');
    expect(outcome.received.length).toBe(0);
    await inletNode.proc.waitForLog({ code: 'WICKET_ERR_POLICY_DENIED', peer: outletAgent.identifier });
  });
});

describe('control socket', () => {
  async function exchange(lines: string[], expectReplies: number): Promise<{ replies: Record<string, unknown>[]; closed: boolean }> {
    const socket = connect(join(inletAgent.home, 'control.sock'));
    const replies: Record<string, unknown>[] = [];
    let buffered = '';
    let closed = false;
    socket.setEncoding('utf8');
    socket.on('data', (t: string) => {
      buffered += t;
      let nl;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        replies.push(JSON.parse(buffered.slice(0, nl)) as Record<string, unknown>);
        buffered = buffered.slice(nl + 1);
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      closed = true;
    });
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    for (const line of lines) socket.write(line);
    const deadline = Date.now() + 10_000;
    while (replies.length < expectReplies && !closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 100));
    socket.destroy();
    return { replies, closed };
  }

  it('is a Unix socket only the agent user can use (mode 0600)', () => {
    const mode = statSync(join(inletAgent.home, 'control.sock')).mode & 0o777;
    expect(mode).toBe(0o600);
  });

  it('answers garbage, non-objects and unknown ops with WICKET_ERR_CONTROL_REQUEST and keeps serving', async () => {
    const { replies } = await exchange(
      ['this is not json\n', '[1,2,3]\n', '{"id":3,"op":"shutdown.now"}\n', '{"id":4,"op":"status","args":[]}\n', '{"id":5,"op":"status"}\n'],
      5,
    );
    expect(replies).toHaveLength(5);
    for (const r of replies.slice(0, 4)) expect((r.error as { code: string }).code).toBe('WICKET_ERR_CONTROL_REQUEST');
    expect(replies[2]!.id).toBe(3);
    expect((replies[4]!.result as { identifier: string }).identifier).toBe(inletAgent.identifier);
  });

  it('refuses a line over the cap and drops that connection, node alive', async () => {
    const { replies, closed } = await exchange(['{"id":1,"op":"status","args":{"pad":"' + 'A'.repeat(CONTROL_MAX_LINE + 10)], 1);
    expect(closed).toBe(true);
    expect((replies[0]!.error as { code: string }).code).toBe('WICKET_ERR_CONTROL_REQUEST');
    const after = await runAgent(inletAgent.home, ['status', '--json']);
    expect(after.code).toBe(0);
  });

  it('refuses hostile resource arguments with a code naming the field', async () => {
    const { replies } = await exchange(
      [
        JSON.stringify({ id: 1, op: 'inlet.create', args: { from: '127.0.0.1:0', via: 'svc', allow: 'a and (' } }) + '\n',
        JSON.stringify({ id: 2, op: 'outlet.create', args: { to: 'no-port', relay: 'svc', allow: 'x' } }) + '\n',
        JSON.stringify({ id: 3, op: 'inlet.delete', args: { name: '../../etc' } }) + '\n',
        JSON.stringify({ id: 4, op: 'inlet.create', args: { from: '127.0.0.1:0', via: 'svc', allow: 'x', evil: true } }) + '\n',
      ],
      4,
    );
    expect(replies.map((r) => (r.error as { code: string }).code)).toEqual(['WICKET_ERR_ARGUMENT', 'WICKET_ERR_ARGUMENT', 'WICKET_ERR_ARGUMENT', 'WICKET_ERR_ARGUMENT']);
    expect((replies[0]!.error as { message: string }).message).toMatch(/allow/);
    expect((replies[1]!.error as { message: string }).message).toMatch(/outlet\.to/);
    expect((replies[3]!.error as { message: string }).message).toMatch(/evil/);
  });
});

describe('resource commands through the control socket', () => {
  it('inlet create on port 0 prints the bound address; list and delete work; the new inlet carries traffic', async () => {
    const created = await runAgent(inletAgent.home, ['inlet', 'create', '--from', '127.0.0.1:0', '--via', 'svc', '--allow', 'svc-outlet', '--name', 'extra']);
    expect(created.code).toBe(0);
    const address = created.stdout.trim();
    expect(address).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(address).not.toBe('127.0.0.1:0');

    const client = await connectTcp(address);
    await client.write(Buffer.from('via the CLI-made inlet'));
    client.end();
    expect((await client.outcome()).received.toString()).toBe('via the CLI-made inlet');

    const list = await runAgent(inletAgent.home, ['inlet', 'list', '--json']);
    const names = (JSON.parse(list.stdout) as { inlets: { name: string; address: string }[] }).inlets.map((i) => i.name);
    expect(names).toContain('extra');

    const again = await runAgent(inletAgent.home, ['inlet', 'create', '--from', '127.0.0.1:0', '--via', 'svc', '--allow', 'svc-outlet', '--name', 'extra']);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/WICKET_ERR_RESOURCE_EXISTS/);

    const deleted = await runAgent(inletAgent.home, ['inlet', 'delete', 'extra']);
    expect(deleted.code).toBe(0);
    await expect(connectTcp(address)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    const unknown = await runAgent(inletAgent.home, ['inlet', 'delete', 'extra']);
    expect(unknown.stderr).toMatch(/WICKET_ERR_RESOURCE_UNKNOWN/);
  });

  it('an inlet on a port already in use fails with WICKET_ERR_ADDRESS_IN_USE', async () => {
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', () => resolve()));
    try {
      const port = (busy.address() as AddressInfo).port;
      const result = await runAgent(inletAgent.home, ['inlet', 'create', '--from', `127.0.0.1:${port}`, '--via', 'svc', '--allow', 'svc-outlet', '--name', 'busy']);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/WICKET_ERR_ADDRESS_IN_USE/);
    } finally {
      busy.close();
    }
  });

  it('outlet create registers a relay name the ticket allows and refuses one it does not', async () => {
    const extraEcho = await startEchoServer();
    try {
      const created = await runAgent(outletAgent.home, ['outlet', 'create', '--to', extraEcho.address, '--relay', 'svc-cli', '--allow', 'svc-inlet', '--json']);
      expect(created.code).toBe(0);
      expect(JSON.parse(created.stdout)).toEqual({ name: 'svc-cli', relay: 'svc-cli' });
      const listed = JSON.parse((await runAgent(outletAgent.home, ['outlet', 'list', '--json'])).stdout) as { outlets: { name: string; to: string }[] };
      expect(listed.outlets.find((o) => o.name === 'svc-cli')?.to).toBe(extraEcho.address);

      const inlet = await runAgent(inletAgent.home, ['inlet', 'create', '--from', '127.0.0.1:0', '--via', 'svc-cli', '--allow', 'svc-outlet', '--json']);
      const address = (JSON.parse(inlet.stdout) as { address: string }).address;
      const client = await connectTcp(address);
      await client.write(Buffer.from('new outlet'));
      client.end();
      expect((await client.outcome()).received.toString()).toBe('new outlet');
      // Two: the check `outlet create` makes of its target, then the app's connection.
      expect(extraEcho.accepted()).toBe(2);

      const hijack = await runAgent(outletAgent.home, ['outlet', 'create', '--to', extraEcho.address, '--relay', 'not-mine', '--allow', 'svc-inlet']);
      expect(hijack.code).toBe(1);
      expect(hijack.stderr).toMatch(/WICKET_ERR_RELAY_NAME_FORBIDDEN/);

      expect((await runAgent(outletAgent.home, ['outlet', 'delete', 'svc-cli'])).code).toBe(0);
      await runAgent(inletAgent.home, ['inlet', 'delete', 'svc-cli']);
    } finally {
      await extraEcho.close();
    }
  });

  it('checks arguments before contacting the node, and says so when no node runs', async () => {
    const badPort = await runAgent(inletAgent.home, ['inlet', 'create', '--from', '127.0.0.1:99999', '--via', 'svc', '--allow', 'x']);
    expect(badPort.code).toBe(2);
    expect(badPort.stderr).toMatch(/WICKET_ERR_ARGUMENT.*--from/);
    const badPolicy = await runAgent(inletAgent.home, ['outlet', 'create', '--to', '127.0.0.1:1', '--relay', 'svc', '--allow', 'a or or b']);
    expect(badPolicy.code).toBe(2);
    expect(badPolicy.stderr).toMatch(/WICKET_ERR_ARGUMENT.*--allow/);
    // A home with no running node: valid arguments reach for the control socket and fail clearly.
    const noNode = await runAgent(tempDir('wicket-empty-'), ['inlet', 'list']);
    expect(noNode.code).toBe(1);
    expect(noNode.stderr).toMatch(/WICKET_ERR_CONTROL/);
  });
});

describe('node configuration', () => {
  it('a hostile node.json is refused with WICKET_ERR_CONFIG naming the field', async () => {
    const { writeFileSync } = await import('node:fs');
    const file = join(inletAgent.home, 'bad-node.json');
    writeFileSync(file, JSON.stringify({ inlets: [{ from: '127.0.0.1:0', via: 'svc', allow: 'x', tlsCA: 'typo' }] }));
    const result = await runAgent(inletAgent.home, ['node', 'start', '--config', file]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/WICKET_ERR_CONFIG: inlets\[0\]\.tlsCA/);
  });

  it('a second node on the same home is refused (the control socket answers)', async () => {
    const result = await runAgent(inletAgent.home, ['node', 'start']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/WICKET_ERR_CONTROL.*already running/);
  });
});

describe('failures mid-stream', () => {
  it('an outlet process killed mid-stream resets the app connection', async () => {
    const doomedEcho = await startEchoServer();
    try {
      const agent = await enrollAgent(relay, { attributes: ['svc-outlet'], relayNames: ['doomed'] });
      const doomed = await startNodeProcess(agent, { outlets: [{ to: doomedEcho.address, relay: 'doomed', allow: 'svc-inlet' }] });
      const inlet = await runAgent(inletAgent.home, ['inlet', 'create', '--from', '127.0.0.1:0', '--via', 'doomed', '--allow', 'svc-outlet']);
      const client = await connectTcp(inlet.stdout.trim());
      await client.write(Buffer.from('before the crash'));
      await client.waitForBytes(16);
      await doomed.proc.kill('SIGKILL');
      const outcome = await client.outcome();
      expect(outcome.ending).toBe('reset');
      expect(outcome.errorCode).toBe('ECONNRESET');
      await runAgent(inletAgent.home, ['inlet', 'delete', 'doomed']);
    } finally {
      await doomedEcho.close();
    }
  });

  it('revoking the inlet identity resets its live, idle connection and refuses new ones', async () => {
    const agent = await enrollAgent(relay, { attributes: ['svc-inlet'] });
    const node = await startNodeProcess(agent, { inlets: [{ from: '127.0.0.1:0', via: 'svc', allow: 'svc-outlet' }] });
    const client = await connectTcp(node.inlets.svc!);
    await client.write(Buffer.from('alive'));
    await client.waitForBytes(5);
    const started = Date.now();
    const revoke = await runCommand('relay', ['member', 'revoke', '--data', relay.dataDir, agent.identifier]);
    expect(revoke.code).toBe(0);
    const outcome = await client.outcome();
    const elapsed = Date.now() - started;
    console.log(`revocation: revoke command to app reset took ${elapsed} ms (includes the revoke process start)`);
    expect(outcome.ending).toBe('reset');
    // Within a second of the relay's revoke (test/relay/revocation.test.ts asserts that part),
    // and within 1.5 s of the command, its process start included.
    expect(elapsed).toBeLessThan(1_500);
    // The outlet closed its channel with the revoked peer too.
    await outletNode.proc.waitForLog({ code: 'WICKET_ERR_REVOKED', peer: agent.identifier });
    // And a new connection cannot get through: the relay refuses the revoked identity, so the
    // node stops for good (exit 3, EXIT_REVOKED: WICKET_ERR_REVOKED) and its port refuses connections.
    const exit = await node.proc.exited;
    expect(exit.code).toBe(3);
    expect(node.proc.stderrLines.join('\n')).toMatch(/WICKET_ERR_REVOKED/);
    await expect(connectTcp(node.inlets.svc!)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });
});
