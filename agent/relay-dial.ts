import { isIP, connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import WebSocket from 'ws';
import { wicketError, type WicketError } from '../protocol/errors.js';
import { RELAY_MAX_FRAME } from '../protocol/limits.js';
import { certificateFingerprint, shortFingerprint } from '../protocol/relay-certificate.js';
import { AGENT_FEATURES_HEADER, FEATURE_RELAYS } from '../protocol/relay-directory.js';
import { RELAY_TLS_CIPHERS, RELAY_TLS_MIN_VERSION } from '../protocol/relay-tls.js';
import { RelayLink } from './relay-link.js';
import { describeTlsFailure } from './tls-names.js';

// Opening the agent's one WebSocket to the relay (protocol/README.md, "Relay frames").
//
// TLS with a pinned certificate: we dial TLS ourselves, check SHA-256(DER certificate) against
// the pin on 'secureConnect', and only then hand the socket to `ws` (its `createConnection`
// option). So when the pin does not match, not one application byte has been written: no HTTP
// upgrade, no auth. (Node's checkServerIdentity is not called for a self-signed certificate when
// chain verification fails, so it cannot carry the pin check.)
// Without a pin, wss:// verifies the certificate against the system CAs as usual.
// Plain ws:// only to a loopback host, or with --insecure.

export interface DialOptions {
  url: string;
  /** SHA-256 of the relay's DER certificate; when set, the only certificate accepted. */
  fingerprint?: Buffer | undefined;
  insecure?: boolean | undefined;
  /** The whole dial (TCP, TLS, WebSocket upgrade) must finish in this time. */
  timeoutMs: number;
  signal?: AbortSignal | undefined;
}

/** True for localhost, 127.0.0.0/8 and ::1 (the only hosts plain ws:// may reach by default). */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) return host === '::1' || host === '0:0:0:0:0:0:0:1' || /^::ffff:127\./i.test(host);
  return false;
}

/** Parses and vets a relay URL before anything is dialled. */
export function checkRelayUrl(url: string, insecure: boolean): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw wicketError('WICKET_ERR_CONFIG', 'the relay URL does not parse; re-enroll with a fresh ticket');
  }
  if (parsed.protocol !== 'ws:' && parsed.protocol !== 'wss:') {
    throw wicketError('WICKET_ERR_CONFIG', `relay URL scheme ${parsed.protocol} is not ws: or wss:`);
  }
  if (parsed.protocol === 'ws:' && !insecure && !isLoopbackHost(parsed.hostname)) {
    throw wicketError('WICKET_ERR_INSECURE_RELAY', `refusing plain ws:// to ${parsed.host}: use wss://, or pass --insecure if you really mean it`);
  }
  return parsed;
}

