import { readFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { isWicketError, type WicketError } from '../../protocol/errors.js';
import { blueprintIds } from '../../scripts/azure/blueprint.js';
import { parseCloudConfig } from '../../scripts/azure/cloud-init.js';
import { loadSettings } from '../../scripts/azure/settings.js';
import { up } from '../../scripts/azure/up.js';
import { startArmStandIn, type ArmStandIn } from '../helpers/arm-standin/index.js';
import { blueprintFor, demoEnv } from './run-script.js';

// Failures and resumption, with `up` called in-process (the real SDK clients, trusting the
// stand-in's CA through an https.Agent) so each scenario costs milliseconds, not a process start.
// test/azure/up.test.ts runs the same code through ./scripts/run.sh.

interface Run {
  error: WicketError | undefined;
  log: string;
  stdout: string;
}

const open: Array<{ standIn: ArmStandIn; agent: Agent }> = [];

afterEach(async () => {
  for (const { standIn, agent } of open.splice(0)) {
    agent.destroy();
    await standIn.close();
  }
});

async function standInWithAgent(options: Parameters<typeof startArmStandIn>[0] = {}) {
  const standIn = await startArmStandIn(options);
  const agent = new Agent({ ca: readFileSync(standIn.caCertPath), keepAlive: true });
  open.push({ standIn, agent });
  return { standIn, agent };
}

function sink(): { stream: Writable; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk.toString('utf8'));
      done();
    },
  });
  return { stream, text: () => chunks.join('') };
}

async function runUp(standIn: ArmStandIn, agent: Agent, env: NodeJS.ProcessEnv = demoEnv(standIn)): Promise<Run> {
  const log = sink();
  const out = sink();
  const progress = { say: (group: string, text: string) => log.stream.write(`[${group}] ${text}\n`) };
  let error: WicketError | undefined;
  try {
    await up(loadSettings({ env }), { progress, out: out.stream, clientOptions: { agent } });
  } catch (err) {
    if (!isWicketError(err)) throw err;
    error = err;
  }
  return { error, log: log.text(), stdout: out.text() };
}

function writes(standIn: ArmStandIn, from: number): string[] {
  return standIn.arm.requests
    .slice(from)
    .filter((r) => r.method === 'PUT' || r.method === 'DELETE')
    .map((r) => `${r.method} ${r.path.toLowerCase()}`);
}

