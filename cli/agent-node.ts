import { resolve } from 'node:path';
import type { Command } from 'commander';
import { controlRequest } from '../agent/control-client.js';
import type { ControlOp } from '../agent/control-server.js';
import { AgentNode, type NodeStatus } from '../agent/node.js';
import { NodeConfigFile } from '../agent/config-file.js';
import { checkPolicy, formatHostPort, parseHostPort, parseName } from '../agent/node-config.js';
import type { WicketError } from '../protocol/errors.js';
import { MAX_TARGET_CONNECTIONS_SETTING, OUTLET_MAX_TARGET_CONNECTIONS, OUTLET_MAX_TARGET_CONNECTIONS_PER_PEER } from '../protocol/limits.js';
import { agentGlobals, openVault, printJson } from './agent-context.js';
import { EXIT_FAILURE, EXIT_REVOKED, usageError } from './cli-errors.js';
import { parseWholeNumber } from './whole-number.js';
import { createLogger } from './logger.js';
import { printStatus } from './node-status.js';

// The running node and its resources:
//   agent node start [--config FILE] [--json]        foreground, for systemd and cloud-init
//   agent outlet create|list|delete                  through the node's control socket
//   agent inlet create|list|delete
//   agent status [--json]
// Arguments are checked here (HOST:PORT, names, policy syntax) before the node is contacted, so a
// typo fails with WICKET_ERR_ARGUMENT even when no node runs; the node checks them again.

interface JsonFlag {
  json?: boolean;
}

async function callNode(command: Command, op: ControlOp, args: Record<string, unknown> = {}): Promise<unknown> {
  const vault = openVault(command);
  return controlRequest(vault.controlSocketPath, op, args);
}

function rows(value: unknown): Record<string, unknown>[] {
  return Array.isArray(value) ? (value as Record<string, unknown>[]) : [];
}

function printTable(header: string[], lines: string[][], empty: string): void {
  if (lines.length === 0) {
    process.stdout.write(`${empty}\n`);
    return;
  }
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? '').length)));
  const format = (cells: string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  process.stdout.write([format(header), ...lines.map(format)].join('\n') + '\n');
}

// --- agent node start --------------------------------------------------------------------------

async function startNode(flags: { config?: string; metrics?: string } & JsonFlag, command: Command): Promise<void> {
  const globals = agentGlobals(command);
  const metricsFlag = flags.metrics === undefined ? undefined : parseHostPort(flags.metrics, '--metrics', { allowPortZero: true });
  const vault = openVault(command);
  // --config FILE, else node.yaml / node.json in the home; creates and deletes are recorded there.
  const configFile = NodeConfigFile.choose(vault.home, flags.config);
  const config = configFile.load();
  const metrics = metricsFlag ?? config.metrics;
  const logger = createLogger('agent');
  const node = await AgentNode.start({ vault, logger, config, configFile, insecure: globals.insecure, ...(metrics !== undefined ? { metrics } : {}) });

  let stopping: Promise<void> | undefined;
  const shutdown = (exitCode: number, reason: string): Promise<void> => {
    stopping ??= (async () => {
      logger.info({ reason }, 'shutting down');
      const force = setTimeout(() => process.exit(exitCode), 5_000);
      force.unref();
      try {
        await node.stop();
      } finally {
        logger.flush();
        process.exitCode = exitCode;
        // Let pino's async destination drain, then leave even if a handle lingers.
        setTimeout(() => process.exit(exitCode), 50).unref();
      }
    })();
    return stopping;
  };
  process.once('SIGTERM', () => void shutdown(0, 'SIGTERM'));
  process.once('SIGINT', () => void shutdown(0, 'SIGINT'));
  node.once('fatal', (err: WicketError) => {
    process.stderr.write(`error: ${err.message}\n`);
    // Revoked: a distinct exit code, so systemd (RestartPreventExitStatus) stops restarting it.
    void shutdown(err.code === 'WICKET_ERR_REVOKED' ? EXIT_REVOKED : EXIT_FAILURE, err.code);
  });

  const announce = () => {
    const status = node.status();
    const inlets = status.inlets.map((i) => ({ name: i.name, address: i.address, via: i.via }));
    const outlets = status.outlets.map((o) => ({ name: o.name, relay: o.relay, to: o.to }));
    logger.info({ identifier: node.identifier, inlets, outlets, config: configFile.path }, 'node ready');
    if (flags.json === true) {
      printJson({ ready: true, identifier: node.identifier, inlets, outlets });
      return;
    }
    const parts = [
      ...inlets.map((i) => `inlet ${i.name} on ${i.address} via ${i.via}`),
      ...outlets.map((o) => `outlet ${o.name} (${o.relay}) to ${o.to}`),
    ];
    process.stdout.write(`ready: ${node.identifier} connected to ${status.relay.url}${parts.length > 0 ? `; ${parts.join('; ')}` : ''}\n`);
  };
  if (node.isReady) announce();
  else node.once('ready', announce);
  // Foreground: the node's sockets keep the process alive until a signal or a fatal refusal.
}

