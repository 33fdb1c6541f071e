import { onCleanup } from './cleanup.js';
import { startIperfServer, runIperf } from './iperf3.js';
import { createDelayLink, netnsUnavailableReason } from './netns-link.js';
import { startWicketTunnel } from './wicket-tunnel.js';

// One stream over a 40 ms RTT link, Wicket against direct TCP on the very same link:
//
//   direct   app ns: iperf3 -c  ──── link ────  svc ns: iperf3 -s
//   Wicket   app ns: iperf3 -c → inlet  ──── link (wss://, TLS) ────  svc ns: relay → outlet → iperf3 -s
//
// Long runs (≥ 10 s in full mode): TCP's slow start and the mux's window auto-tuning both need
// several round trips to open up, and a short run would measure only that.

const IPERF_PORT = 5201; // inside the service namespace, where nothing else listens
const RELAY_PORT = 7400;

export type RttOutcome =
  | { skipped: string }
  | { kind: string; rttMs: number; seconds: number; direct: number[]; wicket: number[]; directMinRttMs: number; failures: string[] };

export async function measureOverDelayLink(o: { seconds: number; rounds: number; warmupSeconds: number }): Promise<RttOutcome> {
  const reason = netnsUnavailableReason();
  if (reason !== undefined) return { skipped: reason };
  let link;
  try {
    link = await createDelayLink();
  } catch (err) {
    return { skipped: err instanceof Error ? err.message : String(err) };
  }
  const stops: (() => Promise<void>)[] = [];
  try {
    console.error(`bench: 40 ms link up (${link.kind}; measured RTT ${link.rttMs.toFixed(1)} ms)`);
    const server = await startIperfServer({ port: IPERF_PORT, wrap: link.inSvc });
    stops.push(onCleanup('iperf3 -s in the service namespace', () => server.proc.kill('SIGTERM', 3_000).then(() => undefined)));
    const tunnel = await startWicketTunnel({
      tls: true,
      targets: { iperf: `127.0.0.1:${IPERF_PORT}` },
      relayListen: `${link.svcAddress}:${RELAY_PORT}`,
      wrap: { relay: link.inSvc, outlet: link.inSvc, inlet: link.inApp },
    });
    stops.push(onCleanup('Wicket over the 40 ms link', () => tunnel.stop()));
    const paths = [
      { name: 'direct' as const, host: link.svcAddress, port: IPERF_PORT },
      { name: 'wicket' as const, host: '127.0.0.1', port: tunnel.ports.iperf! },
    ];
    const results = { direct: [] as number[], wicket: [] as number[] };
    const failures: string[] = [];
    let directMinRttMs = NaN;
    for (const p of paths) {
      console.error(`bench: 40 ms link, warm-up, ${p.name} …`);
      await runIperf({ host: p.host, port: p.port, seconds: o.warmupSeconds, streams: 1, wrap: link.inApp }).catch((err: unknown) => {
        failures.push(`warm-up ${p.name}: ${err instanceof Error ? err.message : String(err)}`);
      });
    }
    for (let round = 1; round <= o.rounds; round++) {
      for (const p of paths) {
        console.error(`bench: 40 ms link, round ${round}/${o.rounds}, ${p.name} …`);
        try {
          const r = await runIperf({ host: p.host, port: p.port, seconds: o.seconds, streams: 1, wrap: link.inApp });
          results[p.name].push(r.megabytesPerSecond);
          if (p.name === 'direct') directMinRttMs = r.minRttMs;
          console.error(`bench: 40 ms link, ${p.name}: ${r.megabytesPerSecond.toFixed(1)} MB/s`);
        } catch (err) {
          failures.push(`${p.name}, round ${round}: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
    }
    return { kind: link.kind, rttMs: link.rttMs, seconds: o.seconds, ...results, directMinRttMs, failures };
  } finally {
    for (const stop of stops.reverse()) await stop();
    await link.destroy();
  }
}
