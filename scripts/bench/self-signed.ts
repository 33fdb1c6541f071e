import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onCleanup } from './cleanup.js';

// A throwaway self-signed certificate (P-256, CN 127.0.0.1, one day) for the reference benches'
// own TLS hops (pipe-chain.ts, minimal-pipeline.ts), removed when the bench exits.

export interface CertificateFiles {
  /** PEM certificate file. */
  cert: string;
  /** PEM private key file. */
  key: string;
}

export function selfSignedCertificate(purpose: string): CertificateFiles {
  const dir = mkdtempSync(join(tmpdir(), `wicket-${purpose}-`));
  onCleanup(`${purpose} certificate folder`, () => rmSync(dir, { recursive: true, force: true }));
  const [cert, key] = [join(dir, 'cert.pem'), join(dir, 'key.pem')];
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-subj', '/CN=127.0.0.1', '-days', '1'], { stdio: 'ignore' });
  return { cert, key };
}