// --- outlet / inlet create ------------------------------------------------------------------

interface OutletFlags extends JsonFlag {
  to: string;
  gateway?: string;
  apiKeyFile?: string;
  tls?: boolean;
  tlsCa?: string;
  tlsServername?: string;
  relay: string;
  allow: string;
  name?: string;
  maxConnections?: string;
  maxConnectionsPerPeer?: string;
}

export function outletArgs(flags: OutletFlags): Record<string, unknown> {
  parseHostPort(flags.to, '--to');
  const relay = parseName(flags.relay, '--relay');
  checkPolicy(flags.allow, '--allow');
  if (flags.name !== undefined) parseName(flags.name, '--name');
  if (flags.tls !== true && (flags.tlsCa !== undefined || flags.tlsServername !== undefined)) {
    throw usageError('--tls-ca and --tls-servername need --tls');
  }
  if (flags.gateway !== undefined && flags.gateway !== 'azure-openai') throw usageError(`--gateway ${JSON.stringify(flags.gateway.slice(0, 40))}: the one gateway is azure-openai`);
  if (flags.gateway === undefined && flags.apiKeyFile !== undefined) throw usageError('--api-key-file needs --gateway azure-openai');
  if (flags.gateway !== undefined && flags.tlsServername !== undefined) throw usageError('--tls-servername is not used with --gateway (the backend URL names the host); use a node config for more');
  const args: Record<string, unknown> = { relay, allow: flags.allow };
  if (flags.gateway !== undefined) args.gateway = gatewayArgs(flags);
  else args.to = flags.to;
  if (flags.gateway === undefined) args.tls = flags.tls === true;
  if (flags.name !== undefined) args.name = flags.name;
  // The node may run in another folder: send it an absolute path.
  if (flags.tlsCa !== undefined && flags.gateway === undefined) args.tlsCa = resolve(flags.tlsCa);
  if (flags.tlsServername !== undefined) args.tlsServername = flags.tlsServername;
  if (flags.maxConnections !== undefined) args.maxConnections = parseWholeNumber(flags.maxConnections, '--max-connections', MAX_TARGET_CONNECTIONS_SETTING);
  if (flags.maxConnectionsPerPeer !== undefined) {
    args.maxConnectionsPerPeer = parseWholeNumber(flags.maxConnectionsPerPeer, '--max-connections-per-peer', MAX_TARGET_CONNECTIONS_SETTING);
  }
  return args;
}

/**
 * `--gateway azure-openai --to HOST:PORT [--tls [--tls-ca F]] [--api-key-file F]`: a gateway with one
 * backend at that address, authenticated by the key file or else by the host's Entra identity.
 * Pools of backends, limits and the content log are set in the node config's gateway block.
 */
function gatewayArgs(flags: OutletFlags): Record<string, unknown> {
  const to = parseHostPort(flags.to, '--to');
  const url = `${flags.tls === true ? 'https' : 'http'}://${formatHostPort(to)}`;
  const backend: Record<string, unknown> = {
    name: 'primary',
    url,
    auth: flags.apiKeyFile !== undefined ? { kind: 'api-key', file: resolve(flags.apiKeyFile) } : { kind: 'entra' },
  };
  if (flags.tlsCa !== undefined) backend.tlsCa = resolve(flags.tlsCa);
  return { kind: 'azure-openai', backends: [backend] };
}

interface InletFlags extends JsonFlag {
  from: string;
  via: string;
  allow: string;
  name?: string;
}

