import { generateKeyPairSync } from 'node:crypto';

// Azure requires an SSH key (or a password) on a Linux VM. When the operator gives none
// (ADMIN_SSH_PUBLIC_KEY), the VMs get a freshly generated public key whose private half is never
// written anywhere: nobody can log in, and every operation goes through the VM run-command API.

function sshString(data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  return Buffer.concat([len, data]);
}

/** RFC 4251 mpint: big-endian, with a 0x00 in front when the top bit is set (it is positive). */
function sshMpint(unsignedBigEndian: Buffer): Buffer {
  let start = 0;
  while (start < unsignedBigEndian.length - 1 && unsignedBigEndian[start] === 0) start++;
  const trimmed = unsignedBigEndian.subarray(start);
  return sshString((trimmed[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed);
}

/**
 * One `ssh-rsa AAAA… comment` line whose private key is discarded. RSA because Azure has not
 * always accepted Ed25519 keys; 2048 bits (Azure's minimum) because the strength of a key whose
 * private half no longer exists does not matter, and a 3072-bit key takes a second to generate.
 */
export function throwawaySshPublicKey(comment = 'wicket-throwaway-no-private-key'): string {
  const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = publicKey.export({ format: 'jwk' });
  if (typeof jwk.n !== 'string' || typeof jwk.e !== 'string') throw new Error('RSA key export lacks n or e');
  const blob = Buffer.concat([
    sshString(Buffer.from('ssh-rsa')),
    sshMpint(Buffer.from(jwk.e, 'base64url')),
    sshMpint(Buffer.from(jwk.n, 'base64url')),
  ]);
  return `ssh-rsa ${blob.toString('base64')} ${comment}`;
}
