import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { isWicketError } from '../../protocol/errors.js';
import { relayNsgRules, roleAssignmentName } from '../../scripts/azure/blueprint.js';
import { nameHash, principalFromToken, resourceNames } from '../../scripts/azure/naming.js';
import { httpsCloneUrl, loadSettings, requireSubscription, type SettingsSources } from '../../scripts/azure/settings.js';
import { throwawaySshPublicKey } from '../../scripts/azure/ssh-key.js';

// Settings from the environment, names, and the small pure pieces `up` is built from.

const SUB = '00000000-0000-0000-0000-000000000000';

function configError(sources: SettingsSources): string {
  try {
    loadSettings(sources);
  } catch (err) {
    if (isWicketError(err, 'WICKET_ERR_AZURE_CONFIG')) return err.message;
    throw err;
  }
  throw new Error('expected WICKET_ERR_AZURE_CONFIG');
}

describe('settings', () => {
  it('defaults to public Azure in eastus and names the missing subscription', () => {
    const s = loadSettings({ env: {} });
    expect(s.location).toBe('eastus');
    expect(s.armEndpoint).toBe('https://management.azure.com');
    expect(s.armScope).toBe('https://management.azure.com/.default');
    expect(() => requireSubscription(s)).toThrow(/WICKET_ERR_AZURE_CONFIG: no subscription: set AZURE_SUBSCRIPTION_ID/);
    expect(loadSettings({ env: {}, defaultSubscription: () => SUB }).subscriptionId).toBe(SUB);
  });

  it('uses a static bearer token only together with AZURE_ARM_ENDPOINT', () => {
    const alone = loadSettings({ env: { AZURE_ACCESS_TOKEN: 'abc' } });
    expect(alone.staticToken).toBeUndefined();
    expect(alone.staticTokenIgnored).toBe(true);
    const paired = loadSettings({ env: { AZURE_ACCESS_TOKEN: 'abc', AZURE_ARM_ENDPOINT: 'https://arm.example.test:8443/' } });
    expect(paired.staticToken?.reveal()).toBe('abc');
    expect(String(paired.staticToken)).toBe('[REDACTED]');
    expect(paired.armEndpoint).toBe('https://arm.example.test:8443');
    expect(paired.armScope).toBe('https://arm.example.test:8443/.default');
  });

  it('refuses a plain-http ARM endpoint: a bearer token must not travel in clear', () => {
    expect(configError({ env: { AZURE_ARM_ENDPOINT: 'http://127.0.0.1:8080' } })).toContain('must be https://');
  });

  it('refuses an ADMIN_CIDR that is malformed or opens SSH to everyone', () => {
    expect(configError({ env: { ADMIN_CIDR: '0.0.0.0/0' } })).toContain('whole internet');
    expect(configError({ env: { ADMIN_CIDR: '300.1.1.1/32' } })).toContain('out of range');
    expect(configError({ env: { ADMIN_CIDR: '10.0.0.1' } })).toContain('IPv4 CIDR');
    expect(loadSettings({ env: { ADMIN_CIDR: '198.51.100.7/32' } }).adminCidr).toBe('198.51.100.7/32');
  });

  it('refuses values that would reach a VM shell with metacharacters', () => {
    expect(configError({ env: { WICKET_REPO: 'https://example.com/$(reboot).git' } })).toContain('WICKET_REPO');
    expect(configError({ env: { WICKET_REF: '--upload-pack=evil' } })).toContain('WICKET_REF');
    expect(configError({ env: { WICKET_REF: 'main;reboot' } })).toContain('WICKET_REF');
    expect(configError({ env: { AZURE_SUBSCRIPTION_ID: 'not-a-guid' } })).toContain('GUID');
    expect(configError({ env: { LOCATION: 'East US' } })).toContain('LOCATION');
  });

  it('turns an scp-style origin into an https URL the VMs can clone without keys', () => {
    expect(httpsCloneUrl('git@github.com:example/wicket.git')).toBe('https://github.com/example/wicket.git');
    const s = loadSettings({ env: {}, git: { origin: () => 'git@github.com:example/wicket.git', head: () => 'abc123' } });
    expect(s.wicketRepo).toBe('https://github.com/example/wicket.git');
    expect(s.wicketRef).toBe('abc123');
  });

  it('treats an origin no VM can clone (a local path) as unset, but refuses such an explicit WICKET_REPO', () => {
    const git = { origin: () => '/srv/checkouts/wicket', head: () => 'abc123' };
    expect(loadSettings({ env: {}, git }).wicketRepo).toBeUndefined();
    expect(configError({ env: { WICKET_REPO: '/srv/checkouts/wicket' }, git })).toContain('WICKET_REPO must be a git URL');
  });
});

