import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { controlRequest } from '../../agent/control-client.js';
import { NODE_CONFIG_MAX_BYTES } from '../../protocol/limits.js';
import { type EchoServer, sendThenFinish, startEchoServer } from '../helpers/echo-server.js';
import {
  type AgentHome,
  type CommandWrap,
  enrollAgent,
  type NodeProcess,
  type RelayProcess,
  runAgent,
  startNodeProcess,
  startRelayProcess,
  stopAll,
  tempDir,
} from '../../scripts/lib/local-processes.js';

// Inlets and outlets made with `agent inlet/outlet create` outlive the node: each create and delete
// the node accepts is written to its config file (the home's node.yaml by default, else the
// --config file, YAML or JSON kept as it was), and a restart brings them back. A create the node
// or the file refuses changes neither. Real relay, real nodes, real CLI.

let relay: RelayProcess;
let echo: EchoServer;

beforeAll(async () => {
  relay = await startRelayProcess();
  echo = await startEchoServer();
});

afterAll(async () => {
  await stopAll();
  await echo?.close();
});

async function ok(home: string, args: string[]): Promise<string> {
  const result = await runAgent(home, args);
  if (result.code !== 0) throw new Error(`agent ${args.join(' ')} exited ${result.code}: ${result.stderr}`);
  return result.stdout.trim();
}

async function names(home: string, kind: 'inlet' | 'outlet'): Promise<string[]> {
  const listed = JSON.parse(await ok(home, [kind, 'list', '--json'])) as Record<string, { name: string }[]>;
  return listed[`${kind}s`]!.map((r) => r.name);
}

async function restart(node: NodeProcess, agent: AgentHome, args: string[] = []): Promise<NodeProcess> {
  await node.proc.kill('SIGTERM');
  return startNodeProcess(agent, undefined, { args });
}

