import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isWicketError } from '../../protocol/errors.js';
import { GATEWAY_LEDGER_RETENTION_DAYS, NODE_CONFIG_MAX_BYTES, OUTLET_MAX_TARGET_CONNECTIONS, OUTLET_MAX_TARGET_CONNECTIONS_PER_PEER } from '../../protocol/limits.js';
import { loadNodeConfig, outletSpecToJson, parseHostPort, parseNodeConfig, validateOutletSpec } from '../../agent/node-config.js';
import { outletArgs } from '../../cli/agent-node.js';
import { codeOf } from '../helpers/error-code.js';

// node.json is operator input that may be wrong in every way: each mistake must be refused with
// WICKET_ERR_CONFIG naming the field, never accepted with a silent default, never a crash.

function configError(text: string): string {
  try {
    parseNodeConfig(text);
  } catch (err) {
    if (isWicketError(err, 'WICKET_ERR_CONFIG')) return err.message;
    throw err;
  }
  throw new Error(`accepted: ${text.slice(0, 200)}`);
}

const outlet = { to: '127.0.0.1:5000', relay: 'svc', allow: 'svc-inlet' };
const inlet = { from: '127.0.0.1:0', via: 'svc', allow: 'svc-outlet' };

describe('node.json', () => {
  it('accepts a full config and defaults names to relay names', () => {
    const config = parseNodeConfig(
      JSON.stringify({
        outlets: [{ ...outlet, tls: true, tlsServername: 'svc.internal' }],
        inlets: [inlet, { ...inlet, name: 'second', from: '[::1]:8443' }],
      }),
    );
    expect(config.outlets[0]).toEqual({
      name: 'svc',
      to: { host: '127.0.0.1', port: 5000 },
      tls: true,
      tlsServername: 'svc.internal',
      relay: 'svc',
      allow: 'svc-inlet',
      maxConnections: OUTLET_MAX_TARGET_CONNECTIONS,
      maxConnectionsPerPeer: OUTLET_MAX_TARGET_CONNECTIONS_PER_PEER,
    });
    expect(config.inlets.map((i) => i.name)).toEqual(['svc', 'second']);
    expect(config.inlets[1]!.from).toEqual({ host: '::1', port: 8443 });
  });

  it.each([
    ['not JSON', '{"outlets": [', /node\.json: is not valid JSON/],
    ['an array at the top', '[]', /node\.json: must be an object/],
    ['an unknown top-level field', JSON.stringify({ outlets: [], relays: [] }), /node\.json\.relays: unknown field/],
    ['outlets that is not an array', JSON.stringify({ outlets: {} }), /outlets: must be an array/],
    ['a misspelt outlet field (tlsCA)', JSON.stringify({ outlets: [{ ...outlet, tls: true, tlsCA: 'ca.pem' }] }), /outlets\[0\]\.tlsCA: unknown field/],
    ['an outlet without a target', JSON.stringify({ outlets: [{ relay: 'svc', allow: 'x' }] }), /outlets\[0\]\.to/],
    ['a target without a port', JSON.stringify({ outlets: [{ ...outlet, to: 'db.internal' }] }), /outlets\[0\]\.to: .* is not HOST:PORT/],
    ['a target on port 0', JSON.stringify({ outlets: [{ ...outlet, to: '127.0.0.1:0' }] }), /outlets\[0\]\.to: port 0/],
    ['a connection limit of 0', JSON.stringify({ outlets: [{ ...outlet, maxConnections: 0 }] }), /outlets\[0\]\.maxConnections: must be a whole number/],
    ['a fractional per-peer limit', JSON.stringify({ outlets: [{ ...outlet, maxConnectionsPerPeer: 1.5 }] }), /outlets\[0\]\.maxConnectionsPerPeer: must be a whole number/],
    ['a per-peer limit above the outlet limit', JSON.stringify({ outlets: [{ ...outlet, maxConnections: 10, maxConnectionsPerPeer: 11 }] }), /maxConnectionsPerPeer: 11 is more than maxConnections \(10\)/],
    ['a target port past 65535', JSON.stringify({ outlets: [{ ...outlet, to: '127.0.0.1:65536' }] }), /outlets\[0\]\.to: port 65536/],
    ['a target host with a path', JSON.stringify({ outlets: [{ ...outlet, to: 'evil/../x:80' }] }), /outlets\[0\]\.to/],
    ['tls given as a string', JSON.stringify({ outlets: [{ ...outlet, tls: 'yes' }] }), /outlets\[0\]\.tls: must be true or false/],
    ['a CA without tls', JSON.stringify({ outlets: [{ ...outlet, tlsCa: 'ca.pem' }] }), /outlets\[0\]\.tls: tlsCa and tlsServername need tls: true/],
    ['a policy that does not parse', JSON.stringify({ outlets: [{ ...outlet, allow: 'a and (b' }] }), /outlets\[0\]\.allow: .*WICKET_ERR_POLICY_SYNTAX/],
    ['a policy that is not a string', JSON.stringify({ inlets: [{ ...inlet, allow: ['a'] }] }), /inlets\[0\]\.allow: must be a policy/],
    ['a relay name with a space', JSON.stringify({ outlets: [{ ...outlet, relay: 'my svc' }] }), /outlets\[0\]\.relay: .* is not a name/],
    ['an empty relay name', JSON.stringify({ inlets: [{ ...inlet, via: '' }] }), /inlets\[0\]\.via: .* is not a name/],
    ['an overlong name', JSON.stringify({ inlets: [{ ...inlet, name: 'n'.repeat(65) }] }), /inlets\[0\]\.name/],
    ['a listen address that is not an address', JSON.stringify({ inlets: [{ ...inlet, from: '8443' }] }), /inlets\[0\]\.from/],
    ['two inlets with one name', JSON.stringify({ inlets: [inlet, inlet] }), /inlets\[1\]\.name: "svc" is used twice/],
    ['two outlets serving one relay name', JSON.stringify({ outlets: [outlet, { ...outlet, name: 'other' }] }), /outlets\[1\]\.relay: "svc" is used twice/],
    ['a null entry', JSON.stringify({ inlets: [null] }), /inlets\[0\]: must be an object/],
    ['outletRelays 3', JSON.stringify({ outletRelays: 3 }), /outletRelays: must be 1 or 2/],
    ['outletRelays as a string', JSON.stringify({ outletRelays: '2' }), /outletRelays: must be 1 or 2/],
    ['a prototype-polluting key', '{"inlets":[{"__proto__":{"x":1},"from":"127.0.0.1:0","via":"svc","allow":"a"}]}', /inlets\[0\]\.__proto__: unknown field/],
  ])('refuses %s', (_what, text, expected) => {
    expect(configError(text)).toMatch(expected);
  });

  it('takes outletRelays 1 or 2 (outlets registered on two relays at once), and leaves it out when absent', () => {
    expect(parseNodeConfig(JSON.stringify({ outletRelays: 2 })).outletRelays).toBe(2);
    expect(parseNodeConfig(JSON.stringify({ outletRelays: 1 })).outletRelays).toBe(1);
    expect(parseNodeConfig('{}')).not.toHaveProperty('outletRelays');
  });

  it('refuses a config larger than the cap before parsing it', () => {
    expect(configError(' '.repeat(NODE_CONFIG_MAX_BYTES + 1))).toMatch(/cap/);
  });

  it('refuses deeply nested JSON without crashing', () => {
    expect(configError('{"inlets":' + '['.repeat(5000) + ']'.repeat(5000) + '}')).toMatch(/inlets/);
  });
});

