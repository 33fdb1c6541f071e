import { describe, expect, it } from 'vitest';
import { isWicketError } from '../../protocol/errors.js';
import { NODE_CONFIG_MAX_BYTES, OUTLET_MAX_TARGET_CONNECTIONS, OUTLET_MAX_TARGET_CONNECTIONS_PER_PEER } from '../../protocol/limits.js';
import { parseHostPort, parseNodeConfig } from '../../agent/node-config.js';

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
    ['a prototype-polluting key', '{"inlets":[{"__proto__":{"x":1},"from":"127.0.0.1:0","via":"svc","allow":"a"}]}', /inlets\[0\]\.__proto__: unknown field/],
  ])('refuses %s', (_what, text, expected) => {
    expect(configError(text)).toMatch(expected);
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
