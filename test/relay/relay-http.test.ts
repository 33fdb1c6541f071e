import { connect, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { isWicketError } from '../../protocol/errors.js';
import { encodeData } from '../../protocol/relay-frames.js';
import { LOOPBACK_METRICS_ACCESS, parseMetricsFrom } from '../../relay/metrics-access.js';
import { codeOf } from '../helpers/error-code.js';
import { parseExposition, valueOf } from '../helpers/prometheus-text.js';
import { RawRelayClient } from '../helpers/raw-relay-client.js';
import { relaysStoppedAfterEach } from './relay-fixture.js';

// The relay's plain HTTP in process (test/e2e/metrics.test.ts scrapes real processes): who may
// read /metrics, how a slow client is cut, /readyz while the relay stops, and counters the
// end-to-end test cannot cause on purpose.

const relay = relaysStoppedAfterEach();

/** Sends `request` on a raw TCP connection; resolves with everything read until the relay closes it, and when. */
function rawExchange(port: number, request: string | Buffer, o: { keepOpen?: (socket: Socket) => void } = {}): Promise<{ text: string; closedAfterMs: number }> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const chunks: Buffer[] = [];
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(request);
      o.keepOpen?.(socket);
    });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the relay kept the connection open for 10 s; read: ${Buffer.concat(chunks).toString('latin1').slice(0, 200)}`));
    }, 10_000);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closedAfterMs: Date.now() - started });
    });
  });
}

describe('--metrics-from', () => {
  it('takes any, addresses and CIDR ranges of both families; the list replaces the loopback default', () => {
    expect(parseMetricsFrom('any').allows('203.0.113.9')).toBe(true);
    expect(parseMetricsFrom(' ANY ').allows('::1')).toBe(true);
    const access = parseMetricsFrom('10.0.0.0/8, 192.168.1.7,fd00::/8');
    expect(['10.1.2.3', '::ffff:10.9.9.9', '192.168.1.7', 'fd12::1'].map((a) => access.allows(a))).toEqual([true, true, true, true]);
    expect(['11.0.0.1', '192.168.1.8', '127.0.0.1', '::1', 'fe80::1', undefined].map((a) => access.allows(a))).toEqual([false, false, false, false, false, false]);
    expect(access.description).toBe('10.0.0.0/8,192.168.1.7/32,fd00::/8');
    expect(parseMetricsFrom('0.0.0.0/0').allows('8.8.8.8')).toBe(true);
    expect(['127.0.0.1', '127.9.9.9', '::1', '::ffff:127.0.0.1'].every((a) => LOOPBACK_METRICS_ACCESS.allows(a))).toBe(true);
    expect(['10.0.0.1', '::2', '::ffff:10.0.0.1'].some((a) => LOOPBACK_METRICS_ACCESS.allows(a))).toBe(false);
  });

  it.each([
    ['', 'empty'],
    ['10.0.0.0/33', 'prefix too long for IPv4'],
    ['fd00::/129', 'prefix too long for IPv6'],
    ['10.0.0/8', 'three octets'],
    ['10.0.0.0/08', 'leading zero in the prefix'],
    ['10.0.0.0/', 'empty prefix'],
    ['10.0.0.0/8,', 'trailing comma'],
    ['10.0.0.0/8,,127.0.0.1', 'empty entry'],
    ['any,10.0.0.0/8', 'any mixed with ranges'],
    ['localhost', 'a host name'],
    ['256.0.0.1', 'octet over 255'],
    ['fe80::1%eth0', 'a zone id'],
    ['10.0.0.0/8 127.0.0.1', 'spaces instead of commas'],
    ['10.0.0.0/-1', 'negative prefix'],
  ])('%j (%s) is WICKET_ERR_ARGUMENT naming --metrics-from', (text) => {
    expect(codeOf(() => parseMetricsFrom(text))).toBe('WICKET_ERR_ARGUMENT');
    try {
      parseMetricsFrom(text);
    } catch (err) {
      expect(isWicketError(err) && err.message).toMatch(/--metrics-from/);
    }
  });
});

describe('plain HTTP on the relay port', () => {
  it('/metrics from an address the list does not allow is 403 saying how to allow it; /healthz and /readyz stay open', async () => {
    const r = await relay({ metricsAccess: parseMetricsFrom('10.0.0.0/8') });
    const base = r.relay.url.replace('ws://', 'http://');
    const refused = await fetch(`${base}/metrics`);
    expect(refused.status).toBe(403);
    expect(await refused.text()).toMatch(/--metrics-from .*10\.0\.0\.0\/8.*any/);
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
  });

  it('a client that sends half a request head is answered 408 and cut after the timeout; WebSockets are not', async () => {
    const r = await relay({ settings: { httpTimeoutMs: 600 } });
    const member = await r.member();
    const slow = await rawExchange(r.relay.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n');
    expect(slow.text).toMatch(/^HTTP\/1\.1 408/);
    expect(slow.closedAfterMs).toBeLessThan(3_000);
    const silent = await rawExchange(r.relay.port, '');
    expect(silent.closedAfterMs).toBeLessThan(3_000);
    // The member's upgraded connection outlived both timeouts and still gets answers.
    expect(member.closeInfo).toBeUndefined();
    member.sendControl({ t: 'open', id: 7, name: 'nobody-serves-this' });
    expect((await member.next('error')).code).toBe('WICKET_ERR_RELAY_NAME_UNKNOWN');
  });

  it('/readyz is 503 with the reason while the relay stops', async () => {
    const r = await relay();
    const answer = rawExchange(r.relay.port, 'GET /readyz HTTP/1.1\r\nHost: x\r\n', {
      keepOpen: (socket) => {
        // The request is complete only once close() began.
        void r.relay.close();
        setTimeout(() => socket.write('\r\n'), 20);
      },
    });
    const { text } = await answer;
    expect(text).toMatch(/^HTTP\/1\.1 503/);
    expect(text).toMatch(/not ready: the relay is shutting down/);
  });

  it('counts a DATA frame before auth as dropped (before_auth) and the refused login by its code', async () => {
    const r = await relay();
    const client = await RawRelayClient.connect(r.relay.url);
    client.sendRaw(encodeData(1, Buffer.from('x')));
    await client.closed;
    const metrics = parseExposition(await (await fetch(`${r.relay.url.replace('ws://', 'http://')}/metrics`)).text());
    expect(valueOf(metrics, 'wicket_relay_dropped_frames_total', { reason: 'before_auth' })).toBe(1);
    expect(valueOf(metrics, 'wicket_relay_handshakes_total', { outcome: 'WICKET_ERR_RELAY_PROTOCOL' })).toBe(1);
  });
});
