import type { PeerCertificate } from 'node:tls';

// A TLS name mismatch is the one certificate failure an operator fixes by reading: the fix is to
// ask for a name the certificate has (--tls-servername, the relay URL's host), so the error lists
// the names it has. Names are public parts of a certificate the peer showed to anyone who dialled.

/** Node's error for a certificate that does not cover the name asked for (checkServerIdentity). */
interface NameMismatchError extends NodeJS.ErrnoException {
  cert?: PeerCertificate;
  host?: string;
}

/** `CN=x, subjectAltName DNS:a, IP Address:1.2.3.4` (or what of it the certificate has). */
export function certificateNames(cert: PeerCertificate | undefined): string {
  const subject = cert?.subject as Record<string, string | string[] | undefined> | undefined;
  const cn = subject?.CN;
  const parts: string[] = [];
  if (cn !== undefined) parts.push(`CN=${Array.isArray(cn) ? cn.join(', CN=') : cn}`);
  if (cert?.subjectaltname !== undefined && cert.subjectaltname !== '') parts.push(`subjectAltName ${cert.subjectaltname}`);
  return parts.length > 0 ? parts.join(', ') : 'no names';
}

/**
 * One line for a TLS failure towards `expected`: for a name mismatch, the expected name and every
 * name the certificate has; otherwise Node's code (CERT_HAS_EXPIRED, UNABLE_TO_VERIFY_LEAF_SIGNATURE…).
 */
export function describeTlsFailure(err: NodeJS.ErrnoException, expected: string): string {
  if (err.code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    const mismatch = err as NameMismatchError;
    return `the certificate is not valid for ${expected}: it names ${certificateNames(mismatch.cert)} (ERR_TLS_CERT_ALTNAME_INVALID)`;
  }
  return err.code ?? err.message;
}