describe('HOST:PORT', () => {
  it.each(['127.0.0.1:80', 'localhost:1', 'db-1.internal.example:65535', '[::1]:443', '[fe80::1]:22'])('accepts %s', (text) => {
    expect(() => parseHostPort(text, '--to')).not.toThrow();
  });

  it.each(['', ':80', '127.0.0.1', '127.0.0.1:', '127.0.0.1:http', '::1:80', '[::1]', '[not-ip]:80', 'a b:80', 'host:-1', 'host:080808'])('refuses %j', (text) => {
    expect(() => parseHostPort(text, '--to')).toThrow(/WICKET_ERR_ARGUMENT: --to/);
  });
});

// --- the gateway block ------------------------------------------------------------------------

const backend = { name: 'eastus', url: 'https://aoai-eastus.openai.azure.com' };
const gatewayOutlet = { relay: 'openai', allow: 'openai-inlet', gateway: { kind: 'azure-openai', backends: [backend] } };

describe('node.json with a gateway outlet', () => {
  it('accepts a gateway outlet without a target, its defaults filled', () => {
    const config = parseNodeConfig(JSON.stringify({ outlets: [gatewayOutlet] }));
    expect(config.outlets[0]).toEqual({
      name: 'openai',
      relay: 'openai',
      allow: 'openai-inlet',
      tls: false,
      maxConnections: OUTLET_MAX_TARGET_CONNECTIONS,
      maxConnectionsPerPeer: OUTLET_MAX_TARGET_CONNECTIONS_PER_PEER,
      gateway: {
        kind: 'azure-openai',
        backends: [{ ...backend, priority: 0, weight: 1, auth: { kind: 'entra' } }],
        limits: [],
        deployments: {},
        ledger: { retentionDays: GATEWAY_LEDGER_RETENTION_DAYS },
      },
    });
    expect(config.outlets[0]).not.toHaveProperty('to');
  });

  it('accepts a gateway outlet next to a TCP outlet', () => {
    const config = parseNodeConfig(JSON.stringify({ outlets: [outlet, gatewayOutlet] }));
    expect(config.outlets.map((o) => [o.name, o.to !== undefined, o.gateway !== undefined])).toEqual([
      ['svc', true, false],
      ['openai', false, true],
    ]);
  });

  const gw = (gateway: Record<string, unknown>): string => JSON.stringify({ outlets: [{ ...gatewayOutlet, gateway: { ...gatewayOutlet.gateway, ...gateway } }] });

  it.each([
    ['a gateway with a target', JSON.stringify({ outlets: [{ ...gatewayOutlet, to: '127.0.0.1:443' }] }), /^WICKET_ERR_CONFIG: outlets\[0\]\.to: a gateway outlet has no to/],
    ['a gateway with tls', JSON.stringify({ outlets: [{ ...gatewayOutlet, tls: true }] }), /^WICKET_ERR_CONFIG: outlets\[0\]\.tls: a gateway outlet has no to/],
    ['a gateway with tls: false', JSON.stringify({ outlets: [{ ...gatewayOutlet, tls: false }] }), /outlets\[0\]\.tls: a gateway outlet/],
    ['a gateway with a CA', JSON.stringify({ outlets: [{ ...gatewayOutlet, tlsCa: 'ca.pem' }] }), /outlets\[0\]\.tlsCa: a gateway outlet/],
    ['a gateway with a server name', JSON.stringify({ outlets: [{ ...gatewayOutlet, tlsServername: 'x' }] }), /outlets\[0\]\.tlsServername: a gateway outlet/],
    ['an outlet with neither target nor gateway', JSON.stringify({ outlets: [{ relay: 'svc', allow: 'x' }] }), /outlets\[0\]\.to: is required/],
    ['a gateway that is not an object', JSON.stringify({ outlets: [{ ...gatewayOutlet, gateway: 'azure-openai' }] }), /outlets\[0\]\.gateway: /],
    ['a gateway that is null', JSON.stringify({ outlets: [{ ...gatewayOutlet, gateway: null }] }), /outlets\[0\]\.gateway: /],
    ['a second backend with a bad URL', gw({ backends: [backend, { name: 'sweden', url: 'ftp://aoai-sweden' }] }), /outlets\[0\]\.gateway\.backends\[1\]\.url: must be https/],
    ['a backend URL with credentials', gw({ backends: [{ ...backend, url: 'https://u:p@aoai' }] }), /outlets\[0\]\.gateway\.backends\[0\]\.url: must not carry credentials/],
    ['two backends with one name', gw({ backends: [backend, backend] }), /outlets\[0\]\.gateway\.backends\[1\]\.name: "eastus" is used twice/],
    ['an unknown gateway field', gw({ limit: [] }), /outlets\[0\]\.gateway\.limit: unknown field/],
    ['a bad deployment policy', gw({ deployments: { 'gpt-4o': 'team=research and' } }), /outlets\[0\]\.gateway\.deployments\.gpt-4o: WICKET_ERR_POLICY_SYNTAX/],
    ['a limit without a limit', gw({ limits: [{ attribute: 'team', value: 'x' }] }), /outlets\[0\]\.gateway\.limits\[0\]: sets no limit/],
    ['an attribute name with =', gw({ limits: [{ attribute: 'a=b', value: 'x', tokensPerDay: 1 }] }), /outlets\[0\]\.gateway\.limits\[0\]\.attribute: must not contain =/],
    ['a bad redact pattern', gw({ contentLog: { path: 'c.jsonl', redact: ['['] } }), /outlets\[0\]\.gateway\.contentLog\.redact\[0\]: is not a regular expression/],
  ])('refuses %s', (_what, text, expected) => {
    expect(configError(text)).toMatch(expected);
  });

  it('names the outlet the bad gateway is in', () => {
    const text = JSON.stringify({ outlets: [outlet, { ...gatewayOutlet, gateway: { ...gatewayOutlet.gateway, backends: [{ ...backend, weight: 0 }] } }] });
    expect(configError(text)).toMatch(/^WICKET_ERR_CONFIG: outlets\[1\]\.gateway\.backends\[0\]\.weight: /);
  });

  it('uses WICKET_ERR_ARGUMENT through the control socket\'s door', () => {
    expect(codeOf(() => validateOutletSpec({ ...gatewayOutlet, to: '127.0.0.1:1' }, 'outlet'))).toBe('WICKET_ERR_ARGUMENT');
    expect(codeOf(() => validateOutletSpec({ ...gatewayOutlet, gateway: { kind: 'azure-openai', backends: [] } }, 'outlet'))).toBe('WICKET_ERR_ARGUMENT');
  });

  it('round-trips a gateway outlet through its JSON form', () => {
    const spec = validateOutletSpec({ ...gatewayOutlet, gateway: { ...gatewayOutlet.gateway, limits: [{ attribute: 'team', value: 'x', tokensPerDay: 5 }], contentLog: { path: '/var/log/c.jsonl' } } }, 'outlet');
    expect(validateOutletSpec(JSON.parse(JSON.stringify(outletSpecToJson(spec))), 'outlet')).toEqual(spec);
  });

  const files = {
    kind: 'azure-openai',
    backends: [
      { ...backend, tlsCa: 'certs/ca.pem', auth: { kind: 'api-key', file: 'keys/eastus.key' } },
      { name: 'sweden', url: 'https://aoai-sweden', tlsCa: '/etc/ssl/sweden.pem', auth: { kind: 'api-key', file: '/etc/wicket/sweden.key' } },
      { name: 'local', url: 'http://127.0.0.1:8080', auth: { kind: 'none' } },
    ],
    sharedCounters: '../state/limits.db',
    contentLog: { path: 'logs/content.jsonl' },
  };

  it('resolves the gateway\'s relative file names against the config folder, keeps absolute ones', () => {
    const base = resolve('/srv/wicket/conf');
    const spec = parseNodeConfig(JSON.stringify({ outlets: [{ ...gatewayOutlet, gateway: files }] }), base).outlets[0]!.gateway!;
    expect(spec.backends[0]!.tlsCa).toBe(join(base, 'certs/ca.pem'));
    expect(spec.backends[0]!.auth).toEqual({ kind: 'api-key', file: join(base, 'keys/eastus.key') });
    expect(spec.backends[1]!.tlsCa).toBe('/etc/ssl/sweden.pem');
    expect(spec.backends[1]!.auth).toEqual({ kind: 'api-key', file: '/etc/wicket/sweden.key' });
    expect(spec.backends[2]!.auth).toEqual({ kind: 'none' });
    expect(spec.sharedCounters).toBe(resolve(base, '../state/limits.db'));
    expect(spec.contentLog?.path).toBe(join(base, 'logs/content.jsonl'));
  });

  it('leaves file names as written when no config folder is given', () => {
    const spec = parseNodeConfig(JSON.stringify({ outlets: [{ ...gatewayOutlet, gateway: files }] })).outlets[0]!.gateway!;
    expect(spec.backends[0]!.auth).toEqual({ kind: 'api-key', file: 'keys/eastus.key' });
    expect(spec.sharedCounters).toBe('../state/limits.db');
    expect(spec.contentLog?.path).toBe('logs/content.jsonl');
  });

  it('resolves them against the folder of the file loadNodeConfig reads', () => {
    const dir = mkdtempSync(join(tmpdir(), 'wicket-node-config-'));
    try {
      const file = join(dir, 'node.json');
      writeFileSync(file, JSON.stringify({ outlets: [{ ...gatewayOutlet, gateway: files }] }));
      const spec = loadNodeConfig(file).outlets[0]!.gateway!;
      expect(spec.backends[0]!.auth).toEqual({ kind: 'api-key', file: join(dir, 'keys/eastus.key') });
      expect(spec.contentLog?.path).toBe(join(dir, 'logs/content.jsonl'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('agent outlet create --gateway (outletArgs)', () => {
  const flags = { to: 'aoai-eastus.openai.azure.com:443', relay: 'openai', allow: 'openai-inlet' };

  it('builds a one-backend gateway from --to and --tls, keyless by default, that the node accepts', () => {
    const args = outletArgs({ ...flags, gateway: 'azure-openai', tls: true });
    expect(args).toEqual({
      relay: 'openai',
      allow: 'openai-inlet',
      gateway: { kind: 'azure-openai', backends: [{ name: 'primary', url: 'https://aoai-eastus.openai.azure.com:443', auth: { kind: 'entra' } }] },
    });
    const spec = validateOutletSpec(args, 'outlet');
    expect(spec.to).toBeUndefined();
    expect(spec.gateway?.backends[0]?.auth).toEqual({ kind: 'entra' });
  });

  it('reads --api-key-file and --tls-ca as absolute paths; no --tls is http:// (a local stand-in)', () => {
    const args = outletArgs({ ...flags, to: '[::1]:8080', gateway: 'azure-openai', apiKeyFile: 'keys/aoai.key', name: 'aoai', maxConnections: '10' });
    expect(args.gateway).toEqual({ kind: 'azure-openai', backends: [{ name: 'primary', url: 'http://[::1]:8080', auth: { kind: 'api-key', file: resolve('keys/aoai.key') } }] });
    expect(args).toMatchObject({ name: 'aoai', maxConnections: 10 });
    expect(args).not.toHaveProperty('to');
    expect(args).not.toHaveProperty('tls');
    const withCa = outletArgs({ ...flags, gateway: 'azure-openai', tls: true, tlsCa: 'ca.pem' });
    expect((withCa.gateway as { backends: { tlsCa?: string }[] }).backends[0]!.tlsCa).toBe(resolve('ca.pem'));
    expect(withCa).not.toHaveProperty('tlsCa');
    expect(validateOutletSpec(args, 'outlet').gateway?.backends[0]?.url).toBe('http://[::1]:8080');
    expect(validateOutletSpec(withCa, 'outlet').gateway?.backends[0]?.tlsCa).toBe(resolve('ca.pem'));
  });

  it('keeps the plain TCP outlet as it was', () => {
    expect(outletArgs({ ...flags, tls: true })).toEqual({ to: flags.to, relay: 'openai', allow: 'openai-inlet', tls: true });
  });

  it.each([
    ['an unknown gateway kind', { gateway: 'openai' }, /--gateway "openai": the one gateway is azure-openai/],
    ['an empty gateway kind', { gateway: '' }, /--gateway ""/],
    ['a gateway kind in another case', { gateway: 'Azure-OpenAI' }, /--gateway/],
    ['--api-key-file without --gateway', { apiKeyFile: 'k' }, /--api-key-file needs --gateway azure-openai/],
    ['--tls-servername with --gateway', { gateway: 'azure-openai', tls: true, tlsServername: 'x' }, /--tls-servername is not used with --gateway/],
    ['--tls-ca without --tls', { gateway: 'azure-openai', tlsCa: 'ca.pem' }, /--tls-ca and --tls-servername need --tls/],
    ['a bad --to', { gateway: 'azure-openai', to: 'https://aoai.example.com' }, /--to/],
  ])('refuses %s with WICKET_ERR_ARGUMENT', (_what, extra, expected) => {
    const call = (): unknown => outletArgs({ ...flags, ...extra });
    expect(codeOf(call)).toBe('WICKET_ERR_ARGUMENT');
    expect(call).toThrow(expected);
  });

  it('shows at most 40 characters of a bad --gateway value', () => {
    expect(() => outletArgs({ ...flags, gateway: 'x'.repeat(10_000) })).toThrow(new RegExp(`--gateway "${'x'.repeat(40)}": `));
  });
});
