import { describe, expect, it } from 'vitest';
import { type GatewayInput, limitScope, validateGatewaySpec } from '../../../agent/gateway/gateway-spec.js';
import { isWicketError } from '../../../protocol/errors.js';
import { GATEWAY_CONTENT_ENTRY_BYTES, GATEWAY_CONTENT_TOTAL_BYTES, GATEWAY_LEDGER_RETENTION_DAYS } from '../../../protocol/limits.js';
import { codeOf } from '../../helpers/error-code.js';
import { identifierFor } from '../../helpers/identifier.js';
import { seededRandom } from '../../helpers/seeded.js';

// The gateway block is operator input (node.json, the control socket): every mistake must be
// refused with the code the door uses and the field named, never defaulted over, never a crash.

const FIELD = 'outlets[0].gateway';
const BACKEND = { name: 'eastus', url: 'https://aoai-eastus.openai.azure.com' };
const BASE = { kind: 'azure-openai', backends: [BACKEND] };

function problem(value: unknown): string {
  try {
    validateGatewaySpec(value, FIELD, 'WICKET_ERR_CONFIG');
  } catch (err) {
    if (isWicketError(err, 'WICKET_ERR_CONFIG')) return err.message;
    throw err;
  }
  throw new Error(`accepted: ${JSON.stringify(value).slice(0, 200)}`);
}

const withBackend = (backend: Record<string, unknown>): unknown => ({ ...BASE, backends: [{ ...BACKEND, ...backend }] });
const withLimit = (rule: Record<string, unknown>): unknown => ({ ...BASE, limits: [rule] });

