import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  enrollAgent,
  runAgent,
  startNodeProcess,
  startRelayProcess,
  type AgentHome,
  type NodeProcess,
  type RelayProcess,
} from '../../scripts/lib/local-processes.js';

// One whole portal from real processes, as the end-to-end tests need it: a relay, an admin
// enrolled from the relay's first admin ticket, an outlet node serving `relayName` in front of
// `target`, and an inlet node listening on 127.0.0.1 (an ephemeral port). Everything goes through
// the CLI: `relay start`, `agent enroll`, `agent node start --config`.

export interface Portal {
  relay: RelayProcess;
  admin: AgentHome;
  outletHome: AgentHome;
  inletHome: AgentHome;
  outlet: NodeProcess;
  inlet: NodeProcess;
  /** "127.0.0.1:PORT" of the inlet: what the app connects to. */
  inletAddress: string;
}

export interface PortalOptions {
  /** host:port the outlet forwards to. */
  target: string;
  relayName?: string;
  tls?: { ca: string; servername: string };
  relayArgs?: string[];
  relayEnv?: NodeJS.ProcessEnv;
}

export async function enrollAdmin(relay: RelayProcess): Promise<AgentHome> {
  if (!relay.adminTicket) throw new Error('relay saved no admin ticket');
  return enrollAgent(relay, { ticket: relay.adminTicket });
}

export async function startPortal(o: PortalOptions): Promise<Portal> {
  const name = o.relayName ?? 'svc';
  const relay = await startRelayProcess({
    ...(o.relayArgs ? { extraArgs: o.relayArgs } : {}),
    ...(o.relayEnv ? { env: o.relayEnv } : {}),
  });
  const admin = await enrollAdmin(relay);
  const outletHome = await enrollAgent(relay, { attributes: [`${name}-outlet`], relayNames: [name] });
  const inletHome = await enrollAgent(relay, { attributes: [`${name}-inlet`] });
  const outlet = await startNodeProcess(outletHome, {
    outlets: [
      {
        name,
        to: o.target,
        relay: name,
        allow: `${name}-inlet`,
        ...(o.tls ? { tls: true, tlsCa: o.tls.ca, tlsServername: o.tls.servername } : {}),
      },
    ],
  });
  const inlet = await startNodeProcess(inletHome, {
    inlets: [{ name, from: '127.0.0.1:0', via: name, allow: `${name}-outlet` }],
  });
  const inletAddress = inlet.inlets[name];
  if (!inletAddress) throw new Error(`inlet node reported no address for ${name}: ${JSON.stringify(inlet.ready)}`);
  return { relay, admin, outletHome, inletHome, outlet, inlet, inletAddress };
}

/** `agent member revoke ID` as the admin; returns the wall time of the command in ms. */
export async function revoke(portal: Portal, identifier: string): Promise<{ startedAt: number; output: string }> {
  const startedAt = Date.now();
  const result = await runAgent(portal.admin.home, ['member', 'revoke', identifier, '--json']);
  if (result.code !== 0) throw new Error(`member revoke failed: ${result.stderr}`);
  return { startedAt, output: result.stdout };
}

/** Peak resident set size (VmHWM) of a process in MiB, from /proc. */
export function peakRssMiB(pid: number): number {
  const status = readFileSync(join('/proc', String(pid), 'status'), 'utf8');
  return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1]) / 1024;
}
