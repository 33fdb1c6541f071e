import { createHash } from 'node:crypto';

// The one rule for pinning a relay's TLS certificate (protocol/README.md, "Ticket"): the pin is
// SHA-256 over the certificate's DER encoding (RELAY_CERT_FINGERPRINT_LEN bytes, which the ticket
// codec checks). The relay computes it for the tickets it mints; an agent computes it over the
// certificate the TLS handshake presented and compares before it sends a byte.

export function certificateFingerprint(der: Uint8Array): Buffer {
  return createHash('sha256').update(der).digest();
}

/** The shortened hex form shown in messages (enough to tell two certificates apart). */
export function shortFingerprint(fingerprint: Uint8Array): string {
  return `${Buffer.from(fingerprint).toString('hex').slice(0, 16)}…`;
}