export function inletArgs(flags: InletFlags): Record<string, unknown> {
  parseHostPort(flags.from, '--from', { allowPortZero: true });
  const via = parseName(flags.via, '--via');
  checkPolicy(flags.allow, '--allow');
  const args: Record<string, unknown> = { from: flags.from, via, allow: flags.allow };
  if (flags.name !== undefined) args.name = parseName(flags.name, '--name');
  return args;
}

export function registerNodeCommands(program: Command): void {
  const node = program.command('node').description('Run the agent node (relay connection, inlets, outlets)');
  node
    .command('start')
    .description('Run the node in the foreground until SIGTERM/SIGINT; prints one line once connected to the relay')
    .option('--config <file>', 'node config (YAML or JSON) listing outlets and inlets; default: node.yaml (or node.json) in the agent home')
    .option('--json', 'print the ready line as JSON: {"ready": true, "identifier", "inlets", "outlets"}')
    .option('--metrics <host:port>', 'serve Prometheus metrics (GET /metrics) and GET /healthz on this address, e.g. 127.0.0.1:9464')
    .addHelpText(
      'after',
      `
Node config (YAML, or JSON with the same fields; unknown fields are refused):
  # /etc/wicket/node.yaml
  metrics: 127.0.0.1:9464          # like --metrics (the flag wins)
  outlets:
    - { name: openai, to: "aoai.internal:443", tls: true, relay: openai, allow: openai-inlet }
  inlets:
    - { name: openai, from: "127.0.0.1:8443", via: openai, allow: openai-outlet }

  { "outlets": [{ "name": "openai", "to": "aoai.internal:443", "tls": true, "relay": "openai", "allow": "openai-inlet" }],
    "inlets":  [{ "name": "openai", "from": "127.0.0.1:8443", "via": "openai", "allow": "openai-outlet" }] }

\`agent inlet/outlet create/delete\` record each change in this file (comments and the rest kept,
written atomically, mode 0600), so a restart brings the resources back. Without --config the file
is node.yaml or node.json in the agent home, made on the first create.

Examples:
  $ agent node start --config /etc/wicket/node.yaml
  $ WICKET_HOME=/var/lib/wicket agent node start --json      # runs /var/lib/wicket/node.yaml if there`,
    )
    .action(startNode);

  const outlet = program.command('outlet').description('Outlets: serve a relay name, forwarding to one fixed target');
  outlet
    .command('create')
    .description('Add an outlet to the running node and to its config file (it comes back after a restart)')
    .requiredOption('--to <host:port>', 'the fixed target every stream connects to')
    .option('--tls', 'open TLS to the target, verifying its certificate')
    .option('--tls-ca <file>', 'PEM CA certificate(s) for the target (default: system roots)')
    .option('--tls-servername <name>', 'name to check in the target certificate (default: the --to host)')
    .requiredOption('--relay <name>', 'relay name to register (your ticket must allow it)')
    .requiredOption('--allow <expr>', 'policy over the inlet: attr, attr=value, identifier=I…, and, or, not, ( )')
    .option('--name <name>', 'resource name (default: the relay name)')
    .option('--gateway <kind>', 'serve HTTP as an Azure OpenAI gateway (azure-openai): per-identity usage, limits, the outlet\'s own backend credential')
    .option('--api-key-file <file>', 'with --gateway: the backend api-key, in a mode-0600 file (default: the host\'s Entra identity)')
    .option('--max-connections <n>', `target connections held at once, in all (default ${OUTLET_MAX_TARGET_CONNECTIONS})`)
    .option('--max-connections-per-peer <n>', `target connections one peer identity may hold (default ${OUTLET_MAX_TARGET_CONNECTIONS_PER_PEER})`)
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      `
Examples:
  $ agent outlet create --to aoai.internal:443 --tls --relay openai --allow openai-inlet
  $ agent outlet create --to 127.0.0.1:5432 --relay db --allow 'db-client and not env=dev'
  $ agent outlet create --gateway azure-openai --to aoai-eastus.openai.azure.com:443 --tls --relay openai --allow openai-inlet`,
    )
    .action(async (flags: OutletFlags, command: Command) => {
      const result = (await callNode(command, 'outlet.create', outletArgs(flags))) as { name: string; relay: string; warning?: string };
      if (result.warning !== undefined) process.stderr.write(`warning: ${result.warning}\n`);
      if (flags.json === true) printJson(result);
      else process.stdout.write(`outlet ${result.name} serves relay name ${result.relay} -> ${flags.to}\n`);
    });
  outlet
    .command('list')
    .description('List the running node\'s outlets')
    .option('--json', 'print the list as JSON')
    .addHelpText('after', '\nExamples:\n  $ agent outlet list\n  $ agent outlet list --json')
    .action(async (flags: JsonFlag, command: Command) => {
      const list = rows(await callNode(command, 'outlet.list'));
      if (flags.json === true) return printJson({ outlets: list });
      printTable(
        ['NAME', 'RELAY', 'TO', 'TLS', 'ALLOW', 'STREAMS'],
        list.map((o) => [String(o.name), String(o.relay), String(o.to), o.tls === true ? 'yes' : 'no', String(o.allow), String(o.streams ?? 0)]),
        'no outlets',
      );
    });
  outlet
    .command('delete')
    .description('Delete an outlet: unregisters its relay name, resets its live streams, removes it from the config file')
    .argument('<name>', 'the outlet name')
    .addHelpText('after', '\nExample:\n  $ agent outlet delete openai')
    .action(async (name: string, _flags: unknown, command: Command) => {
      await callNode(command, 'outlet.delete', { name: parseName(name, 'NAME') });
      process.stdout.write(`outlet ${name} deleted\n`);
    });

  const inlet = program.command('inlet').description('Inlets: a local TCP port that reaches an outlet through the relay');
  inlet
    .command('create')
    .description('Add an inlet to the running node and to its config file; prints the address it listens on')
    .requiredOption('--from <addr:port>', 'local address to listen on (port 0 picks a free port)')
    .requiredOption('--via <name>', 'relay name of the outlet to reach')
    .requiredOption('--allow <expr>', 'policy over the outlet: attr, attr=value, identifier=I…, and, or, not, ( )')
    .option('--name <name>', 'resource name (default: the relay name)')
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      `
Examples:
  $ agent inlet create --from 127.0.0.1:8443 --via openai --allow openai-outlet
  $ agent inlet create --from 127.0.0.1:0 --via db --allow 'identifier=I3f5c…' --json`,
    )
    .action(async (flags: InletFlags, command: Command) => {
      const result = (await callNode(command, 'inlet.create', inletArgs(flags))) as { name: string; address: string };
      if (flags.json === true) printJson(result);
      else process.stdout.write(`${result.address}\n`);
    });
  inlet
    .command('list')
    .description('List the running node\'s inlets')
    .option('--json', 'print the list as JSON')
    .addHelpText('after', '\nExamples:\n  $ agent inlet list\n  $ agent inlet list --json')
    .action(async (flags: JsonFlag, command: Command) => {
      const list = rows(await callNode(command, 'inlet.list'));
      if (flags.json === true) return printJson({ inlets: list });
      printTable(
        ['NAME', 'ADDRESS', 'VIA', 'ALLOW', 'CHANNEL', 'STREAMS'],
        list.map((i) => [String(i.name), String(i.address), String(i.via), String(i.allow), String(i.channel ?? ''), String(i.streams ?? 0)]),
        'no inlets',
      );
    });
  inlet
    .command('delete')
    .description('Delete an inlet: stops listening, resets its live connections, removes it from the config file')
    .argument('<name>', 'the inlet name')
    .addHelpText('after', '\nExample:\n  $ agent inlet delete openai')
    .action(async (name: string, _flags: unknown, command: Command) => {
      await callNode(command, 'inlet.delete', { name: parseName(name, 'NAME') });
      process.stdout.write(`inlet ${name} deleted\n`);
    });

  program
    .command('status')
    .description('Show the running node: identity, relay connection, inlets, outlets, channels, open streams')
    .option('--json', 'print the status as JSON')
    .addHelpText('after', '\nExamples:\n  $ agent status\n  $ agent status --json')
    .action(async (flags: JsonFlag, command: Command) => {
      const status = (await callNode(command, 'status')) as NodeStatus;
      if (flags.json === true) printJson(status);
      else printStatus(status);
    });
}