describe('validateGatewaySpec', () => {
  it('fills the defaults', () => {
    expect(validateGatewaySpec(BASE, FIELD, 'WICKET_ERR_CONFIG')).toEqual({
      kind: 'azure-openai',
      backends: [{ ...BACKEND, priority: 0, weight: 1, auth: { kind: 'entra' } }],
      limits: [],
      deployments: {},
      ledger: { retentionDays: GATEWAY_LEDGER_RETENTION_DAYS },
    });
    const log = validateGatewaySpec({ ...BASE, contentLog: { path: 'content.jsonl' } }, FIELD, 'WICKET_ERR_CONFIG').contentLog;
    expect(log).toEqual({ path: 'content.jsonl', redact: [], maxEntryBytes: GATEWAY_CONTENT_ENTRY_BYTES, maxTotalBytes: GATEWAY_CONTENT_TOTAL_BYTES });
  });

  it('accepts a full block as the design example writes it', () => {
    const full: GatewayInput = {
      kind: 'azure-openai',
      backends: [
        { name: 'eastus', url: 'https://aoai-eastus.openai.azure.com', priority: 0, weight: 2, auth: { kind: 'entra', clientId: '00000000-0000-0000-0000-000000000000' } },
        { name: 'sweden', url: 'https://aoai-sweden.openai.azure.com/', priority: 1, auth: { kind: 'api-key', file: '/etc/wicket/sweden.key' }, deployments: { 'gpt-4o': 'gpt-4o-se' } },
        { name: 'local', url: 'http://127.0.0.1:8080', auth: { kind: 'none' }, tlsCa: 'ca.pem' },
      ],
      limits: [
        { identity: identifierFor(1), tokensPerMinute: 20_000, requestsPerMinute: 60 },
        { attribute: 'team', value: 'cardiology', tokensPerDay: 2_000_000, tokensPerMonth: 50_000_000 },
      ],
      deployments: { 'gpt-4o': 'team=research', 'o3': 'team=research and not env=dev' },
      ledger: { retentionDays: 30 },
      sharedCounters: '/var/lib/wicket/limits.db',
      contentLog: { path: '/var/log/wicket/content.jsonl', redact: ['\\b\\d{3}-\\d{2}-\\d{4}\\b'], maxEntryBytes: 1_024, maxTotalBytes: 1_048_576 },
    };
    const spec = validateGatewaySpec(full, FIELD, 'WICKET_ERR_CONFIG');
    expect(spec.backends.map((b) => [b.name, b.priority, b.weight, b.auth.kind])).toEqual([
      ['eastus', 0, 2, 'entra'],
      ['sweden', 1, 1, 'api-key'],
      ['local', 0, 1, 'none'],
    ]);
    expect(spec.limits.map(limitScope)).toEqual([`identity:${identifierFor(1)}`, 'attribute:team=cardiology']);
  });

  it('uses the code of the door it came through', () => {
    expect(codeOf(() => validateGatewaySpec({}, 'gateway', 'WICKET_ERR_ARGUMENT'))).toBe('WICKET_ERR_ARGUMENT');
    expect(codeOf(() => validateGatewaySpec({}, 'gateway', 'WICKET_ERR_CONFIG'))).toBe('WICKET_ERR_CONFIG');
  });

  it.each([
    ['an unknown top-level field', { ...BASE, backend: [] }, /^WICKET_ERR_CONFIG: outlets\[0\]\.gateway\.backend: unknown field$/],
    ['an unknown backend field', withBackend({ tlsCA: 'ca.pem' }), /gateway\.backends\[0\]\.tlsCA: unknown field$/],
    ['an unknown auth field', withBackend({ auth: { kind: 'entra', file: 'k' } }), /gateway\.backends\[0\]\.auth\.file: unknown field$/],
    ['an unknown ledger field', { ...BASE, ledger: { retention: 5 } }, /gateway\.ledger\.retention: unknown field$/],
    ['an unknown contentLog field', { ...BASE, contentLog: { path: 'x', redacts: [] } }, /gateway\.contentLog\.redacts: unknown field$/],
    ['an unknown limit field', withLimit({ attribute: 'team', value: 'x', tokensPerHour: 5 }), /gateway\.limits\[0\]\.tokensPerHour: unknown field$/],
    ['a rule with both identity and attribute', withLimit({ identity: identifierFor(1), attribute: 'team', value: 'x', tokensPerMinute: 5 }), /gateway\.limits\[0\]\.(attribute|identity): unknown field$/],
    ['not an object', 'azure-openai', /gateway: Expected object/],
    ['null', null, /gateway: Expected object/],
    ['an array', [BASE], /gateway: Expected object/],
    ['another kind', { ...BASE, kind: 'openai' }, /gateway\.kind: /],
    ['no kind', { backends: BASE.backends }, /gateway\.kind: /],
    ['no backends', { kind: 'azure-openai' }, /gateway\.backends: /],
    ['an empty backend list', { ...BASE, backends: [] }, /gateway\.backends: /],
    ['17 backends', { ...BASE, backends: Array.from({ length: 17 }, (_, i) => ({ ...BACKEND, name: `b${i}` })) }, /gateway\.backends: /],
    ['two backends with one name', { ...BASE, backends: [BACKEND, { ...BACKEND, url: 'https://other.openai.azure.com' }] }, /gateway\.backends\[1\]\.name: "eastus" is used twice/],
    ['a backend name with a space', withBackend({ name: 'east us' }), /gateway\.backends\[0\]\.name: must be a name/],
    ['an ftp: URL', withBackend({ url: 'ftp://aoai.example.com' }), /gateway\.backends\[0\]\.url: must be https:\/\//],
    ['a file: URL', withBackend({ url: 'file:///etc/passwd' }), /gateway\.backends\[0\]\.url: must be https:\/\//],
    ['a URL with credentials', withBackend({ url: 'https://user:secret@aoai.example.com' }), /gateway\.backends\[0\]\.url: must not carry credentials/],
    ['a URL with a user only', withBackend({ url: 'https://user@aoai.example.com' }), /gateway\.backends\[0\]\.url: must not carry credentials/],
    ['a URL with a query', withBackend({ url: 'https://aoai.example.com/?api-version=1' }), /gateway\.backends\[0\]\.url: must not carry a query or fragment/],
    ['a URL with a fragment', withBackend({ url: 'https://aoai.example.com/#x' }), /gateway\.backends\[0\]\.url: must not carry a query or fragment/],
    ['not a URL', withBackend({ url: 'aoai.example.com' }), /gateway\.backends\[0\]\.url: "aoai\.example\.com" is not a URL/],
    ['a URL over 2048 characters', withBackend({ url: `https://a.example/${'x'.repeat(2_100)}` }), /gateway\.backends\[0\]\.url: /],
    ['a URL that is a number', withBackend({ url: 443 }), /gateway\.backends\[0\]\.url: /],
    ['a priority past 100', withBackend({ priority: 101 }), /gateway\.backends\[0\]\.priority: /],
    ['a weight of 0', withBackend({ weight: 0 }), /gateway\.backends\[0\]\.weight: /],
    ['a fractional weight', withBackend({ weight: 1.5 }), /gateway\.backends\[0\]\.weight: /],
    ['an unknown auth kind', withBackend({ auth: { kind: 'magic' } }), /gateway\.backends\[0\]\.auth\.kind: /],
    ['an api-key auth without a file', withBackend({ auth: { kind: 'api-key' } }), /gateway\.backends\[0\]\.auth\.file: /],
    ['a key file name with NUL', withBackend({ auth: { kind: 'api-key', file: 'k\u0000ey' } }), /gateway\.backends\[0\]\.auth\.file: must not contain NUL/],
    ['an empty deployment map target', withBackend({ deployments: { 'gpt-4o': '' } }), /gateway\.backends\[0\]\.deployments\.gpt-4o: /],
    ['a policy that does not parse', { ...BASE, deployments: { 'gpt-4o': 'team=research and (' } }, /gateway\.deployments\.gpt-4o: WICKET_ERR_POLICY_SYNTAX/],
    ['a policy that is empty', { ...BASE, deployments: { 'gpt-4o': '' } }, /gateway\.deployments\.gpt-4o: WICKET_ERR_POLICY_SYNTAX/],
    ['a policy that is not a string', { ...BASE, deployments: { 'gpt-4o': true } }, /gateway\.deployments\.gpt-4o: /],
    ['a limit rule with no limit', withLimit({ attribute: 'team', value: 'x' }), /gateway\.limits\[0\]: sets no limit/],
    ['an identity rule with no limit', withLimit({ identity: identifierFor(2) }), /gateway\.limits\[0\]: sets no limit/],
    ['an attribute name with =', withLimit({ attribute: 'team=x', value: 'y', tokensPerMinute: 1 }), /gateway\.limits\[0\]\.attribute: must not contain =/],
    ['an identity that is not one', withLimit({ identity: 'I123', tokensPerMinute: 1 }), /gateway\.limits\[0\]\.identity: must be an identifier/],
    ['an identity in upper-case hex', withLimit({ identity: `I${'A'.repeat(64)}`, tokensPerMinute: 1 }), /gateway\.limits\[0\]\.identity: /],
    ['a rate of 0', withLimit({ attribute: 'team', value: 'x', tokensPerMinute: 0 }), /gateway\.limits\[0\]\.tokensPerMinute: /],
    ['a negative rate', withLimit({ attribute: 'team', value: 'x', requestsPerMinute: -5 }), /gateway\.limits\[0\]\.requestsPerMinute: /],
    ['a rate as a string', withLimit({ attribute: 'team', value: 'x', tokensPerDay: '100' }), /gateway\.limits\[0\]\.tokensPerDay: /],
    ['a rule that is null', { ...BASE, limits: [null] }, /gateway\.limits\[0\]: /],
    ['a redact pattern that is not a regular expression', { ...BASE, contentLog: { path: 'x', redact: ['ok', '(unclosed'] } }, /gateway\.contentLog\.redact\[1\]: is not a regular expression/],
    ['a content log without a path', { ...BASE, contentLog: {} }, /gateway\.contentLog\.path: /],
    ['a tiny content entry cap', { ...BASE, contentLog: { path: 'x', maxEntryBytes: 10 } }, /gateway\.contentLog\.maxEntryBytes: /],
    ['a retention of 0 days', { ...BASE, ledger: { retentionDays: 0 } }, /gateway\.ledger\.retentionDays: /],
    ['an empty sharedCounters path', { ...BASE, sharedCounters: '' }, /gateway\.sharedCounters: /],
  ])('refuses %s', (_what, value, expected) => {
    expect(problem(value)).toMatch(expected);
  });

  it('keeps a message short when an unknown field name is huge', () => {
    const message = problem({ ...BASE, ['k'.repeat(100_000)]: 1 });
    expect(message).toBe(`WICKET_ERR_CONFIG: ${FIELD}.${'k'.repeat(40)}: unknown field`);
  });

  it('keeps a message short for a huge bad URL or policy', () => {
    expect(problem(withBackend({ url: 'x'.repeat(2_000) })).length).toBeLessThan(300);
    expect(problem({ ...BASE, deployments: { ['d'.repeat(200)]: '('.repeat(5_000) } }).length).toBeLessThan(300);
  });

  it('never throws a foreign error on seeded random shapes', () => {
    const random = seededRandom(0x6a7e);
    const keys = ['kind', 'backends', 'limits', 'deployments', 'ledger', 'contentLog', 'name', 'url', 'auth', 'file', 'identity', 'attribute', 'value', 'tokensPerMinute', '__proto__', 'constructor'];
    const value = (depth: number): unknown => {
      switch (Math.floor(random() * (depth > 3 ? 5 : 7))) {
        case 0: return null;
        case 1: return Math.floor(random() * 200) - 100;
        case 2: return ['azure-openai', 'entra', 'api-key', 'https://a.example', 'team=x', '', 'a=b'][Math.floor(random() * 7)];
        case 3: return random() < 0.5;
        case 4: return undefined;
        case 5: return Array.from({ length: Math.floor(random() * 3) }, () => value(depth + 1));
        default: return Object.fromEntries(Array.from({ length: Math.floor(random() * 4) }, () => [keys[Math.floor(random() * keys.length)]!, value(depth + 1)]));
      }
    };
    for (let n = 0; n < 1_000; n++) {
      const candidate = random() < 0.5 ? { ...BASE, [keys[Math.floor(random() * keys.length)]!]: value(0) } : value(0);
      expect(['accepted', 'WICKET_ERR_CONFIG']).toContain(codeOf(() => validateGatewaySpec(candidate, FIELD, 'WICKET_ERR_CONFIG')));
    }
  });
});

describe('gateway spec: credentials never go over plain HTTP off the machine', () => {
  it('refuses http:// with a credential unless the backend is on loopback', () => {
    const spec = (url: string, auth: Record<string, unknown>) => ({ kind: 'azure-openai', backends: [{ name: 'b', url, auth }] });
    expect(() => validateGatewaySpec(spec('http://aoai.example.com', { kind: 'entra' }), 'gateway', 'WICKET_ERR_CONFIG')).toThrow(/gateway\.backends\[0\]\.url: http:\/\/ would send the entra credential in clear text/);
    expect(() => validateGatewaySpec(spec('http://10.0.0.4:8080', { kind: 'api-key', file: '/k' }), 'gateway', 'WICKET_ERR_CONFIG')).toThrow(/clear text/);
    expect(validateGatewaySpec(spec('http://127.0.0.1:8080', { kind: 'entra' }), 'gateway', 'WICKET_ERR_CONFIG').backends[0]?.url).toBe('http://127.0.0.1:8080');
    expect(validateGatewaySpec(spec('http://localhost:8080', { kind: 'api-key', file: '/k' }), 'gateway', 'WICKET_ERR_CONFIG').backends).toHaveLength(1);
    expect(validateGatewaySpec(spec('http://models.internal:8000', { kind: 'none' }), 'gateway', 'WICKET_ERR_CONFIG').backends).toHaveLength(1);
  });
});
