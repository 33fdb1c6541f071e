import { isIP, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import WebSocket from 'ws';
import { wicketError, type WicketError } from '../../protocol/errors.js';
import { RELAY_MAX_FRAME } from '../../protocol/limits.js';
import { MESH_PATH } from '../../protocol/mesh-messages.js';
import { certificateFingerprint, shortFingerprint } from '../../protocol/relay-certificate.js';
import { RELAY_TLS_CIPHERS, RELAY_TLS_MIN_VERSION } from '../../protocol/relay-tls.js';

// Dialling another relay of the project at the URL and pinned certificate it recorded in the store
// (relay/presence.ts). Like an agent's dial (agent/relay-dial.ts): with a pin, TLS is checked
// against it before the WebSocket upgrade is written; without one, wss:// verifies against the
// system CAs. The link's own handshake (mesh-link.ts) then proves who is at the other end.

export interface MeshDialTarget {
  readonly url: string;
  readonly fingerprint?: Buffer;
}

/**
 * Resolves with what `attach` made of the open WebSocket; rejects with WICKET_ERR_RELAY_UNREACHABLE
 * or WICKET_ERR_RELAY_TLS_PIN. `attach` runs inside the 'open' event, as agent/relay-dial.ts builds
 * its RelayLink there: the other relay sends its hello as soon as it accepts, that frame can come
 * with the upgrade answer itself, and ws emits it (process.nextTick) before an `await` on this
 * promise would resume, so a listener attached after the await misses it and the handshake fails.
 */
export function dialRelayPeer<T>(target: MeshDialTarget, timeoutMs: number, attach: (ws: WebSocket) => T): Promise<T> {
  const url = new URL(MESH_PATH, target.url.endsWith('/') ? target.url : `${target.url}/`);
  const where = url.host;
  return new Promise((resolve, reject) => {
    let socket: Socket | undefined;
    let ws: WebSocket | undefined;
    let settled = false;
    const fail = (err: WicketError): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      ws?.terminate();
      socket?.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(wicketError('WICKET_ERR_RELAY_UNREACHABLE', `no answer from relay ${where} within ${timeoutMs} ms`)), timeoutMs);
    timer.unref();

    const upgrade = (raw?: Socket): void => {
      ws = new WebSocket(url, {
        ...(raw === undefined ? {} : { createConnection: () => raw }),
        perMessageDeflate: false,
        maxPayload: RELAY_MAX_FRAME,
        followRedirects: false,
        // Client frames must be masked (RFC 6455 §5.3) against proxy cache poisoning by scripts
        // in browsers; a relay is no browser, and an all-zero mask lets `ws` send forwarded frames
        // without copying and XOR-ing every byte (as agent/relay-dial.ts does).
        generateMask: (mask: Buffer) => {
          mask.fill(0);
        },
        ...(url.protocol === 'wss:' ? { minVersion: RELAY_TLS_MIN_VERSION, ciphers: RELAY_TLS_CIPHERS } : {}),
      });
      ws.once('open', () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        ws!.removeAllListeners('error');
        ws!.removeAllListeners('unexpected-response');
        resolve(attach(ws!));
      });
      ws.once('unexpected-response', (_req, res) => fail(wicketError('WICKET_ERR_RELAY_UNREACHABLE', `relay ${where} answered HTTP ${res.statusCode ?? '?'} instead of a mesh link`)));
      ws.on('error', (err: NodeJS.ErrnoException) => fail(wicketError('WICKET_ERR_RELAY_UNREACHABLE', `cannot link to relay ${where}: ${err.code ?? err.message}`)));
    };

    const pinned = target.fingerprint;
    if (url.protocol !== 'wss:' || pinned === undefined) return upgrade();
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    const tls = tlsConnect({
      host,
      port: Number(url.port || 443),
      ...(isIP(host) === 0 ? { servername: host } : {}),
      // The pin is the trust anchor: the relay's certificate may be self-signed.
      rejectUnauthorized: false,
      ALPNProtocols: ['http/1.1'],
      minVersion: RELAY_TLS_MIN_VERSION,
      ciphers: RELAY_TLS_CIPHERS,
    });
    socket = tls;
    tls.on('error', (err: NodeJS.ErrnoException) => fail(wicketError('WICKET_ERR_RELAY_UNREACHABLE', `cannot reach relay ${where}: ${err.code ?? err.message}`)));
    tls.once('secureConnect', () => {
      const der = tls.getPeerCertificate(false)?.raw;
      const presented = Buffer.isBuffer(der) ? certificateFingerprint(der) : undefined;
      if (presented === undefined || !presented.equals(pinned)) {
        return fail(wicketError('WICKET_ERR_RELAY_TLS_PIN', `relay ${where} presented certificate sha256 ${presented === undefined ? 'none' : shortFingerprint(presented)}, not the one it recorded (sha256 ${shortFingerprint(pinned)})`));
      }
      upgrade(tls);
    });
  });
}
