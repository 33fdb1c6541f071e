import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blueprintIds, OPENAI_USER_ROLE_ID, type Blueprint, type BlueprintIds } from '../../scripts/azure/blueprint.js';
import { parseCloudConfig, type CloudConfig } from '../../scripts/azure/cloud-init.js';
import { plannedResources } from '../../scripts/azure/plan.js';
import { adminTicketPath } from '../../scripts/azure/tickets.js';
import { startArmStandIn, type ArmStandIn } from '../helpers/arm-standin/index.js';
import type { Json } from '../helpers/arm-standin/store.js';
import { DEFAULT_DEMO_ANSWER } from '../helpers/arm-standin/vm-emulator.js';
import { blueprintFor, demoEnv, runScript, type ScriptResult } from './run-script.js';

// `./scripts/run.sh up`, then again, then `cleanup`, against the ARM stand-in with the real SDK
// clients in a child process. The assertions read what the stand-in holds afterwards.

const ADMIN_CIDR = '198.51.100.7/32';

let standIn: ArmStandIn;
let env: NodeJS.ProcessEnv;
let bp: Blueprint;
let ids: BlueprintIds;
let first: ScriptResult;
let firstRequestCount: number;

function body(id: string): Json {
  const found = standIn.arm.store.read(id);
  if (!found) throw new Error(`stand-in holds no ${id}`);
  return found;
}

function props(id: string): Json {
  return (body(id).properties ?? {}) as Json;
}

function cloudConfigOf(vmId: string): CloudConfig {
  const data = standIn.arm.store.get(vmId)?.writeOnly.customData;
  if (typeof data !== 'string') throw new Error(`no customData on ${vmId}`);
  return parseCloudConfig(Buffer.from(data, 'base64').toString('utf8'));
}

function fileIn(config: CloudConfig, path: string): { content: string; permissions: string } {
  const f = config.write_files.find((w) => w.path === path);
  if (!f) throw new Error(`cloud-init writes no ${path}`);
  return f;
}

function inboundRules(nsgId: string): Json[] {
  return ((props(nsgId).securityRules ?? []) as Json[]).filter((r) => (r.properties as Json).direction === 'Inbound');
}

beforeAll(async () => {
  standIn = await startArmStandIn();
  env = demoEnv(standIn, { ADMIN_CIDR });
  bp = blueprintFor(standIn, env);
  ids = blueprintIds(bp);
  first = await runScript(['up'], env);
  firstRequestCount = standIn.arm.requests.length;
}, 120_000);

afterAll(async () => {
  await standIn?.close();
});

