import { createHash, KeyObject, webcrypto, X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type * as X509 from '@peculiar/x509';
import { wicketError } from '../protocol/errors.js';
import { SELF_SIGNED_CERT_VALIDITY_MS } from '../protocol/limits.js';
import { certificateFingerprint } from '../protocol/relay-certificate.js';
import type { RelayDataPaths } from './data-dir.js';

// The relay's TLS material. Either the operator's certificate (--tls-cert/--tls-key, verified by
// agents through their CA store, so not pinned: pinning would break every agent at renewal), or a
// self-signed ECDSA P-256 certificate generated ONCE into the data folder, whose SHA-256 DER
// fingerprint (protocol/relay-certificate.ts) goes into every ticket so agents can pin it.

export interface RelayTlsMaterial {
  readonly cert: Buffer;
  readonly key: Buffer;
  /** SHA-256 of the DER certificate, present when agents should pin it (the self-signed case). */
  readonly fingerprint?: Buffer;
}

const EC_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export function fingerprintOfCertificate(pem: Buffer | string): Buffer {
  try {
    return certificateFingerprint(new X509Certificate(pem).raw);
  } catch (err) {
    throw wicketError('WICKET_ERR_ARGUMENT', 'the TLS certificate is not a PEM X.509 certificate', err);
  }
}

export function loadTlsFiles(certFile: string, keyFile: string): RelayTlsMaterial {
  const read = (file: string, what: string): Buffer => {
    try {
      return readFileSync(file);
    } catch {
      throw wicketError('WICKET_ERR_ARGUMENT', `cannot read the TLS ${what} file ${file}`);
    }
  };
  const cert = read(certFile, 'certificate');
  fingerprintOfCertificate(cert); // fails early and clearly on a file that is not a certificate
  return { cert, key: read(keyFile, 'key') };
}

function subjectAltNames(hosts: readonly string[]): X509.JsonGeneralName[] {
  const names = new Map<string, X509.JsonGeneralName>();
  for (const host of [...hosts, 'localhost', '127.0.0.1']) {
    if (host === '' || host === '0.0.0.0' || host === '::') continue;
    names.set(host, { type: isIP(host) === 0 ? 'dns' : 'ip', value: host });
  }
  return [...names.values()];
}

/** Reuses DIR/tls/{cert,key}.pem, or generates them once with `hosts` in the SAN. */
export async function loadOrCreateSelfSigned(paths: RelayDataPaths, hosts: readonly string[], now: Date): Promise<RelayTlsMaterial> {
  if (existsSync(paths.tlsCert) && existsSync(paths.tlsKey)) {
    const cert = readFileSync(paths.tlsCert);
    return { cert, key: readFileSync(paths.tlsKey), fingerprint: fingerprintOfCertificate(cert) };
  }
  // Loaded only when a certificate is made: the library (and the reflect polyfill it needs) is large.
  await import('reflect-metadata');
  const x509 = await import('@peculiar/x509');
  x509.cryptoProvider.set(webcrypto as unknown as Crypto);
  const keys = (await webcrypto.subtle.generateKey(EC_ALGORITHM, true, ['sign', 'verify'])) as CryptoKeyPair;
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: createHash('sha256').update(String(now.getTime())).digest('hex').slice(0, 16).replace(/^[89a-f]/, '1'),
    name: 'CN=wicket relay',
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + SELF_SIGNED_CERT_VALIDITY_MS),
    keys,
    signingAlgorithm: EC_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(subjectAltNames(hosts)),
    ],
  });
  const key = Buffer.from(KeyObject.from(keys.privateKey).export({ type: 'pkcs8', format: 'pem' }));
  const cert = Buffer.from(certificate.toString('pem') + '\n');
  mkdirSync(paths.tlsDir, { recursive: true, mode: 0o700 });
  writeFileSync(paths.tlsKey, key, { mode: 0o600 });
  // Public, but kept like everything else in the data folder: the relay's user only.
  writeFileSync(paths.tlsCert, cert, { mode: 0o600 });
  return { cert, key, fingerprint: fingerprintOfCertificate(cert) };
}
