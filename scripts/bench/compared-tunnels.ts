import { onCleanup } from './cleanup.js';
import { type IperfServer, startIperfServer } from './iperf3.js';
import { freePort } from './net-util.js';
import { type Nginx, startNginx } from './nginx.js';
import { type SshForwards, startSshForwards } from './ssh-tunnel.js';
import { startWicketTunnel, type WicketTunnel } from './wicket-tunnel.js';

// The targets on loopback (an iperf3 server; nginx when asked) and the two tunnels the reference
// benches compare in front of them: `ssh -L` and Wicket as deployed (TLS relay). Each is stopped by
// the bench's cleanup.

export interface ComparedTunnels {
  iperf: IperfServer;
  nginx: Nginx | undefined;
  ssh: SshForwards;
  /** ssh -L's local ports: to iperf3, and to nginx when it runs. */
  sshPorts: { iperf: number; http: number | undefined };
  wicket: WicketTunnel;
}

export async function startComparedTunnels(o: { http: boolean }): Promise<ComparedTunnels> {
  const iperf = await startIperfServer({ port: await freePort(), bind: '127.0.0.1' });
  onCleanup('iperf3 -s', async () => {
    await iperf.proc.kill('SIGTERM', 3_000);
  });
  const nginx = o.http ? await startNginx(await freePort()) : undefined;
  if (nginx !== undefined) onCleanup('nginx', () => nginx.stop());
  const ssh = await startSshForwards(nginx === undefined ? [iperf.port] : [iperf.port, nginx.port]);
  onCleanup('ssh -L', () => ssh.close());
  const targets = { iperf: `127.0.0.1:${iperf.port}`, ...(nginx === undefined ? {} : { http: `127.0.0.1:${nginx.port}` }) };
  const wicket = await startWicketTunnel({ tls: true, targets });
  onCleanup('Wicket', () => wicket.stop());
  return { iperf, nginx, ssh, sshPorts: { iperf: ssh.ports[0]!, http: ssh.ports[1] }, wicket };
}