/** Dials the relay and completes the WebSocket upgrade. Rejects with a WicketError only. */
export async function dialRelay(o: DialOptions): Promise<RelayLink> {
  const url = checkRelayUrl(o.url, o.insecure ?? false);
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const secure = url.protocol === 'wss:';
  const port = Number(url.port || (secure ? 443 : 80));
  const where = `${url.host}`;

  let socket: Socket | undefined;
  let ws: WebSocket | undefined;
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  try {
    return await new Promise<RelayLink>((resolve, reject) => {
      let settled = false;
      const fail = (err: WicketError): void => {
        if (settled) return;
        settled = true;
        ws?.terminate();
        socket?.destroy();
        reject(err);
      };
      timer = setTimeout(() => fail(wicketError('WICKET_ERR_RELAY_UNREACHABLE', `no answer from the relay at ${where} within ${o.timeoutMs} ms`)), o.timeoutMs);
      if (o.signal !== undefined) {
        if (o.signal.aborted) return fail(wicketError('WICKET_ERR_RELAY_UNREACHABLE', 'dial cancelled'));
        onAbort = () => fail(wicketError('WICKET_ERR_RELAY_UNREACHABLE', 'dial cancelled'));
        o.signal.addEventListener('abort', onAbort, { once: true });
      }

      const upgrade = (raw: Socket): void => {
        if (settled) return;
        ws = new WebSocket(url, {
          createConnection: () => raw,
          perMessageDeflate: false,
          maxPayload: RELAY_MAX_FRAME,
          followRedirects: false,
          // The optional relay messages this agent understands (protocol/relay-directory.ts); a
          // relay that predates them ignores the header.
          headers: { [AGENT_FEATURES_HEADER]: FEATURE_RELAYS },
          // Client frames must be masked (RFC 6455 §5.3) against proxy cache poisoning by
          // hostile scripts in browsers; this is no browser, and an all-zero mask lets `ws` send
          // our Buffers without copying and XOR-ing every byte (DESIGN.md: copy as little as possible).
          generateMask: (mask: Buffer) => {
            mask.fill(0);
          },
        });
        ws.once('open', () => {
          if (settled) return;
          settled = true;
          ws!.removeAllListeners('error');
          ws!.removeAllListeners('unexpected-response');
          resolve(new RelayLink(ws!, raw, where));
        });
        ws.once('unexpected-response', (_req, res) => {
          fail(wicketError('WICKET_ERR_RELAY_UNREACHABLE', `${where} answered HTTP ${res.statusCode ?? '?'} instead of a WebSocket upgrade (is it a Wicket relay?)`));
        });
        ws.on('error', (err: NodeJS.ErrnoException) => {
          fail(wicketError('WICKET_ERR_RELAY_UNREACHABLE', `WebSocket upgrade to ${where} failed: ${err.code ?? err.message}`));
        });
      };

      if (secure) {
        const pinned = o.fingerprint;
        const tls: TLSSocket = tlsConnect({
          host,
          port,
          ...(isIP(host) === 0 ? { servername: host } : {}),
          // With a pin, the pin is the trust anchor (the relay's certificate may be self-signed);
          // without one, the usual CA verification applies.
          rejectUnauthorized: pinned === undefined,
          ALPNProtocols: ['http/1.1'],
          minVersion: RELAY_TLS_MIN_VERSION,
          ciphers: RELAY_TLS_CIPHERS,
        });
        socket = tls;
        tls.once('secureConnect', () => {
          if (pinned !== undefined) {
            const cert = tls.getPeerCertificate(false);
            const der = cert && Buffer.isBuffer(cert.raw) ? cert.raw : undefined;
            const presented = der === undefined ? undefined : certificateFingerprint(der);
            if (presented === undefined || !presented.equals(pinned)) {
              return fail(
                wicketError(
                  'WICKET_ERR_RELAY_TLS_PIN',
                  `the certificate of ${where} (sha256 ${presented === undefined ? 'none' : shortFingerprint(presented)}) is not the pinned one (sha256 ${shortFingerprint(pinned)}); nothing was sent`,
                ),
              );
            }
          }
          upgrade(tls);
        });
      } else {
        const plain = netConnect({ host, port });
        socket = plain;
        plain.once('connect', () => upgrade(plain));
      }
      socket.on('error', (err: NodeJS.ErrnoException) => {
        const detail = secure ? describeTlsFailure(err, host) : (err.code ?? err.message);
        const tlsHint = !secure
          ? ''
          : err.code === 'ERR_TLS_CERT_ALTNAME_INVALID'
            ? `; the relay URL must use one of those names (the relay's --public-url)`
            : /CERT|SELF_SIGNED|UNABLE_TO|ERR_TLS/.test(detail)
              ? ' (TLS certificate not trusted; enroll with a ticket that pins it)'
              : '';
        fail(wicketError('WICKET_ERR_RELAY_UNREACHABLE', `cannot reach the relay at ${where}: ${detail}${tlsHint}`));
      });
    });
  } finally {
    clearTimeout(timer);
    if (onAbort !== undefined) o.signal?.removeEventListener('abort', onAbort);
  }
}
