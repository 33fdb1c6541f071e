import { join } from 'node:path';
import { createTicket, enrollAgent, startNodeProcess, startRelayProcess, type CommandWrap, type RelayProcess } from '../lib/local-processes.js';
import { assertNotLeaving } from './cleanup.js';

// A Wicket tunnel as the CLI runs it: `relay start` (with `--tls`: its generated self-signed
// certificate, whose fingerprint every ticket carries and every agent pins), an outlet node
// serving each target and an inlet node with one local port per target. Each process can run
// through a command prefix (a network namespace). With `twoRelaysOn`, two relays on one
// PostgreSQL store, the inlet on one and the outlet on the other.

/** Relays link within the mesh's dial interval (2 s); this leaves room for a loaded machine. */
const MESH_LINK_WAIT_MS = 15_000;

export interface WicketTunnel {
  /** The URL agents dial: wss:// with TLS. */
  url: string;
  /** The relay certificate's SHA-256 fingerprint pinned in the tickets (TLS only). */
  fingerprint: string | undefined;
  /** Target name → the inlet's local port for it. */
  ports: Record<string, number>;
  /** The tunnel's processes by role: relay (and relay2 with two relays), inlet, outlet. */
  pids: Record<string, number>;
  stop(): Promise<void>;
}

export interface WicketTunnelOptions {
  tls: boolean;
  /** Target name (a relay name is made of it) → the outlet's target host:port. */
  targets: Record<string, string>;
  /** Where the relay listens (default 127.0.0.1, any port). */
  relayListen?: string;
  /** Target connections the outlet may hold, in all and per peer (default: the outlet's own limits). */
  maxConnections?: number;
  wrap?: { relay?: CommandWrap; outlet?: CommandWrap; inlet?: CommandWrap };
  /**
   * A PostgreSQL store URL: two relays on it (the relay mesh, issue 14), the inlet enrolled on the
   * first and the outlet on the second, so every byte crosses the relay-to-relay link.
   */
  twoRelaysOn?: string;
}

/** Waits (bounded) until the relay logged its mesh link to the other relay. */
async function waitForMeshLink(relay: RelayProcess): Promise<void> {
  const deadline = Date.now() + MESH_LINK_WAIT_MS;
  while (!relay.proc.stderrLines.some((line) => line.includes('"msg":"mesh link open"'))) {
    if (Date.now() > deadline) throw new Error(`the two relays did not link within ${MESH_LINK_WAIT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export async function startWicketTunnel(o: WicketTunnelOptions): Promise<WicketTunnel> {
  assertNotLeaving('a Wicket tunnel');
  const relay = await startRelayProcess({
    ...(o.relayListen === undefined ? {} : { listen: o.relayListen }),
    extraArgs: [...(o.tls ? ['--tls'] : []), ...(o.twoRelaysOn === undefined ? [] : ['--store', o.twoRelaysOn])],
    ...(o.wrap?.relay === undefined ? {} : { wrap: o.wrap.relay }),
  });
  const expected = o.tls ? 'wss:' : 'ws:';
  if (new URL(relay.url).protocol !== expected) throw new Error(`relay serves ${relay.url}, expected a ${expected}// URL`);
  const info = relay.proc.stdoutLines.map((l) => (l.startsWith('{') ? (JSON.parse(l) as { fingerprint?: string }) : {})).find((v) => v.fingerprint !== undefined);
  if (o.tls && info?.fingerprint === undefined) throw new Error('the TLS relay printed no certificate fingerprint to pin');

  const names = Object.keys(o.targets);
  const relayName = (name: string) => `bench-${name}`;
  // With two relays: the second joins the first's store with its key; a ticket minted through a
  // relay's folder lists that relay first, so each agent dials the relay it was minted on.
  const storeArgs = o.twoRelaysOn === undefined ? [] : ['--store', o.twoRelaysOn, '--authority-key', join(relay.dataDir, 'authority.key')];
  const outletRelay =
    o.twoRelaysOn === undefined
      ? relay
      : await startRelayProcess({ ...(o.relayListen === undefined ? {} : { listen: o.relayListen }), extraArgs: [...(o.tls ? ['--tls'] : []), ...storeArgs] });
  if (outletRelay !== relay) await waitForMeshLink(relay);
  const outletHome = await enrollAgent(outletRelay, {
    ticket: await createTicket(outletRelay, { attributes: ['bench-outlet'], relayNames: names.map(relayName), extraArgs: storeArgs }),
    ...(o.wrap?.outlet === undefined ? {} : { wrap: o.wrap.outlet }),
  });
  const inletHome = await enrollAgent(relay, {
    ticket: await createTicket(relay, { attributes: ['bench-inlet'], extraArgs: storeArgs }),
    ...(o.wrap?.inlet === undefined ? {} : { wrap: o.wrap.inlet }),
  });
  const limits = o.maxConnections === undefined ? {} : { maxConnections: o.maxConnections, maxConnectionsPerPeer: o.maxConnections };
  // "ready" is printed once a node is connected to the relay and serves its resources.
  assertNotLeaving('the outlet');
  const outlet = await startNodeProcess(
    outletHome,
    { outlets: names.map((name) => ({ name, to: o.targets[name], relay: relayName(name), allow: 'bench-inlet', ...limits })) },
    o.wrap?.outlet === undefined ? {} : { wrap: o.wrap.outlet },
  );
  assertNotLeaving('the inlet');
  const inlet = await startNodeProcess(
    inletHome,
    { inlets: names.map((name) => ({ name, from: '127.0.0.1:0', via: relayName(name), allow: 'bench-outlet' })) },
    o.wrap?.inlet === undefined ? {} : { wrap: o.wrap.inlet },
  );
  const ports: Record<string, number> = {};
  for (const name of names) ports[name] = Number(inlet.inlets[name]?.split(':').pop());
  return {
    url: relay.url,
    fingerprint: info?.fingerprint,
    ports,
    pids: { relay: relay.proc.pid, ...(outletRelay === relay ? {} : { relay2: outletRelay.proc.pid }), inlet: inlet.proc.pid, outlet: outlet.proc.pid },
    async stop() {
      await inlet.proc.kill('SIGTERM', 3_000);
      await outlet.proc.kill('SIGTERM', 3_000);
      await relay.proc.kill('SIGTERM', 3_000);
      if (outletRelay !== relay) await outletRelay.proc.kill('SIGTERM', 3_000);
    },
  };
}
