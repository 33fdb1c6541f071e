import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBlueprint } from '../../scripts/azure/blueprint.js';
import { formatPlan, plannedResources } from '../../scripts/azure/plan.js';
import { loadSettings } from '../../scripts/azure/settings.js';
import { startArmStandIn, type ArmStandIn } from '../helpers/arm-standin/index.js';
import { blueprintFor, demoEnv, RUN_SH, runScript } from './run-script.js';

// `./scripts/run.sh plan` prints every resource with its facts and calls nothing in Azure: the
// stand-in it is pointed at must see no request at all.

let standIn: ArmStandIn;
let emptyAzDir: string;

beforeAll(async () => {
  standIn = await startArmStandIn();
  emptyAzDir = await mkdtemp(join(tmpdir(), 'wicket-no-az-'));
});

afterAll(async () => {
  await standIn?.close();
  await rm(emptyAzDir, { recursive: true, force: true });
});

describe('run.sh plan', () => {
  it('prints the whole blueprint, named after the token principal, without one request to ARM', async () => {
    const env = demoEnv(standIn);
    const result = await runScript(['plan'], env);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(standIn.arm.requests).toEqual([]);
    const bp = blueprintFor(standIn, env);
    expect(result.stdout).toBe(formatPlan(bp, true));
    for (const r of plannedResources(bp)) expect(result.stdout).toContain(r.name);
    for (const fact of [
      '10.10.0.0/16',
      'subnet relay 10.10.1.0/24',
      '10.20.0.0/16',
      'subnet private-endpoints 10.20.2.0/24',
      '10.30.0.0/16',
      'inbound  100 allow tcp/443 from anywhere',
      'inbound 4096 deny  all traffic from anywhere',
      'size Standard_B2s; image Canonical:ubuntu-24_04-lts:server:latest',
      'gpt-4o-mini version 2024-07-18',
      'public network access Disabled; network ACLs default Deny',
      'group id account',
    ]) {
      expect(result.stdout).toContain(fact);
    }
    expect(result.stdout).not.toContain('tcp/22');
    expect(result.stdout).toContain('23 resources in 3 resource groups.');
  });

  it("says AI Corp's outlet is the Azure OpenAI gateway on the VM's managed identity, and where its usage is", async () => {
    const result = await runScript(['plan'], demoEnv(standIn));
    expect(result.code).toBe(0);
    const aiCorp = result.stdout.slice(result.stdout.indexOf('\nai-corp:'), result.stdout.indexOf('\nhealth-corp:'));
    expect(aiCorp).toContain('outlet openai = Azure OpenAI gateway -> https://');
    expect(aiCorp).toContain("outlet: the Azure OpenAI gateway, authenticated by this VM's managed identity (no API key, no separate token proxy)");
    expect(aiCorp).toContain('usage: recorded per caller identity in the agent home /var/lib/wicket; see it with `agent usage` on this VM');
    expect(aiCorp).toContain('local (key) auth disabled');
    expect(aiCorp).toContain('Cognitive Services OpenAI User');
    expect(result.stdout).not.toMatch(/8081|token proxy 127/);
  });

  it('makes no call even with DefaultAzureCredential, and shows SSH only from ADMIN_CIDR', async () => {
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: emptyAzDir,
      AZURE_CONFIG_DIR: emptyAzDir,
      AZURE_SUBSCRIPTION_ID: '00000000-0000-0000-0000-000000000000',
      AZURE_PRINCIPAL_ID: '12345678-1234-1234-1234-123456789abc',
      ADMIN_CIDR: '203.0.113.9/32',
      VM_SIZE: 'Standard_D2s_v5',
      LOCATION: 'westeurope',
      WICKET_REPO: 'git@github.com:example/wicket.git',
      WICKET_REF: 'main',
    };
    const result = await runScript(['plan'], env);
    expect(result.code).toBe(0);
    const bp = buildBlueprint(loadSettings({ env }), '00000000-0000-0000-0000-000000000000', { kind: 'principal', objectId: '12345678-1234-1234-1234-123456789abc' });
    expect(result.stdout).toBe(formatPlan(bp, true));
    expect(result.stdout).toContain('inbound  110 allow tcp/22 from 203.0.113.9/32');
    expect(result.stdout).toContain('size Standard_D2s_v5');
    expect(result.stdout).toContain('location      westeurope');
    expect(result.stdout).toContain('https://github.com/example/wicket.git at main');
  });

  it('says the names are provisional when it cannot know the principal offline', async () => {
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: emptyAzDir, AZURE_CONFIG_DIR: emptyAzDir, AZURE_SUBSCRIPTION_ID: '00000000-0000-0000-0000-000000000000' };
    const result = await runScript(['plan'], env);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('set AZURE_PRINCIPAL_ID');
  });

  it('refuses to plan without a subscription (WICKET_ERR_AZURE_CONFIG)', async () => {
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: emptyAzDir, AZURE_CONFIG_DIR: emptyAzDir };
    const result = await runScript(['plan'], env);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^WICKET_ERR_AZURE_CONFIG: no subscription: set AZURE_SUBSCRIPTION_ID/);
  });

  it('rejects unknown commands and extra arguments before starting node', async () => {
    const env = { PATH: process.env.PATH };
    const unknown = await runScript(['deploy'], env);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("unknown command 'deploy'");
    const extra = await runScript(['up', 'now'], env);
    expect(extra.code).toBe(2);
    const help = await new Promise<string>((resolve) => execFile(RUN_SH, ['--help'], { env }, (_e, out) => resolve(out)));
    expect(help).toContain('./scripts/run.sh plan');
  });
});