describe('up when Azure says no', () => {
  it('names the resource and Azure’s code for a quota 4xx and for an operation that ends Failed, then resumes', async () => {
    const { standIn, agent } = await standInWithAgent();
    const env = demoEnv(standIn);
    const bp = blueprintFor(standIn, env);
    const ids = blueprintIds(bp);
    standIn.arm.injectFailure({
      method: 'PUT',
      resourceName: bp.names.healthCorp.vm,
      mode: 'http',
      status: 409,
      code: 'QuotaExceeded',
      message: 'Operation could not be completed as it results in exceeding approved standardBSFamily Cores quota.',
    });
    standIn.arm.injectFailure({
      method: 'PUT',
      resourceName: bp.names.aiCorp.privateEndpoint,
      mode: 'async',
      code: 'PrivateEndpointCreationFailed',
      message: 'Call to Microsoft.CognitiveServices/accounts failed.',
    });

    const failed = await runUp(standIn, agent, env);
    expect(failed.error?.code).toBe('WICKET_ERR_AZURE_OPERATION');
    const reported = `${failed.error?.message}\n${failed.log}`;
    expect(reported).toContain(
      `creating virtual machine '${bp.names.healthCorp.vm}' in resource group '${bp.healthCorp.group}' failed: QuotaExceeded (HTTP 409): Operation could not be completed as it results in exceeding approved standardBSFamily Cores quota.`,
    );
    expect(reported).toContain(
      `creating private endpoint '${bp.names.aiCorp.privateEndpoint}' in resource group '${bp.aiCorp.group}' failed: PrivateEndpointCreationFailed: Call to Microsoft.CognitiveServices/accounts failed.`,
    );
    expect(failed.stdout).toBe('');
    expect(standIn.arm.store.read(ids.aiCorp.privateEndpoint)?.properties).toMatchObject({ provisioningState: 'Failed' });
    expect(standIn.arm.store.get(ids.healthCorp.vm)).toBeUndefined();

    const succeededBefore = [...standIn.arm.store.resources.values()]
      .filter((r) => (r.body.properties as { provisioningState?: string }).provisioningState === 'Succeeded')
      .map((r) => r.id.toLowerCase());
    const mark = standIn.arm.requests.length;
    const resumed = await runUp(standIn, agent, env);
    expect(resumed.error).toBeUndefined();
    expect(resumed.stdout.trim()).not.toBe('');
    expect(resumed.log).toContain(`resuming private endpoint ${bp.names.aiCorp.privateEndpoint} (was Failed)`);
    const again = writes(standIn, mark);
    for (const id of succeededBefore) expect(again).not.toContain(`PUT ${id}`);
    expect(again).toContain(`PUT ${ids.aiCorp.privateEndpoint.toLowerCase()}`);
    expect(again).toContain(`PUT ${ids.healthCorp.vm.toLowerCase()}`);
  });

  it('replaces a VM whose creation ended Failed, with a freshly minted ticket', async () => {
    const { standIn, agent } = await standInWithAgent();
    const env = demoEnv(standIn);
    const bp = blueprintFor(standIn, env);
    const ids = blueprintIds(bp);
    standIn.arm.injectFailure({ method: 'PUT', resourceName: bp.names.aiCorp.vm, mode: 'async', code: 'OSProvisioningTimedOut', message: 'OS Provisioning did not finish in the allotted time.' });

    const failed = await runUp(standIn, agent, env);
    expect(failed.error?.message).toContain(`creating virtual machine '${bp.names.aiCorp.vm}' in resource group '${bp.aiCorp.group}' failed: OSProvisioningTimedOut`);
    const outletTickets = () => standIn.vms.minted.filter((m) => m.attributes.includes('openai-outlet')).map((m) => m.ticket);
    expect(outletTickets()).toHaveLength(1);

    const mark = standIn.arm.requests.length;
    const resumed = await runUp(standIn, agent, env);
    expect(resumed.error).toBeUndefined();
    expect(writes(standIn, mark).slice(0, 2)).toEqual([`DELETE ${ids.aiCorp.vm.toLowerCase()}`, `PUT ${ids.aiCorp.vm.toLowerCase()}`]);
    const [oldTicket, newTicket] = outletTickets();
    expect(newTicket).toBeDefined();
    const data = String(standIn.arm.store.get(ids.aiCorp.vm)?.writeOnly.customData);
    const config = parseCloudConfig(Buffer.from(data, 'base64').toString('utf8'));
    const ticketFile = config.write_files.find((f) => f.path === '/etc/wicket/ticket')?.content;
    expect(ticketFile).toBe(`${newTicket}\n`);
    expect(ticketFile).not.toContain(oldTicket);
  });

  it("reports a relay whose first boot failed, with the end of its log and no ticket", async () => {
    const { standIn, agent } = await standInWithAgent();
    const env = demoEnv(standIn);
    const bp = blueprintFor(standIn, env);
    standIn.vms.failedBootstrap.add(bp.names.relay.vm);
    const failed = await runUp(standIn, agent, env);
    expect(failed.error?.code).toBe('WICKET_ERR_AZURE_OPERATION');
    expect(`${failed.error?.message}\n${failed.log}`).toMatch(
      new RegExp(`on virtual machine '${bp.names.relay.vm}' in resource group '${bp.relay.group}' failed with exit status 3: bootstrap state: failed; .*E: Unable to locate package nodejs`),
    );
    expect(standIn.vms.minted).toEqual([]);
    expect(failed.log).not.toContain('wkt1_');
  });

  it('says which resource a rejected token stopped at (401 AuthenticationFailed)', async () => {
    const { standIn, agent } = await standInWithAgent();
    const failed = await runUp(standIn, agent, demoEnv(standIn, { AZURE_ACCESS_TOKEN: 'not-the-token' }));
    expect(failed.error?.message).toMatch(/reading resource group 'wicket-[0-9a-f]{6}-relay' failed: AuthenticationFailed \(HTTP 401\)/);
    expect(failed.error?.message).not.toContain('not-the-token');
  });

  it('refuses missing settings before calling Azure (WICKET_ERR_AZURE_CONFIG)', async () => {
    const { standIn, agent } = await standInWithAgent();
    const noRepo = await runUp(standIn, agent, demoEnv(standIn, { WICKET_REPO: '' }));
    expect(noRepo.error?.code).toBe('WICKET_ERR_AZURE_CONFIG');
    expect(noRepo.error?.message).toContain('WICKET_REPO');
    const noSubscription = await runUp(standIn, agent, demoEnv(standIn, { AZURE_SUBSCRIPTION_ID: '' }));
    expect(noSubscription.error?.code).toBe('WICKET_ERR_AZURE_CONFIG');
    expect(noSubscription.error?.message).toContain('AZURE_SUBSCRIPTION_ID');
    expect(standIn.arm.requests).toEqual([]);
  });
});