describe('resources made with the CLI persist', () => {
  it('outlet and inlet created on nodes without --config come back after a restart, carry bytes, and stay gone once deleted', async () => {
    const outletAgent = await enrollAgent(relay, { attributes: ['svc-outlet'], relayNames: ['kept'] });
    const inletAgent = await enrollAgent(relay, { attributes: ['svc-inlet'] });
    let outletNode = await startNodeProcess(outletAgent);
    let inletNode = await startNodeProcess(inletAgent);
    await ok(outletAgent.home, ['outlet', 'create', '--to', echo.address, '--relay', 'kept', '--allow', 'svc-inlet']);
    await ok(inletAgent.home, ['inlet', 'create', '--from', '127.0.0.1:0', '--via', 'kept', '--allow', 'svc-outlet']);
    for (const home of [outletAgent.home, inletAgent.home]) {
      expect(statSync(join(home, 'node.yaml')).mode & 0o777).toBe(0o600);
      // Written by a rename of a temp file in the same folder: none is left behind.
      expect(readdirSync(home).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    }
    expect(readFileSync(join(inletAgent.home, 'node.yaml'), 'utf8')).toBe('inlets:\n  - name: kept\n    from: 127.0.0.1:0\n    via: kept\n    allow: svc-outlet\n');

    [outletNode, inletNode] = await Promise.all([restart(outletNode, outletAgent), restart(inletNode, inletAgent)]);
    const status = JSON.parse(await ok(outletAgent.home, ['status', '--json'])) as { outlets: { name: string; to: string }[] };
    expect(status.outlets.map((o) => [o.name, o.to])).toEqual([['kept', echo.address]]);
    expect(await names(inletAgent.home, 'inlet')).toEqual(['kept']);
    const outcome = await sendThenFinish(inletNode.inlets.kept!, Buffer.from('after a restart'));
    expect(outcome.received.toString()).toBe('after a restart');

    await ok(inletAgent.home, ['inlet', 'delete', 'kept']);
    inletNode = await restart(inletNode, inletAgent);
    expect(await names(inletAgent.home, 'inlet')).toEqual([]);
    expect(inletNode.ready.inlets).toEqual([]);
    expect(readFileSync(join(inletAgent.home, 'node.yaml'), 'utf8')).toBe('inlets: []\n');
  });

  it('a YAML --config keeps its comments after a create; refused creates leave it byte-identical', async () => {
    const agent = await enrollAgent(relay, { attributes: ['svc-inlet'] });
    const folder = tempDir('wicket-conf-');
    const file = join(folder, 'edge.yaml');
    const text = '# Health Corp edge node\nmetrics: 127.0.0.2:0   # scraped by the local Prometheus\ninlets:\n  # the first one, by hand\n  - { name: first, from: "127.0.0.1:0", via: kept, allow: svc-outlet }\n';
    writeFileSync(file, text);
    await startNodeProcess(agent, undefined, { args: ['--config', file] });
    // metrics from the file, as --metrics would give it.
    expect((JSON.parse(await ok(agent.home, ['status', '--json'])) as { metrics?: string }).metrics).toMatch(/^127\.0\.0\.2:\d+$/);

    const socket = join(agent.home, 'control.sock');
    const refusals = [
      { args: { name: 'first', from: '127.0.0.1:0', via: 'kept', allow: 'svc-outlet' }, code: 'WICKET_ERR_RESOURCE_EXISTS' },
      // The CLI checks policies itself; the control socket is another door to the same node.
      { args: { name: 'bad', from: '127.0.0.1:0', via: 'kept', allow: 'a or or b' }, code: 'WICKET_ERR_ARGUMENT' },
      { args: { name: 'bad', from: '127.0.0.1:0', via: 'kept', allow: 'a', tlsCa: 'x' }, code: 'WICKET_ERR_ARGUMENT' },
    ];
    for (const { args, code } of refusals) {
      await expect(controlRequest(socket, 'inlet.create', args)).rejects.toMatchObject({ code });
      expect(readFileSync(file, 'utf8')).toBe(text);
    }
    await expect(controlRequest(socket, 'inlet.delete', { name: 'nope' })).rejects.toMatchObject({ code: 'WICKET_ERR_RESOURCE_UNKNOWN' });
    expect(readFileSync(file, 'utf8')).toBe(text);

    await ok(agent.home, ['inlet', 'create', '--from', '127.0.0.1:0', '--via', 'kept', '--allow', 'svc-outlet', '--name', 'second']);
    const after = readFileSync(file, 'utf8');
    for (const comment of ['# Health Corp edge node', '# scraped by the local Prometheus', '# the first one, by hand']) expect(after).toContain(comment);
    expect(after).toContain('name: second');
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('a JSON --config stays JSON; --metrics wins over its metrics', async () => {
    const agent = await enrollAgent(relay, { attributes: ['svc-inlet'] });
    const file = join(agent.home, 'node.json');
    writeFileSync(file, JSON.stringify({ metrics: '127.0.0.2:0', inlets: [{ name: 'first', from: '127.0.0.1:0', via: 'kept', allow: 'svc-outlet' }] }));
    await startNodeProcess(agent, undefined, { args: ['--config', file, '--metrics', '127.0.0.1:0'] });
    expect((JSON.parse(await ok(agent.home, ['status', '--json'])) as { metrics?: string }).metrics).toMatch(/^127\.0\.0\.1:\d+$/);
    await ok(agent.home, ['inlet', 'create', '--from', '127.0.0.1:0', '--via', 'kept', '--allow', 'svc-outlet', '--name', 'second']);
    const written = JSON.parse(readFileSync(file, 'utf8')) as { metrics: string; inlets: { name: string }[] };
    expect(written.metrics).toBe('127.0.0.2:0');
    expect(written.inlets.map((i) => i.name)).toEqual(['first', 'second']);
  });
});

/**
 * The command prefix that runs the node as a user who cannot write a root-owned folder: root
 * writes anywhere, so as root the node runs as nobody (setpriv); as anyone else, a 0555 folder does.
 */
function unprivileged(): { wrap: CommandWrap | undefined; skip?: string } {
  if (process.getuid?.() !== 0) return { wrap: undefined };
  if (spawnSync('setpriv', ['--version']).status !== 0) return { wrap: undefined, skip: 'running as root without setpriv: no way to make a file unwritable' };
  return { wrap: ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'] };
}

describe('a config file the node cannot write', () => {
  const { wrap, skip } = unprivileged();
  it.skipIf(skip !== undefined)(`refuses create and delete with WICKET_ERR_PERMISSION, the running node unchanged ${skip ?? ''}`, async () => {
    const agent = await enrollAgent(relay, { attributes: ['svc-inlet'] });
    const folder = tempDir('wicket-ro-');
    const file = join(folder, 'node.yaml');
    const text = '# managed by config management\ninlets:\n  - { name: held, from: "127.0.0.1:0", via: kept, allow: svc-outlet }\n';
    writeFileSync(file, text, { mode: 0o644 });
    if (wrap !== undefined) {
      // The home becomes nobody's; the config's folder stays root's, readable by all.
      spawnSync('chown', ['-R', '65534:65534', agent.home]);
      chownSync(agent.home, 65534, 65534);
      chmodSync(folder, 0o755);
    } else {
      chmodSync(folder, 0o555);
    }
    await startNodeProcess(agent, undefined, { args: ['--config', file], ...(wrap !== undefined ? { wrap } : {}) });
    const result = await runAgent(agent.home, ['inlet', 'create', '--from', '127.0.0.1:0', '--via', 'kept', '--allow', 'svc-outlet']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/WICKET_ERR_PERMISSION: cannot write the node config .*node\.yaml \(EACCES\).*; inlet kept was not created/);
    expect(await names(agent.home, 'inlet')).toEqual(['held']);
    expect(readFileSync(file, 'utf8')).toBe(text);
    // A delete the file cannot record leaves the inlet running: a restart would bring it back.
    const deleted = await runAgent(agent.home, ['inlet', 'delete', 'held']);
    expect(deleted.stderr).toMatch(/WICKET_ERR_PERMISSION: .*; inlet held was not deleted/);
    expect(await names(agent.home, 'inlet')).toEqual(['held']);
    expect(readFileSync(file, 'utf8')).toBe(text);
    chmodSync(folder, 0o700);
  });
});

describe('hostile config files', () => {
  const bomb = ['a: &a [x, x, x, x, x, x, x, x, x]', ...['b', 'c', 'd', 'e', 'f', 'g'].map((n, i) => `${n}: &${n} [${Array(9).fill(`*${'abcdefg'[i]}`).join(', ')}]`)].join('\n');
  const cases: [string, string, string, RegExp][] = [
    ['neither YAML nor JSON', 'node.conf', '{ "inlets": [ }', /node\.conf: is not valid YAML \(line 1, column \d+/],
    ['broken JSON', 'node.json', '{"inlets": [}', /node\.json: is not valid JSON \(line 1, column 13/],
    ['a wrong type', 'node.yaml', 'inlets: 5\n', /inlets: must be an array \(in .*node\.yaml, line 1, column 9\)/],
    ['an unknown field', 'node.json', '{"outlets": [{"to": "127.0.0.1:1", "relay": "a", "allow": "a", "tlsCA": "x"}]}', /outlets\[0\]\.tlsCA: unknown field .*\(in .*node\.json/],
    ['a file over the cap', 'node.yaml', `#${' '.repeat(NODE_CONFIG_MAX_BYTES)}\n`, /node\.yaml: is \d+ bytes, cap/],
    ['a YAML alias bomb', 'node.yaml', `${bomb}\n`, /node\.yaml: is not a usable YAML document \(Excessive alias count/],
    ['duplicate YAML keys', 'node.yaml', 'inlets: []\ninlets: []\n', /node\.yaml: is not valid YAML \(line 2, column 1: Map keys must be unique/],
    ['duplicate JSON keys', 'node.json', '{"inlets": [], "inlets": []}', /node\.json: "inlets" appears twice/],
  ];

  it('each is refused with WICKET_ERR_CONFIG naming the file or field, and the node exits 1 with one line', async () => {
    const home = tempDir('wicket-hostile-');
    const results = await Promise.all(
      cases.map(([, name, text]) => {
        const file = join(tempDir('wicket-hostile-cfg-'), name);
        writeFileSync(file, text);
        return runAgent(home, ['node', 'start', '--config', file]);
      }),
    );
    results.forEach((result, i) => {
      const [what, , , expected] = cases[i]!;
      expect(result.code, what).toBe(1);
      expect(result.stderr.trim().split('\n'), what).toHaveLength(1);
      expect(result.stderr, what).toMatch(/^error: WICKET_ERR_CONFIG: /);
      expect(result.stderr, what).toMatch(expected);
    });
  });

  it('a home with both node.yaml and node.json is refused as ambiguous', async () => {
    const home = tempDir('wicket-both-');
    writeFileSync(join(home, 'node.yaml'), '');
    writeFileSync(join(home, 'node.json'), '{}');
    const result = await runAgent(home, ['node', 'start']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/WICKET_ERR_CONFIG: both .*node\.yaml and .*node\.json exist/);
  });
});
