import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { NodeConfigFile } from '../../agent/config-file.js';
import { loadNodeConfig, parseNodeConfig } from '../../agent/node-config.js';
import { isWicketError } from '../../protocol/errors.js';
import { NODE_CONFIG_MAX_BYTES } from '../../protocol/limits.js';
import { codeOf } from '../helpers/error-code.js';

// The node config file as YAML or JSON: what each form accepts, how each mistake is named (file,
// line, column, field), and how a create/delete edits it without losing what the node did not
// write. The same file through a real node is test/e2e/resources-persist.test.ts.

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function folder(): string {
  const dir = mkdtempSync(join(tmpdir(), 'wicket-cfg-'));
  dirs.push(dir);
  return dir;
}

function fileWith(name: string, text: string): string {
  const path = join(folder(), name);
  writeFileSync(path, text);
  return path;
}

function loadError(path: string): string {
  try {
    loadNodeConfig(path);
  } catch (err) {
    if (isWicketError(err, 'WICKET_ERR_CONFIG')) return err.message;
    throw err;
  }
  throw new Error(`accepted: ${path}`);
}

const YAML_CONFIG = `# Health Corp's side
metrics: 127.0.0.1:9464   # Prometheus
inlets:
  - name: openai          # the app calls 127.0.0.1:8443
    from: 127.0.0.1:8443
    via: openai
    allow: openai-outlet
outlets: []
`;