describe('names', () => {
  it('carry a six-hex hash of the principal, stable and different per principal', () => {
    const a = nameHash({ kind: 'principal', objectId: '11111111-1111-1111-1111-111111111111' });
    expect(a).toMatch(/^[0-9a-f]{6}$/);
    expect(nameHash({ kind: 'principal', objectId: '11111111-1111-1111-1111-111111111111' })).toBe(a);
    expect(nameHash({ kind: 'principal', objectId: '22222222-2222-2222-2222-222222222222' })).not.toBe(a);
    expect(nameHash({ kind: 'subscription', subscriptionId: '11111111-1111-1111-1111-111111111111' })).not.toBe(a);
    const n = resourceNames(a);
    expect(n.relay.group).toBe(`wicket-${a}-relay`);
    expect(n.aiCorp.account).toMatch(/^[a-z0-9-]{2,64}$/);
  });

  it('read the oid of a JWT locally, and nothing from an opaque token', () => {
    const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const oid = 'AAAAAAAA-1111-2222-3333-444444444444';
    expect(principalFromToken(`${part({ alg: 'RS256' })}.${part({ oid })}.sig`)).toBe(oid.toLowerCase());
    expect(principalFromToken(`${part({ alg: 'RS256' })}.${part({ sub: 'x' })}.sig`)).toBeUndefined();
    expect(principalFromToken('opaque-token')).toBeUndefined();
    expect(principalFromToken('a.%%%.c')).toBeUndefined();
  });

  it('give the role assignment a deterministic GUID so a re-run finds it', () => {
    const g = roleAssignmentName('/subscriptions/s/x', '/subscriptions/s/vm', 'role');
    expect(g).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(roleAssignmentName('/SUBSCRIPTIONS/s/x', '/subscriptions/s/VM', 'role')).toBe(g);
    expect(roleAssignmentName('/subscriptions/s/x', '/subscriptions/s/vm2', 'role')).not.toBe(g);
  });
});

describe('relay NSG', () => {
  it('without ADMIN_CIDR allows 443 alone and denies everything else', () => {
    const rules = relayNsgRules(undefined);
    expect(rules.filter((r) => r.access === 'Allow').map((r) => r.destinationPortRange)).toEqual(['443']);
    expect(rules.at(-1)).toMatchObject({ access: 'Deny', sourceAddressPrefix: '*', destinationPortRange: '*' });
  });
});

describe('throwaway SSH key', () => {
  const keygen = spawnSync('ssh-keygen', ['-?'], { encoding: 'utf8' });
  const hasKeygen = keygen.error === undefined;
  if (!hasKeygen) console.warn('skipping the ssh-keygen check: ssh-keygen is not installed');
  it.skipIf(!hasKeygen)('is an OpenSSH RSA public key that ssh-keygen accepts', () => {
    const key = throwawaySshPublicKey();
    expect(key).toMatch(/^ssh-rsa AAAA[A-Za-z0-9+/=]+ wicket-throwaway-no-private-key$/);
    const check = spawnSync('ssh-keygen', ['-l', '-f', '-'], { input: `${key}\n`, encoding: 'utf8' });
    expect(check.stderr).toBe('');
    expect(check.stdout).toMatch(/^2048 SHA256:\S+ wicket-throwaway-no-private-key \(RSA\)/);
  });
});

describe('pinned Azure SDKs', () => {
  it('pins every @azure package exactly: each version hard-codes its ARM api-version', () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
    // The ARM SDKs are devDependencies (scripts/azure runs from a checkout), @azure/identity a runtime one.
    const azure = Object.entries({ ...pkg.dependencies, ...pkg.devDependencies }).filter(([name]) => name.startsWith('@azure/'));
    expect(azure.map(([n]) => n).sort()).toEqual(
      ['@azure/arm-cognitiveservices', '@azure/arm-compute', '@azure/arm-network', '@azure/arm-privatedns', '@azure/arm-resources', '@azure/identity'].sort(),
    );
    for (const [, version] of azure) expect(version).toMatch(/^\d+\.\d+\.\d+$/);
  });
});
