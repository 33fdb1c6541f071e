// The throwaway CA: a real TLS handshake trusts its server certificate for exactly the names it
// was made for, and nothing else; the private key lands with mode 0600 and the CA key nowhere.

import { X509Certificate } from 'node:crypto';
import { readFile, readdir, stat, writeFile } from 'node:fs/promises';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTestCa } from '../../examples/test-ca.js';
import { STANDIN_NAME, makeTempCa, type TempCa } from './fixtures.js';

let ca: TempCa;
let server: tls.Server;
let port: number;

beforeAll(async () => {
  ca = await makeTempCa([STANDIN_NAME, '127.0.0.1']);
  server = tls.createServer({ cert: ca.certPem, key: ca.keyPem }, (socket) => socket.end('hello'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as { port: number }).port;
});

afterAll(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  await ca?.cleanup();
});

/** Handshake result: 'ok', or the TLS error code the client raised. */
function handshake(options: { servername?: string; ca?: Buffer }): Promise<string> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ...options }, () => {
      socket.end();
      resolve('ok');
    });
    socket.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    socket.setTimeout(10_000, () => socket.destroy(new Error('handshake timeout')));
  });
}

describe('makeTestCa', () => {
  it('issues a server certificate a TLS client accepts for the DNS name when it trusts the CA', async () => {
    expect(await handshake({ servername: STANDIN_NAME, ca: ca.caPem })).toBe('ok');
  });

  it('issues a server certificate valid for the IP address too', async () => {
    // No servername: node checks the certificate against the host, 127.0.0.1, as an IP SAN.
    expect(await handshake({ ca: ca.caPem })).toBe('ok');
  });

  it('is refused for a name it was not made for', async () => {
    expect(await handshake({ servername: 'impostor.internal', ca: ca.caPem })).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
  });

  it('is refused by a client that does not trust the test CA', async () => {
    const code = await handshake({ servername: STANDIN_NAME });
    expect(code).not.toBe('ok');
    expect(code).toMatch(/UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY|SELF_SIGNED/);
  });

  it('is refused under a different throwaway CA', async () => {
    const other = await makeTempCa([STANDIN_NAME]);
    try {
      expect(await handshake({ servername: STANDIN_NAME, ca: other.caPem })).not.toBe('ok');
    } finally {
      await other.cleanup();
    }
  });

  it('makes a CA certificate that signed a non-CA ECDSA P-256 server certificate', () => {
    const caCert = new X509Certificate(ca.caPem);
    const serverCert = new X509Certificate(ca.certPem);
    expect(caCert.ca).toBe(true);
    expect(serverCert.ca).toBe(false);
    expect(serverCert.checkIssued(caCert)).toBe(true);
    expect(serverCert.verify(caCert.publicKey)).toBe(true);
    expect(serverCert.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(serverCert.checkHost(STANDIN_NAME)).toBe(STANDIN_NAME);
    expect(serverCert.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(serverCert.checkHost('aoai-standin.internal.evil')).toBeUndefined();
  });

  it('writes the key with mode 0600 and never writes the CA key', async () => {
    expect((await stat(ca.keyPath)).mode & 0o777).toBe(0o600);
    const files = (await readdir(`${ca.dir}/ca`)).sort();
    expect(files).toEqual(['ca.pem', 'server-key.pem', 'server.pem']);
  });

  it('replaces a stale key file left with loose permissions by one with mode 0600', async () => {
    await writeFile(ca.keyPath, 'stale', { mode: 0o644 });
    const files = await makeTestCa(`${ca.dir}/ca`, { serverNames: [STANDIN_NAME] });
    expect((await stat(files.keyPath)).mode & 0o777).toBe(0o600);
  });

  it('uses the injected clock for the validity window', async () => {
    const now = Date.UTC(2030, 0, 1);
    const files = await makeTestCa(`${ca.dir}/clock`, { serverNames: [STANDIN_NAME], now: () => now, validForMs: 3_600_000 });
    const cert = new X509Certificate(await readFile(files.certPath));
    expect(new Date(cert.validTo).getTime()).toBe(now + 3_600_000);
    expect(new Date(cert.validFrom).getTime()).toBeLessThan(now);
  });

  it('refuses to make a certificate for no name at all', async () => {
    await expect(makeTestCa(`${ca.dir}/none`, { serverNames: [] })).rejects.toThrow(/at least one server name/);
  });
});