describe('node config as YAML', () => {
  it('reads the same resources YAML and JSON describe, and metrics', () => {
    const fromYaml = loadNodeConfig(fileWith('node.yaml', YAML_CONFIG));
    const fromJson = loadNodeConfig(
      fileWith('node.json', JSON.stringify({ metrics: '127.0.0.1:9464', inlets: [{ name: 'openai', from: '127.0.0.1:8443', via: 'openai', allow: 'openai-outlet' }], outlets: [] })),
    );
    expect(fromYaml).toEqual(fromJson);
    expect(fromYaml.metrics).toEqual({ host: '127.0.0.1', port: 9464 });
  });

  it('takes an empty file, a comments-only file and `inlets:` with nothing as an empty config', () => {
    for (const [name, text] of [['a.yaml', ''], ['b.yaml', '# nothing yet\n'], ['c.json', '  \n'], ['d.yaml', 'inlets:\noutlets:\n']] as const) {
      expect(loadNodeConfig(fileWith(name, text)), name).toEqual({ inlets: [], outlets: [] });
    }
  });

  it('reads another extension as JSON if it is JSON, else as YAML', () => {
    expect(loadNodeConfig(fileWith('node.conf', '{"inlets": []}')).inlets).toEqual([]);
    expect(loadNodeConfig(fileWith('node.conf', YAML_CONFIG)).inlets[0]?.name).toBe('openai');
  });

  it.each([
    ['YAML with a broken flow list', 'node.yaml', 'inlets: [\n  {from: x\n', /node\.yaml: is not valid YAML \(line \d+, column \d+: /],
    ['YAML with a tab indent', 'node.yaml', 'inlets:\n\t- from: x\n', /node\.yaml: is not valid YAML \(line 2, column 1: /],
    ['YAML with a duplicate key', 'node.yaml', 'inlets: []\ninlets: []\n', /node\.yaml: is not valid YAML \(line 2, column 1: Map keys must be unique/],
    ['YAML with two documents', 'node.yaml', 'inlets: []\n---\noutlets: []\n', /node\.yaml: is not valid YAML/],
    ['YAML with an unknown tag', 'node.yaml', 'inlets: !exec x\n', /node\.yaml: is not valid YAML \(line 1, column 9: Unresolved tag: !exec\)/],
    ['YAML binary where a list goes', 'node.yaml', 'inlets: !!binary aGVsbG8=\n', /inlets: must be an array/],
    ['YAML that is a string', 'node.yaml', 'just words\n', /node\.yaml: must be an object \(a mapping of metrics, outletRelays, outlets, inlets\)$/],
    ['JSON named .yaml that is broken', 'node.json', '{"inlets": [\n  {"from": "x",}\n]}', /node\.json: is not valid JSON \(line 2, column \d+: /],
    ['JSON with a duplicate key', 'node.json', '{"inlets": [],\n "inlets": []}', /node\.json: "inlets" appears twice in one object \(line 2, column 2\)/],
    ['JSON with a duplicate key deep down', 'node.json', '{"inlets": [{"via": "a", "via": "b", "from": "x:1", "allow": "a"}]}', /"via" appears twice/],
    ['YAML in a .json file', 'node.json', '\n inlets: []\n', /node\.json: is not valid JSON \(line 2, column 2: Unexpected token 'i'\)$/],
    ['JSON with a stray bracket', 'node.json', '{"inlets": [{"from": "x", "via": "[]"}, }]}', /node\.json: is not valid JSON \(line 1, column 41: Unexpected token '}'\)$/],
    ['truncated JSON', 'node.json', '{"inlets": [', /node\.json: is not valid JSON \(line 1, column 13: Unexpected end of JSON input\)$/],
    ['neither JSON nor YAML', 'node.conf', '{ "inlets": [ }', /node\.conf: is not valid YAML/],
  ])('refuses %s, naming the file, line and column', (_what, name, text, expected) => {
    expect(loadError(fileWith(name, text))).toMatch(expected);
  });

  it.each([
    ['a wrong type', 'inlets:\n  - from: 127.0.0.1:0\n    via: svc\n    allow: [a]\n', /^WICKET_ERR_CONFIG: inlets\[0\]\.allow: must be a policy expression string \(in .*node\.yaml, line 4, column 12\)$/],
    ['an unknown field', 'inlets:\n  - from: 127.0.0.1:0\n    via: svc\n    allow: a\n    tlsCA: x\n', /^WICKET_ERR_CONFIG: inlets\[0\]\.tlsCA: unknown field \(expected one of name, from, via, allow\) \(in .*node\.yaml, line 5, column 5\)$/],
    ['an unknown top-level field', 'relays: []\n', /^WICKET_ERR_CONFIG: relays: unknown field \(expected one of metrics, outletRelays, outlets, inlets\) \(in .*node\.yaml, line 1, column 1\)$/],
    ['a bad metrics address', 'metrics: 9464\n', /^WICKET_ERR_CONFIG: metrics: must be a string HOST:PORT \(in .*node\.yaml/],
    ['a list that is a map', 'outlets:\n  to: 127.0.0.1:1\n', /^WICKET_ERR_CONFIG: outlets: must be an array \(in .*node\.yaml, line 2, column 3\)$/],
  ])('refuses %s in a YAML file, naming the field, the file and its line', (_what, text, expected) => {
    expect(loadError(fileWith('node.yaml', text))).toMatch(expected);
  });

  it('names the field and the file in a JSON file too', () => {
    const path = fileWith('node.json', JSON.stringify({ outlets: [{ to: '127.0.0.1:0', relay: 'svc', allow: 'a' }] }, null, 2));
    expect(loadError(path)).toMatch(/^WICKET_ERR_CONFIG: outlets\[0\]\.to: port 0 is out of range \(in .*node\.json, line 4, column 13\)$/);
  });

  it('refuses a YAML alias bomb without expanding it', () => {
    const lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]'];
    for (const [name, prev] of [['b', 'a'], ['c', 'b'], ['d', 'c'], ['e', 'd'], ['f', 'e'], ['g', 'f'], ['h', 'g']]) lines.push(`${name}: &${name} [${Array(9).fill(`*${prev}`).join(', ')}]`);
    const started = Date.now();
    expect(loadError(fileWith('node.yaml', `${lines.join('\n')}\n`))).toMatch(/node\.yaml: is not a usable YAML document \(Excessive alias count/);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('accepts a few aliases (one policy shared by several inlets)', () => {
    const config = loadNodeConfig(
      fileWith('node.yaml', 'inlets:\n  - { name: a, from: "127.0.0.1:0", via: a, allow: &p "team=x and env=prod" }\n  - { name: b, from: "127.0.0.1:0", via: b, allow: *p }\n'),
    );
    expect(config.inlets.map((i) => i.allow)).toEqual(['team=x and env=prod', 'team=x and env=prod']);
  });

  it('refuses a file over NODE_CONFIG_MAX_BYTES before reading it', () => {
    const path = fileWith('node.yaml', `# ${'x'.repeat(NODE_CONFIG_MAX_BYTES)}\n`);
    expect(loadError(path)).toMatch(new RegExp(`node\\.yaml: is \\d+ bytes, cap ${NODE_CONFIG_MAX_BYTES}`));
  });

  it('refuses deeply nested YAML without crashing', () => {
    expect(loadError(fileWith('node.yaml', `inlets: ${'['.repeat(5000)}${']'.repeat(5000)}\n`))).toMatch(/node\.yaml|inlets/);
  });

  it('refuses a folder named as the config, and says a missing --config file is missing', () => {
    const dir = folder();
    mkdirSync(join(dir, 'node.yaml'));
    expect(loadError(join(dir, 'node.yaml'))).toMatch(/node\.yaml: is not a regular file/);
    expect(loadError(join(dir, 'absent.yaml'))).toMatch(/absent\.yaml: cannot be read \(ENOENT\)/);
  });

  it('keeps the node.json naming when parsing text without a file (as before YAML)', () => {
    expect(() => parseNodeConfig('inlets: []')).toThrow(/^WICKET_ERR_CONFIG: node\.json: is not valid JSON/);
  });
});

describe('NodeConfigFile', () => {
  const inlet = { from: '127.0.0.1:0', via: 'svc', allow: 'svc-outlet' };

  it('defaults to node.yaml in the home, takes node.json when that is there, and refuses both', () => {
    const home = folder();
    expect(NodeConfigFile.choose(home).path).toBe(join(home, 'node.yaml'));
    expect(NodeConfigFile.choose(home).load()).toEqual({ inlets: [], outlets: [] });
    writeFileSync(join(home, 'node.json'), '{}');
    expect(NodeConfigFile.choose(home).path).toBe(join(home, 'node.json'));
    writeFileSync(join(home, 'node.yaml'), '');
    expect(codeOf(() => NodeConfigFile.choose(home))).toBe('WICKET_ERR_CONFIG');
    expect(() => NodeConfigFile.choose(home)).toThrow(/both .*node\.yaml and .*node\.json exist/);
    expect(NodeConfigFile.choose(home, join(home, 'node.json')).explicit).toBe(true);
  });

  it('makes an absent default file with mode 0600, in YAML', () => {
    const file = NodeConfigFile.choose(folder());
    file.add('inlets', { name: 'svc', ...inlet });
    expect(statSync(file.path).mode & 0o777).toBe(0o600);
    expect(readFileSync(file.path, 'utf8')).toBe('inlets:\n  - name: svc\n    from: 127.0.0.1:0\n    via: svc\n    allow: svc-outlet\n');
  });

  it('keeps a YAML file\'s comments and the parts no command touches', () => {
    const path = fileWith('node.yaml', `${YAML_CONFIG}# the end\n`);
    const file = NodeConfigFile.choose(folder(), path);
    file.add('outlets', { name: 'db', to: '127.0.0.1:5432', relay: 'db', allow: 'db-client' });
    const text = readFileSync(path, 'utf8');
    for (const kept of ["# Health Corp's side", '# Prometheus', '# the app calls 127.0.0.1:8443', '# the end', 'metrics: 127.0.0.1:9464']) expect(text).toContain(kept);
    expect(loadNodeConfig(path).outlets.map((o) => o.name)).toEqual(['db']);
    file.remove('inlets', 'openai');
    expect(readFileSync(path, 'utf8')).toContain('# Prometheus');
    expect(loadNodeConfig(path).inlets).toEqual([]);
  });

  it('keeps JSON as JSON, with every key it had', () => {
    const gateway = { kind: 'azure-openai', backends: [{ name: 'eastus', url: 'https://aoai-eastus.openai.azure.com' }] };
    const path = fileWith('node.json', JSON.stringify({ outlets: [{ relay: 'openai', allow: 'openai-inlet', gateway }] }));
    NodeConfigFile.choose(folder(), path).add('inlets', { name: 'svc', ...inlet });
    const written = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
    expect(written).toEqual({ outlets: [{ relay: 'openai', allow: 'openai-inlet', gateway }], inlets: [{ name: 'svc', ...inlet }] });
  });

  it('removes the entry whose name defaults to its relay name', () => {
    const path = fileWith('node.yaml', 'outlets:\n  - { to: "127.0.0.1:1", relay: a, allow: x }\n  - { to: "127.0.0.1:2", relay: b, allow: x }\n');
    NodeConfigFile.choose(folder(), path).remove('outlets', 'b');
    expect(loadNodeConfig(path).outlets.map((o) => o.name)).toEqual(['a']);
    const before = readFileSync(path);
    NodeConfigFile.choose(folder(), path).remove('outlets', 'not-there');
    expect(readFileSync(path).equals(before)).toBe(true);
  });

  it('writes nothing the next start would refuse: a clash with a hand-added entry leaves the file byte-identical', () => {
    const path = fileWith('node.yaml', `${YAML_CONFIG}`);
    const before = readFileSync(path);
    expect(codeOf(() => NodeConfigFile.choose(folder(), path).add('inlets', { name: 'openai', ...inlet }))).toBe('WICKET_ERR_CONFIG');
    expect(readFileSync(path).equals(before)).toBe(true);
  });

  it('changes nothing on top of a file that has become invalid', () => {
    const path = fileWith('node.yaml', 'inlets: [\n');
    expect(() => NodeConfigFile.choose(folder(), path).add('inlets', { name: 'svc', ...inlet })).toThrow(/is not valid YAML/);
    expect(readFileSync(path, 'utf8')).toBe('inlets: [\n');
  });

  it('follows a symlinked config, so the link stays a link', () => {
    const dir = folder();
    const real = join(dir, 'real.yaml');
    writeFileSync(real, '# mine\n');
    const link = join(dir, 'node.yaml');
    symlinkSync(real, link);
    NodeConfigFile.choose(dir, link).add('inlets', { name: 'svc', ...inlet });
    expect(readFileSync(real, 'utf8')).toContain('# mine');
    expect(loadNodeConfig(link).inlets[0]?.name).toBe('svc');
  });
});
