import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect as netConnect, type Socket } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WICKET_VERSION } from '../../protocol/version.js';
import {
  enrollAgent,
  runAgent,
  runCommand,
  startNodeProcess,
  startRelayProcess,
  stopAll,
  tempDir,
  type NodeProcess,
  type RelayProcess,
} from '../../scripts/lib/local-processes.js';
import { startEchoServer, type EchoServer } from '../helpers/echo-server.js';
import { parseExposition, samplesOf, valueOf, type Exposition } from '../helpers/prometheus-text.js';

// Metrics and health from real processes: a relay (plain, then TLS) with an outlet and an inlet
// node started with --metrics, traffic through the inlet, then the relay's port and both agents'
// metrics addresses scraped with node:http(s) and the exposition parsed line by line. Then the
// failures: a refused handshake, a revocation, hostile plain HTTP, /readyz saying 503 and why
// (an outlet name the relay refused, the relay down), and --metrics-from on the command line.

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** GET (or `method`) with node's own client; https trusts the relay's self-signed certificate (`ca`). */
function get(url: string, o: { method?: string; ca?: Buffer } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const options = { method: o.method ?? 'GET', timeout: 5_000, ...(o.ca === undefined ? {} : { ca: o.ca }) };
    const req = (url.startsWith('https:') ? httpsRequest : httpRequest)(url, options, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${url}: no answer within 5 s`)));
    req.on('error', reject);
    req.end();
  });
}

/** Sends raw bytes on a new connection (TLS when `tls`); resolves with what came back before the close. */
function raw(port: number, bytes: Buffer | string, tls: boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const onOpen = () => socket.write(bytes);
    const socket: Socket = tls ? tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false }, onOpen) : netConnect(port, '127.0.0.1', onOpen);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('the relay kept a hostile connection open for 10 s'));
    }, 10_000);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
  });
}

/** One app connection through the inlet: sends `payload`, reads the echo; the socket stays open. */
async function echoThrough(inletAddress: string, payload: Buffer): Promise<Socket> {
  const [host, port] = inletAddress.split(':');
  const socket = netConnect(Number(port), host!);
  const received: Buffer[] = [];
  let length = 0;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`echo: ${length} of ${payload.length} bytes within 10 s`)), 10_000);
    socket.on('error', reject);
    socket.on('data', (chunk: Buffer) => {
      received.push(chunk);
      length += chunk.length;
      if (length >= payload.length) {
        clearTimeout(timer);
        resolve();
      }
    });
    socket.write(payload);
  });
  expect(Buffer.concat(received).equals(payload)).toBe(true);
  return socket;
}

/** Polls `check` every 100 ms until it returns true, for at most `timeoutMs`. */
async function eventually(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const portOf = (relay: RelayProcess): number => Number(new URL(relay.url).port);

/** The node's --metrics address (it listens on port 0 here), as `agent status --json` reports it. */
const metricsAddresses = new Map<NodeProcess, string>();
async function metricsAddressOf(node: NodeProcess): Promise<string> {
  let address = metricsAddresses.get(node);
  if (address === undefined) {
    const status = await runAgent(node.home, ['status', '--json']);
    expect(status.code, status.stderr).toBe(0);
    address = String((JSON.parse(status.stdout) as { metrics?: string }).metrics);
    expect(address).toMatch(/^127\.0\.0\.1:\d+$/);
    metricsAddresses.set(node, address);
  }
  return address;
}

const agentMetrics = async (node: NodeProcess): Promise<Exposition> => {
  const answer = await get(`http://${await metricsAddressOf(node)}/metrics`);
  expect(answer.status).toBe(200);
  return parseExposition(answer.body);
};

function expectBuildInfo(metrics: Exposition): void {
  expect(metrics.families.get('wicket_build_info')?.type).toBe('gauge');
  expect(valueOf(metrics, 'wicket_build_info', { version: WICKET_VERSION })).toBe(1);
  expect(valueOf(metrics, 'process_resident_memory_bytes')).toBeGreaterThan(0);
}

/** Every wicket_ family has its HELP, and counters (only they) end in _total. */
function expectWellFormed(metrics: Exposition): void {
  const ours = [...metrics.families.values()].filter((f) => f.name.startsWith('wicket_'));
  expect(ours.length).toBeGreaterThan(5);
  for (const family of ours) {
    expect(family.help, family.name).toBeTruthy();
    expect(family.type === 'counter', family.name).toBe(family.name.endsWith('_total'));
  }
}

afterAll(() => stopAll());

describe.each([
  { scheme: 'ws', relayArgs: [] as string[] },
  { scheme: 'wss', relayArgs: ['--tls'] },
])('a relay over $scheme and two agents with --metrics', ({ relayArgs }) => {
  const payload = randomBytes(300 * 1024);
  let echo: EchoServer;
  let relay: RelayProcess;
  let outlet: NodeProcess;
  let inlet: NodeProcess;
  let ca: Buffer | undefined;
  let base: string;
  const relayMetrics = async (): Promise<Exposition> => {
    const answer = await get(`${base}/metrics`, ca === undefined ? {} : { ca });
    expect(answer.status).toBe(200);
    expect(answer.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    return parseExposition(answer.body);
  };

  beforeAll(async () => {
    echo = await startEchoServer();
    relay = await startRelayProcess({ extraArgs: relayArgs });
    const tls = relay.url.startsWith('wss:');
    ca = tls ? readFileSync(join(relay.dataDir, 'tls', 'cert.pem')) : undefined;
    base = relay.url.replace(/^ws/, 'http');
    const outletHome = await enrollAgent(relay, { attributes: ['svc-outlet'], relayNames: ['svc'] });
    const inletHome = await enrollAgent(relay, { attributes: ['svc-inlet'] });
    outlet = await startNodeProcess(outletHome, { outlets: [{ name: 'svc', to: echo.address, relay: 'svc', allow: 'svc-inlet' }] }, { args: ['--metrics', '127.0.0.1:0'] });
    inlet = await startNodeProcess(
      inletHome,
      {
        inlets: [
          { name: 'svc', from: '127.0.0.1:0', via: 'svc', allow: 'svc-outlet' },
          // Refuses every outlet: its handshakes fail with WICKET_ERR_POLICY_DENIED.
          { name: 'refusing', from: '127.0.0.1:0', via: 'svc', allow: 'no-outlet-has-this' },
        ],
      },
      { args: ['--metrics', '127.0.0.1:0'] },
    );
  }, 60_000);

  afterAll(async () => {
    await Promise.all([inlet?.proc.kill(), outlet?.proc.kill(), relay?.proc.kill()]);
    await echo?.close();
  });

  it('relay: agents, circuits, bytes and frames forwarded, logins and enrollments by outcome, the build, the process', async () => {
    const app = await echoThrough(inlet.inlets.svc!, payload);
    try {
      const metrics = await relayMetrics();
      expectWellFormed(metrics);
      expectBuildInfo(metrics);
      expect(valueOf(metrics, 'wicket_relay_agents_connected')).toBe(2);
      expect(valueOf(metrics, 'wicket_relay_circuits_open')).toBe(1);
      expect(valueOf(metrics, 'wicket_relay_names_served')).toBe(1);
      // Both directions, each byte once, plus frame headers and the handshake.
      expect(valueOf(metrics, 'wicket_relay_forwarded_bytes_total')).toBeGreaterThanOrEqual(2 * payload.length);
      expect(valueOf(metrics, 'wicket_relay_forwarded_frames_total')).toBeGreaterThanOrEqual((2 * payload.length) / 65_536);
      expect(valueOf(metrics, 'wicket_relay_handshakes_total', { outcome: 'ok' })).toBe(2);
      expect(valueOf(metrics, 'wicket_relay_enrollments_total', { outcome: 'ok' })).toBe(2);
      expect(samplesOf(metrics, 'wicket_relay_dropped_frames_total').map((s) => s.labels.reason).sort()).toEqual(
        ['before_auth', 'connection_closed', 'destination_overloaded', 'not_circuit_member', 'unknown_circuit'],
      );
      expect(samplesOf(metrics, 'wicket_relay_backpressure_pauses_total').map((s) => s.labels.cause).sort()).toEqual(['destination_full', 'own_queue']);
      expect(metrics.families.get('wicket_relay_agents_connected')?.type).toBe('gauge');
    } finally {
      app.destroy();
    }
  });

  it('agents: relay state, channels, streams and bytes by resource (counted on after the stream closes), ready', async () => {
    const app = await echoThrough(inlet.inlets.svc!, payload);
    const [inletSide, outletSide] = [await agentMetrics(inlet), await agentMetrics(outlet)];
    for (const metrics of [inletSide, outletSide]) {
      expectWellFormed(metrics);
      expectBuildInfo(metrics);
      const states = samplesOf(metrics, 'wicket_agent_relay_connection_state');
      expect(states.map((s) => s.labels.state).sort()).toEqual(['authenticating', 'backing-off', 'connected', 'dialing', 'fatal', 'idle', 'stopped']);
      expect(states.filter((s) => s.value === 1).map((s) => s.labels.state)).toEqual(['connected']);
      expect(valueOf(metrics, 'wicket_agent_ready')).toBe(1);
      expect(valueOf(metrics, 'wicket_agent_relay_reconnects_total')).toBe(0);
    }
    const inletSvc = { kind: 'inlet', resource: 'svc' };
    const outletSvc = { kind: 'outlet', resource: 'svc' };
    // This test's stream is open; the previous test's closed (and is still counted).
    expect(valueOf(inletSide, 'wicket_agent_streams_open', inletSvc)).toBe(1);
    expect(valueOf(inletSide, 'wicket_agent_streams_open', { kind: 'inlet', resource: 'refusing' })).toBe(0);
    expect(valueOf(inletSide, 'wicket_agent_channels_open', inletSvc)).toBe(1);
    expect(valueOf(inletSide, 'wicket_agent_streams_total', inletSvc)).toBe(2);
    expect(valueOf(inletSide, 'wicket_agent_sent_bytes_total', inletSvc)).toBe(2 * payload.length);
    expect(valueOf(inletSide, 'wicket_agent_received_bytes_total', inletSvc)).toBe(2 * payload.length);
    await eventually('the outlet bridged the second stream', async () => valueOf(await agentMetrics(outlet), 'wicket_agent_streams_open', outletSvc) === 1);
    expect(valueOf(outletSide, 'wicket_agent_channels_open', outletSvc)).toBe(1);
    expect(valueOf(outletSide, 'wicket_agent_received_bytes_total', outletSvc)).toBe(2 * payload.length);
    expect(valueOf(outletSide, 'wicket_agent_sent_bytes_total', outletSvc)).toBe(2 * payload.length);
    app.destroy();
    await eventually('the inlet closed the stream', async () => valueOf(await agentMetrics(inlet), 'wicket_agent_streams_open', inletSvc) === 0);
    expect(valueOf(await agentMetrics(inlet), 'wicket_agent_sent_bytes_total', inletSvc)).toBe(2 * payload.length);
    for (const node of [inlet, outlet]) {
      const address = await metricsAddressOf(node);
      expect(await get(`http://${address}/readyz`)).toMatchObject({ status: 200, body: 'ready\n' });
      expect(await get(`http://${address}/healthz`)).toMatchObject({ status: 200, body: 'ok\n' });
    }
  });

  it('a refused handshake is counted by its code with the time it was last seen; a revocation applied is counted', async () => {
    const before = Date.now() / 1000;
    const app = netConnect(Number(inlet.inlets.refusing!.split(':')[1]), '127.0.0.1');
    app.on('error', () => undefined);
    await new Promise((resolve) => app.once('close', resolve));
    const metrics = await agentMetrics(inlet);
    expect(valueOf(metrics, 'wicket_agent_handshake_failures_total', { code: 'WICKET_ERR_POLICY_DENIED' })).toBeGreaterThanOrEqual(1);
    const seen = valueOf(metrics, 'wicket_agent_last_error_timestamp_seconds', { code: 'WICKET_ERR_POLICY_DENIED' });
    expect(seen).toBeGreaterThanOrEqual(before - 1);
    expect(seen).toBeLessThanOrEqual(Date.now() / 1000 + 1);

    const leaver = await enrollAgent(relay, { attributes: ['leaver'] });
    const revoked = await runCommand('relay', ['member', 'revoke', leaver.identifier, '--data', relay.dataDir]);
    expect(revoked.code, revoked.stderr).toBe(0);
    await eventually('the relay applied the revocation', async () => valueOf(await relayMetrics(), 'wicket_relay_revocations_applied_total', { kind: 'revoke' }) === 1);
    expect(valueOf(await relayMetrics(), 'wicket_relay_enrollments_total', { outcome: 'ok' })).toBe(3);
  });

  it('plain routes: /healthz, /readyz, 404 listing the routes, 405, 426 on /; hostile requests leave the relay serving', async () => {
    const options = ca === undefined ? {} : { ca };
    expect(await get(`${base}/healthz`, options)).toMatchObject({ status: 200, body: 'ok\n' });
    expect(await get(`${base}/readyz`, options)).toMatchObject({ status: 200, body: 'ready\n' });
    const missing = await get(`${base}/nope`, options);
    expect(missing.status).toBe(404);
    expect(missing.body).toMatch(/\/healthz.*\/readyz.*\/metrics/);
    expect(await get(`${base}/metrics`, { ...options, method: 'POST' })).toMatchObject({ status: 405, headers: { allow: 'GET, HEAD' } });
    expect((await get(`${base}/metrics`, { ...options, method: 'HEAD' })).status).toBe(200);
    expect((await get(`${base}/`, options)).status).toBe(426);

    const tls = ca !== undefined;
    expect(await raw(portOf(relay), 'GARBAGE \x00\x01 NOT HTTP\r\n\r\n', tls)).toMatch(/^HTTP\/1\.1 400/);
    expect(await raw(portOf(relay), `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`, tls)).toMatch(/^HTTP\/1\.1 431/);
    expect(await raw(portOf(relay), `GET /${'x'.repeat(100_000)} HTTP/1.1\r\nHost: x\r\n\r\n`, tls)).toMatch(/^HTTP\/1\.1 (414|431)/);
    expect(await raw(portOf(relay), Buffer.concat([Buffer.from([0x16, 0xfe]), randomBytes(8_190)]), tls)).toMatch(/^HTTP\/1\.1 400/);

    expect(relay.proc.alive).toBe(true);
    const app = await echoThrough(inlet.inlets.svc!, payload.subarray(0, 10_000));
    app.destroy();
    expect(valueOf(await relayMetrics(), 'wicket_relay_agents_connected')).toBe(2);
  });
});

describe('a relay started with --metrics-from 10.0.0.0/8; /readyz on agents that are not ready', () => {
  let relay: RelayProcess;
  let plain: NodeProcess;
  let refused: NodeProcess;

  beforeAll(async () => {
    relay = await startRelayProcess({ extraArgs: ['--metrics-from', '10.0.0.0/8'] });
    const plainHome = await enrollAgent(relay, { attributes: ['app'] });
    // Its ticket grants relay name "granted" only: "wanted" is refused at registration.
    const refusedHome = await enrollAgent(relay, { attributes: ['svc'], relayNames: ['granted'] });
    plain = await startNodeProcess(plainHome, { inlets: [{ name: 'app', from: '127.0.0.1:0', via: 'elsewhere', allow: 'svc' }] }, { args: ['--metrics', '127.0.0.1:0'] });
    refused = await startNodeProcess(refusedHome, { outlets: [{ name: 'svc', to: '127.0.0.1:9', relay: 'wanted', allow: 'app' }] }, { args: ['--metrics', '127.0.0.1:0'] });
  }, 60_000);

  it('answers /metrics from loopback with 403 saying how to allow it, and /healthz as usual', async () => {
    const base = relay.url.replace('ws:', 'http:');
    const refusal = await get(`${base}/metrics`);
    expect(refusal.status).toBe(403);
    expect(refusal.body).toMatch(/10\.0\.0\.0\/8.*--metrics-from/);
    expect((await get(`${base}/healthz`)).status).toBe(200);
  });

  it('an agent whose outlet name the relay refused is not ready, and says which', async () => {
    const answer = await get(`http://${await metricsAddressOf(refused)}/readyz`);
    expect(answer.status).toBe(503);
    expect(answer.body).toBe('not ready: outlet svc: relay name wanted not registered\n');
    expect(valueOf(await agentMetrics(refused), 'wicket_agent_ready')).toBe(0);
    expect(await get(`http://${await metricsAddressOf(plain)}/readyz`)).toMatchObject({ status: 200 });
  });

  it('with the relay down an agent is not ready (state, disconnects and last error say why); back up, it counts a reconnect', async () => {
    const address = await metricsAddressOf(plain);
    const { dataDir, listen } = relay;
    await relay.proc.kill();
    await eventually('the agent noticed', async () => (await get(`http://${address}/readyz`)).status === 503);
    expect((await get(`http://${address}/readyz`)).body).toMatch(/^not ready: relay connection (dialing|backing-off|authenticating)/);
    const down = await agentMetrics(plain);
    expect(valueOf(down, 'wicket_agent_relay_connection_state', { state: 'connected' })).toBe(0);
    expect(samplesOf(down, 'wicket_agent_relay_disconnects_total').reduce((sum, s) => sum + s.value, 0)).toBe(1);
    expect(samplesOf(down, 'wicket_agent_last_error_timestamp_seconds').length).toBeGreaterThanOrEqual(1);

    relay = await startRelayProcess({ dataDir, listen, extraArgs: ['--metrics-from', '10.0.0.0/8'] });
    await eventually('the agent reconnected', async () => (await get(`http://${address}/readyz`)).status === 200, 20_000);
    const up = await agentMetrics(plain);
    expect(valueOf(up, 'wicket_agent_relay_reconnects_total')).toBe(1);
    expect(valueOf(up, 'wicket_agent_relay_connection_state', { state: 'connected' })).toBe(1);
  }, 40_000);

  it.each([['10.0.0.0/33'], ['10.0.0.0/8,nonsense'], ['']])('relay start --metrics-from %j exits 2 with WICKET_ERR_ARGUMENT naming the option', async (value) => {
    const result = await runCommand('relay', ['start', '--listen', '127.0.0.1:0', '--data', tempDir('wicket-relay-'), '--metrics-from', value]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/WICKET_ERR_ARGUMENT.*--metrics-from/);
  });
});
