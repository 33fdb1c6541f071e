// A throwaway certificate authority for the demo and the tests: one self-signed CA and one server
// certificate for the names the stand-in answers to (e.g. `aoai-standin.internal` and
// `127.0.0.1`), both ECDSA P-256 with SHA-256, made with @peculiar/x509 on node's WebCrypto.
//
// The CA's private key is never written: nothing else can ever be signed by it, so a leaked
// ca.pem lets nobody impersonate anything. Key files are written with mode 0600.
//
//   const { caCertPath, certPath, keyPath } = await makeTestCa(dir, { serverNames: ['aoai-standin.internal', '127.0.0.1'] });

import 'reflect-metadata'; // @peculiar/x509's dependency injection needs the Reflect metadata API
import * as x509 from '@peculiar/x509';
import { webcrypto } from 'node:crypto';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';

export interface TestCaOptions {
  /** DNS names and IP addresses the server certificate is valid for (at least one). */
  readonly serverNames: readonly string[];
  /** Validity from now; default 1 day (the demo's certificates are for one run). */
  readonly validForMs?: number;
  /** Clock, for tests. */
  readonly now?: () => number;
}

export interface TestCaFiles {
  readonly caCertPath: string;
  readonly certPath: string;
  readonly keyPath: string;
}

const CA_FILE = 'ca.pem';
const CERT_FILE = 'server.pem';
const KEY_FILE = 'server-key.pem';
const DEFAULT_VALIDITY_MS = 24 * 60 * 60 * 1000;
/** Back-date notBefore so a peer whose clock is a little behind still accepts the certificate. */
const CLOCK_SKEW_MS = 5 * 60 * 1000;
const ECDSA_P256: EcKeyGenParams & EcdsaParams = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };

const crypto = webcrypto as unknown as Crypto;

export async function makeTestCa(dir: string, options: TestCaOptions): Promise<TestCaFiles> {
  if (options.serverNames.length === 0) throw new Error('makeTestCa needs at least one server name');
  const now = options.now?.() ?? Date.now();
  const notBefore = new Date(now - CLOCK_SKEW_MS);
  const notAfter = new Date(now + (options.validForMs ?? DEFAULT_VALIDITY_MS));

  const caKeys = await crypto.subtle.generateKey(ECDSA_P256, false, ['sign', 'verify']);
  const caCert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: randomSerial(),
      name: 'CN=Wicket demo test CA, O=Wicket demo',
      keys: caKeys,
      notBefore,
      notAfter,
      signingAlgorithm: ECDSA_P256,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey, false, crypto),
      ],
    },
    crypto,
  );

  const serverKeys = await crypto.subtle.generateKey(ECDSA_P256, true, ['sign', 'verify']);
  const primaryName = options.serverNames[0] ?? '';
  const serverCert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: randomSerial(),
      subject: `CN=${primaryName.replace(/[,+=<>#;"\\]/g, '_')}`,
      issuer: caCert.subject,
      publicKey: serverKeys.publicKey,
      signingKey: caKeys.privateKey,
      notBefore,
      notAfter,
      signingAlgorithm: ECDSA_P256,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
        new x509.SubjectAlternativeNameExtension(
          options.serverNames.map((name) => ({ type: isIP(name) ? 'ip' : 'dns', value: name }) as const),
          false,
        ),
        await x509.SubjectKeyIdentifierExtension.create(serverKeys.publicKey, false, crypto),
        await x509.AuthorityKeyIdentifierExtension.create(caKeys.publicKey, false, crypto),
      ],
    },
    crypto,
  );

  const pkcs8 = await crypto.subtle.exportKey('pkcs8', serverKeys.privateKey);
  const keyPem = x509.PemConverter.encode(pkcs8, 'PRIVATE KEY');

  await mkdir(dir, { recursive: true, mode: 0o700 });
  const files: TestCaFiles = {
    caCertPath: join(dir, CA_FILE),
    certPath: join(dir, CERT_FILE),
    keyPath: join(dir, KEY_FILE),
  };
  await writeFile(files.caCertPath, caCert.toString('pem') + '\n', { mode: 0o644 });
  await writeFile(files.certPath, serverCert.toString('pem') + '\n', { mode: 0o644 });
  // `mode` applies only when the file is created: chmod too, in case an earlier run left one.
  await writeFile(files.keyPath, keyPem + '\n', { mode: 0o600 });
  await chmod(files.keyPath, 0o600);
  return files;
}

/** A positive 16-byte serial (RFC 5280 §4.1.2.2: at most 20 octets, positive). */
function randomSerial(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[0] = (bytes[0] ?? 0) & 0x7f;
  if (bytes[0] === 0) bytes[0] = 1;
  return Buffer.from(bytes).toString('hex');
}
