import { freePort } from './net-util.js';
import { startReferenceProcess, tlsEnvironment } from './reference-process.js';
import type { CertificateFiles } from './self-signed.js';

// Starts minimal-pipeline.ts's three processes (relay, outlet, inlet) in front of a target, for the
// reference benches; each is stopped by cleanupAll().

export interface MinimalPipeline {
  /** The inlet's port: connect here to reach the target. */
  port: number;
  pids: number[];
}

function startRole(role: 'relay' | 'out' | 'in', args: number[], crypto: boolean, tls: CertificateFiles | undefined): Promise<number> {
  return startReferenceProcess(`minimal pipeline ${role}`, './minimal-pipeline.ts', [role, ...args], { ...tlsEnvironment(tls), CRYPTO: crypto ? '1' : '0' });
}

/** relay, then outlet (to `targetPort`), then inlet; `crypto` seals every message, `tls` puts the relay hops on wss://. */
export async function startMinimalPipeline(targetPort: number, o: { crypto: boolean; tls?: CertificateFiles }): Promise<MinimalPipeline> {
  const relayPort = await freePort();
  const relay = await startRole('relay', [relayPort], o.crypto, o.tls);
  const outlet = await startRole('out', [relayPort, targetPort], o.crypto, o.tls);
  const port = await freePort();
  const inlet = await startRole('in', [relayPort, port], o.crypto, o.tls);
  return { port, pids: [relay, outlet, inlet] };
}
