import { connect as netConnect, isIP, type Socket } from 'node:net';
import { type ConnectionOptions, connect as tlsConnect, type TLSSocket } from 'node:tls';
import { wicketError, type WicketError } from '../protocol/errors.js';
import { formatHostPort, type HostPort } from './node-config.js';
import { resetSocket } from './stream-bridge.js';
import { describeTlsFailure } from './tls-names.js';

// An outlet's connection to its target: TCP, then TLS when asked, verifying the certificate against
// `ca` (or the system roots) for `servername` (or the target host). Used per stream (outlet.ts) and
// once when an outlet is created, to warn about a target that is down or has the wrong certificate
// before the first app finds out (checkTarget).

export interface TargetSpec {
  to: HostPort;
  tls: boolean;
  /** The name the certificate must carry (default: the target host). */
  servername?: string | undefined;
  /** PEM CA certificate(s) to verify against (default: the system roots). */
  ca?: Buffer | undefined;
}

export interface TargetConnection {
  socket: Socket;
  /** RST on the TCP connection under it (a TLS socket cannot resetAndDestroy itself). */
  reset: () => void;
}

/**
 * Connects within `timeoutMs`; rejects with WICKET_ERR_TARGET_UNREACHABLE (TCP, timeout) or
 * WICKET_ERR_TLS_TARGET (certificate, name). `pending` holds the raw socket while connecting, so
 * its owner can cut every connect short when it stops.
 */
export function connectTarget(target: TargetSpec, timeoutMs: number, pending?: Set<Socket>): Promise<TargetConnection> {
  const { host, port } = target.to;
  const where = formatHostPort(target.to);
  return new Promise<TargetConnection>((resolve, reject) => {
    const raw = netConnect({ host, port, allowHalfOpen: true, noDelay: true });
    pending?.add(raw);
    const reset = () => resetSocket(raw);
    let settled = false;
    const finish = (err: WicketError | undefined, conn?: TargetConnection) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      pending?.delete(raw);
      if (err !== undefined) {
        raw.destroy();
        reject(err);
      } else resolve(conn!);
    };
    const timer = setTimeout(() => finish(wicketError('WICKET_ERR_TARGET_UNREACHABLE', `${where} did not answer within ${timeoutMs} ms`)), timeoutMs);
    raw.once('error', (err: NodeJS.ErrnoException) => {
      finish(wicketError('WICKET_ERR_TARGET_UNREACHABLE', `${where}: ${err.code ?? err.message}`));
    });
    raw.once('close', () => finish(wicketError('WICKET_ERR_TARGET_UNREACHABLE', `${where} closed the connection while it was being set up`)));
    raw.once('connect', () => {
      if (!target.tls) {
        finish(undefined, { socket: raw, reset });
        return;
      }
      // SNI carries host names only; an IP target is still checked against the certificate's IP SANs.
      const checkedName = target.servername ?? host;
      const servername = isIP(checkedName) === 0 ? checkedName : undefined;
      const secure: TLSSocket = tlsConnect({
        socket: raw,
        host: checkedName,
        ...(servername !== undefined ? { servername } : {}),
        ...(target.ca !== undefined ? { ca: target.ca } : {}),
        rejectUnauthorized: true,
        allowHalfOpen: true,
      } as ConnectionOptions);
      secure.once('error', (err: NodeJS.ErrnoException) => {
        finish(wicketError('WICKET_ERR_TLS_TARGET', `${where}: ${describeTlsFailure(err, checkedName)}`));
      });
      secure.once('secureConnect', () => {
        // rejectUnauthorized already refused a bad chain or name; this is the second belt.
        if (!secure.authorized) {
          finish(wicketError('WICKET_ERR_TLS_TARGET', `${where}: ${String(secure.authorizationError)}`));
          return;
        }
        finish(undefined, {
          socket: secure,
          reset: () => {
            resetSocket(raw);
            secure.destroy();
          },
        });
      });
    });
  });
}

/**
 * Connects once and hangs up cleanly (a FIN, after TLS's close_notify), so the target sees an
 * ordinary short connection. Resolves with the failure, or undefined when the target answered.
 */
export async function checkTarget(target: TargetSpec, timeoutMs: number, pending?: Set<Socket>): Promise<WicketError | undefined> {
  let connection: TargetConnection;
  try {
    connection = await connectTarget(target, timeoutMs, pending);
  } catch (err) {
    return err as WicketError;
  }
  const { socket } = connection;
  socket.on('error', () => undefined);
  socket.end();
  // A target that never answers the FIN must not hold the descriptor.
  setTimeout(() => socket.destroy(), 1_000).unref();
  return undefined;
}