describe('run.sh up against the ARM stand-in', () => {
  it('completes and prints the demo client answer on stdout, progress on stderr', () => {
    expect(first.stderr).not.toMatch(/WICKET_ERR_/);
    expect(first.code).toBe(0);
    expect(first.stdout.trim()).toBe(DEFAULT_DEMO_ANSWER);
    expect(first.stderr).toContain('created  virtual machine');
  });

  it('creates exactly the resources the plan lists, in the plan names', async () => {
    const planned = plannedResources(bp).map((r) => r.id.toLowerCase()).sort();
    const held = [...standIn.arm.store.resources.values()].map((r) => r.id.toLowerCase()).sort();
    expect(held).toEqual(planned);
    // And `run.sh plan` with the same settings names every one of them.
    const plan = await runScript(['plan'], env);
    expect(plan.code).toBe(0);
    for (const r of standIn.arm.store.resources.values()) expect(plan.stdout).toContain(String(r.body.name));
  });

  it('sends a bearer token and an api-version with every request', () => {
    expect(standIn.arm.requests.length).toBeGreaterThan(50);
    expect(standIn.arm.requests.every((r) => r.apiVersion !== null && r.status !== 401 && r.status !== 400)).toBe(true);
  });

  it("gives ai-corp's and health-corp's VNets NSGs that admit nothing from the internet", () => {
    for (const nsg of [ids.aiCorp.nsg, ids.healthCorp.nsg]) {
      const rules = inboundRules(nsg);
      expect(rules.filter((r) => (r.properties as Json).access === 'Allow')).toEqual([]);
      expect(rules.map((r) => r.properties)).toContainEqual(expect.objectContaining({ access: 'Deny', sourceAddressPrefix: '*', destinationPortRange: '*', protocol: '*' }));
    }
    for (const [vnet, nsg] of [
      [ids.aiCorp.vnet, ids.aiCorp.nsg],
      [ids.healthCorp.vnet, ids.healthCorp.nsg],
    ] as const) {
      const appSubnet = (props(vnet).subnets as Json[]).find((s) => s.name === 'app');
      expect(((appSubnet?.properties as Json).networkSecurityGroup as Json).id).toBe(nsg);
    }
  });

  it('gives the agent VMs no public IP: their only NIC has none', () => {
    for (const [vm, nic] of [
      [ids.aiCorp.vm, ids.aiCorp.nic],
      [ids.healthCorp.vm, ids.healthCorp.nic],
    ] as const) {
      const nics = ((props(vm).networkProfile as Json).networkInterfaces as Json[]).map((n) => n.id);
      expect(nics).toEqual([nic]);
      for (const ipc of props(nic).ipConfigurations as Json[]) expect((ipc.properties as Json).publicIPAddress).toBeUndefined();
    }
    const publicIps = [...standIn.arm.store.resources.values()].filter((r) => r.type === 'Microsoft.Network/publicIPAddresses');
    expect(publicIps.map((r) => r.id)).toEqual([ids.relay.publicIp]);
  });

  it("admits only 443 to the relay, and 22 only from ADMIN_CIDR", () => {
    const allows = inboundRules(ids.relay.nsg)
      .map((r) => r.properties as Json)
      .filter((p) => p.access === 'Allow');
    expect(allows).toHaveLength(2);
    expect(allows).toContainEqual(expect.objectContaining({ protocol: 'Tcp', destinationPortRange: '443', sourceAddressPrefix: '*' }));
    expect(allows).toContainEqual(expect.objectContaining({ protocol: 'Tcp', destinationPortRange: '22', sourceAddressPrefix: ADMIN_CIDR }));
    const relayNic = props(ids.relay.nic).ipConfigurations as Json[];
    expect(((relayNic[0]?.properties as Json).publicIPAddress as Json).id).toBe(ids.relay.publicIp);
  });

  it('makes an OpenAI account reachable only privately, with the gpt-4o-mini 2024-07-18 deployment', () => {
    const account = body(ids.aiCorp.account);
    expect(account.kind).toBe('OpenAI');
    const p = account.properties as Json;
    expect(p.customSubDomainName).toBe(bp.names.aiCorp.account);
    expect(p.publicNetworkAccess).toBe('Disabled');
    expect((p.networkAcls as Json).defaultAction).toBe('Deny');
    expect(p.disableLocalAuth).toBe(true);
    const model = (props(ids.aiCorp.deployment).model ?? {}) as Json;
    expect(model).toEqual({ format: 'OpenAI', name: 'gpt-4o-mini', version: '2024-07-18' });
  });

  it('points the private endpoint at the account (group id account) and links the privatelink DNS zone', () => {
    const pe = props(ids.aiCorp.privateEndpoint);
    expect((pe.subnet as Json).id).toBe(ids.aiCorp.endpointSubnet);
    const connection = (pe.privateLinkServiceConnections as Json[])[0]?.properties as Json;
    expect(connection.privateLinkServiceId).toBe(ids.aiCorp.account);
    expect(connection.groupIds).toEqual(['account']);
    expect(ids.aiCorp.dnsZone.endsWith('/privateDnsZones/privatelink.openai.azure.com')).toBe(true);
    const link = props(ids.aiCorp.dnsLink);
    expect((link.virtualNetwork as Json).id).toBe(ids.aiCorp.vnet);
    expect(link.registrationEnabled).toBe(false);
    const zoneConfigs = props(ids.aiCorp.zoneGroup).privateDnsZoneConfigs as Json[];
    expect(zoneConfigs.map((c) => (c.properties as Json).privateDnsZoneId)).toEqual([ids.aiCorp.dnsZone]);
  });

  it("lets only AI Corp's VM identity call the model: OpenAI User role on the account", () => {
    const identity = body(ids.aiCorp.vm).identity as Json;
    expect(identity.type).toBe('SystemAssigned');
    const principal = identity.principalId;
    expect(typeof principal).toBe('string');
    const ra = props(ids.aiCorp.roleAssignment);
    expect(ra.principalId).toBe(principal);
    expect(ra.principalType).toBe('ServicePrincipal');
    expect(String(ra.roleDefinitionId).endsWith(`/roleDefinitions/${OPENAI_USER_ROLE_ID}`)).toBe(true);
    expect(ra.scope).toBe(ids.aiCorp.account);
  });

  it('mints one-use 60-minute tickets on the relay: outlet with relay name openai, inlet without', () => {
    const minted = standIn.vms.minted;
    expect(minted.map((m) => m.vmName)).toEqual([bp.names.relay.vm, bp.names.relay.vm]);
    const outlet = minted.find((m) => m.attributes.includes('openai-outlet'));
    const inlet = minted.find((m) => m.attributes.includes('openai-inlet'));
    expect(outlet).toMatchObject({ attributes: ['openai-outlet'], relayNames: ['openai'], usageCount: '1', expiresIn: '60m' });
    expect(inlet).toMatchObject({ attributes: ['openai-inlet'], relayNames: [], usageCount: '1', expiresIn: '60m' });
  });

  it("gives each agent VM's cloud-init its own ticket and nothing else secret; the relay's holds none", () => {
    const outletTicket = standIn.vms.minted.find((m) => m.attributes.includes('openai-outlet'))?.ticket ?? '';
    const inletTicket = standIn.vms.minted.find((m) => m.attributes.includes('openai-inlet'))?.ticket ?? '';
    const ai = cloudConfigOf(ids.aiCorp.vm);
    const health = cloudConfigOf(ids.healthCorp.vm);
    const relay = cloudConfigOf(ids.relay.vm);
    for (const [config, own] of [
      [ai, outletTicket],
      [health, inletTicket],
    ] as const) {
      const text = JSON.stringify(config);
      expect(text.match(/wkt1_[A-Za-z0-9_-]+/g)).toEqual([own]);
      expect(fileIn(config, '/etc/wicket/ticket')).toMatchObject({ content: `${own}\n`, permissions: '0600' });
      expect(text).not.toMatch(/api-key\s*[:=]|key1|AZURE_OPENAI_API_KEY=(?!placeholder)/);
    }
    expect(JSON.stringify(relay)).not.toContain('wkt1_');
    expect(fileIn(relay, '/etc/systemd/system/wicket-relay.service').content).toContain(
      `relay.js start --listen 0.0.0.0:443 --data /var/lib/wicket-relay --public-url wss://${String(props(ids.relay.publicIp).ipAddress)}:443`,
    );
  });

  it("runs the outlet as the Azure OpenAI gateway to the account's endpoint (no token proxy), and the inlet on 127.0.0.1:8443", () => {
    const ai = cloudConfigOf(ids.aiCorp.vm);
    const endpoint = new URL(String(props(ids.aiCorp.account).endpoint)).origin;
    expect(JSON.parse(fileIn(ai, '/etc/wicket/node.json').content)).toEqual({
      outlets: [
        {
          name: 'openai',
          relay: 'openai',
          allow: 'openai-inlet',
          gateway: { kind: 'azure-openai', backends: [{ name: bp.location, url: endpoint, auth: { kind: 'entra' } }] },
        },
      ],
      inlets: [],
    });
    expect(fileIn(ai, '/etc/systemd/system/wicket-agent.service').content).toContain('node start --config /etc/wicket/node.json\n');
    expect(fileIn(ai, '/usr/local/lib/wicket/bootstrap.sh').content).toContain('services=(wicket-agent.service)\n');
    expect(JSON.stringify(ai)).not.toMatch(/token-proxy|8081/);
    const health = cloudConfigOf(ids.healthCorp.vm);
    expect(JSON.parse(fileIn(health, '/etc/wicket/node.json').content)).toEqual({
      outlets: [],
      inlets: [{ name: 'openai', from: '127.0.0.1:8443', via: 'openai', allow: 'openai-outlet' }],
    });
    expect(fileIn(health, '/usr/local/lib/wicket/run-demo.sh').content).toContain("--endpoint 'http://127.0.0.1:8443' --deployment 'gpt-4o-mini'");
  });

  it('never prints a ticket, and saves the admin ticket for the operator with mode 0600', () => {
    const admin = standIn.vms.adminTicket;
    expect(admin).toMatch(/^wkt1_/);
    const everything = first.stdout + first.stderr;
    for (const t of [admin ?? 'x', ...standIn.vms.minted.map((m) => m.ticket)]) expect(everything).not.toContain(t);
    expect(everything).not.toContain('wkt1_');
    const path = adminTicketPath(String(env.WICKET_AZURE_STATE_DIR), bp.hash);
    expect(readFileSync(path, 'utf8')).toBe(`${admin}\n`);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(dirname(path)).mode & 0o777).toBe(0o700);
  });

  it('resumes on a re-run: nothing is put again, no ticket is minted, the answer comes back', async () => {
    const mintedBefore = standIn.vms.minted.length;
    const again = await runScript(['up'], env);
    expect(again.code).toBe(0);
    expect(again.stdout.trim()).toBe(DEFAULT_DEMO_ANSWER);
    const later = standIn.arm.requests.slice(firstRequestCount);
    expect(later.filter((r) => r.method === 'PUT' || r.method === 'DELETE')).toEqual([]);
    expect(standIn.vms.minted.length).toBe(mintedBefore);
    expect(again.stderr).toContain('exists   virtual machine');
    expect(again.stderr).toContain('exists   admin ticket');
  });

  it('cleanup deletes the three resource groups, purges the soft-deleted account, forgets the admin ticket', async () => {
    const result = await runScript(['cleanup'], env);
    expect(result.stderr).not.toMatch(/WICKET_ERR_/);
    expect(result.code).toBe(0);
    const deletes = standIn.arm.requests.filter((r) => r.method === 'DELETE' && /\/resourcegroups\/[^/]+$/i.test(r.path)).map((r) => r.path.split('/').pop());
    expect(deletes.sort()).toEqual([bp.relay.group, bp.aiCorp.group, bp.healthCorp.group].sort());
    expect(standIn.arm.store.resources.size).toBe(0);
    expect(standIn.arm.store.softDeletedAccounts.size).toBe(0);
    expect(existsSync(adminTicketPath(String(env.WICKET_AZURE_STATE_DIR), bp.hash))).toBe(false);
    // And cleanup again finds nothing to do, which is not an error.
    const twice = await runScript(['cleanup'], env);
    expect(twice.code).toBe(0);
    expect(twice.stderr).toContain('absent   resource group');
  });
});
