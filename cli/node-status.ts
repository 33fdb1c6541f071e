import type { NodeStatus } from '../agent/node.js';
import type { LastError } from '../agent/last-error.js';

// `agent status` for people: the node, its relay connection, then each inlet and outlet with its
// named state and last error (code, message, when), then channels and streams. `--json` prints
// the same NodeStatus as it comes from the node.

function lastErrorLine(lastError: LastError | undefined): string | undefined {
  return lastError === undefined ? undefined : `      last error ${lastError.at}  ${lastError.code}: ${lastError.message}`;
}

export function formatStatus(status: NodeStatus): string {
  const out: string[] = [];
  const push = (line: string | undefined): void => {
    if (line !== undefined) out.push(line);
  };
  out.push(`identity    ${status.identifier}`);
  out.push(`version     ${status.version}`);
  out.push(`relay       ${status.relay.url} ${status.relay.state}  revoked peers ${status.relay.revokedPeers}`);
  // Older nodes answer without the list; one relay needs no list line.
  const relays = status.relay.relays ?? [];
  if (relays.length > 1) out.push(`relays      ${relays.join('  ')}  (tried in this order when the relay is lost)`);
  push(lastErrorLine(status.relay.lastError));
  out.push('');
  out.push(`inlets (${status.inlets.length})`);
  for (const i of status.inlets) {
    out.push(`  ${i.name}  ${i.state}  ${i.address} via ${i.via}  allow ${JSON.stringify(i.allow)}  channel ${i.channel}${i.peer ? ` ${i.peer}` : ''}  streams ${i.streams}`);
    push(lastErrorLine(i.lastError));
  }
  out.push(`outlets (${status.outlets.length})`);
  for (const o of status.outlets) {
    out.push(
      `  ${o.name}  ${o.state}  relay ${o.relay} to ${o.to}${o.tls ? ' (tls)' : ''}  allow ${JSON.stringify(o.allow)}  channels ${o.channels}  streams ${o.streams}` +
        `  target connections ${o.targetConnections}/${o.maxConnections} (per peer ${o.maxConnectionsPerPeer})`,
    );
    push(lastErrorLine(o.lastError));
    for (const b of o.gateway?.backends ?? []) {
      const until = b.breaker.until === undefined ? '' : ` until ${b.breaker.until}`;
      const credential = `${b.credential.kind} ${b.credential.state}${b.credential.expiresAt !== undefined ? ` (expires ${b.credential.expiresAt})` : ''}`;
      const lastError = b.lastError === undefined ? '' : `  last error ${b.lastError.at}: ${b.lastError.message}`;
      out.push(`    backend ${b.name}  ${b.url}  priority ${b.priority} weight ${b.weight}  ${b.breaker.state}${until}  credential ${credential}  requests ${b.requests} failures ${b.failures} throttled ${b.throttled}${lastError}`);
    }
  }
  out.push(`channels (${status.channels.length})`);
  for (const c of status.channels) {
    const state = c.handshake === undefined ? c.state : `${c.state} (${c.handshake})`;
    out.push(`  ${c.resource}  circuit ${c.circuit}  ${c.role} ${state}${c.peer ? `  peer ${c.peer}` : ''}${c.rttMs !== undefined ? `  rtt ${c.rttMs} ms` : ''}`);
  }
  out.push(`streams (${status.streams.length})`);
  for (const s of status.streams) {
    out.push(`  ${s.resource}  stream ${s.stream}  peer ${s.peer}  send ${s.sendState}  receive ${s.receiveState}  sent ${s.bytesSent} B  received ${s.bytesReceived} B  since ${s.openedAt}`);
  }
  return out.join('\n') + '\n';
}

export function printStatus(status: NodeStatus): void {
  process.stdout.write(formatStatus(status));
}
