import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { wicketError } from '../../protocol/errors.js';
import { GATEWAY_API_KEY_FILE_MAX_BYTES } from '../../protocol/limits.js';
import { Secret } from '../../protocol/secret.js';

// The api-key of a backend lives in its own file, never in the node config (configs get pasted
// into tickets, chats and bug reports). The file is held to ssh's rule for private keys: only its
// owner may have any access, so a key readable by group or other is refused rather than used.
// It is read once, when the outlet starts; rotating the key means restarting the outlet.

/** Visible ASCII only: the key goes verbatim into an HTTP header, where CR, LF or NUL would split it. */
const HEADER_SAFE = /^[\x21-\x7e]+$/;

/**
 * Reads the api-key in `path`. Throws WICKET_ERR_CONFIG naming the file when it is missing,
 * unreadable, not a regular file, readable or writable by group/other, empty, too large, or not
 * one line of visible characters. The messages never contain any of the file's content.
 */
export function readApiKeyFile(path: string): Secret<string> {
  let fd: number;
  try {
    // O_NONBLOCK: a FIFO planted at the path must not hang the outlet's start-up; fstat refuses it below.
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw wicketError('WICKET_ERR_CONFIG', `api-key file ${path} does not exist; write the backend's key there (mode 0600)`, err);
    if (code === 'EACCES') throw wicketError('WICKET_ERR_CONFIG', `api-key file ${path} is not readable by this user (${code}); it must belong to the user running the agent, mode 0600`, err);
    throw wicketError('WICKET_ERR_CONFIG', `cannot open api-key file ${path} (${code ?? 'error'})`, err);
  }
  try {
    // Check the file actually opened (no window between a stat of the path and the read).
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw wicketError('WICKET_ERR_CONFIG', `api-key file ${path} is not a regular file`);
    if ((stat.mode & 0o077) !== 0) {
      const mode = (stat.mode & 0o777).toString(8).padStart(4, '0');
      throw wicketError(
        'WICKET_ERR_CONFIG',
        `api-key file ${path} has mode ${mode}; group or other may access it. The mode must be 0600 or 0400 (as ssh requires of private keys): run \`chmod 600 ${path}\``,
      );
    }
    if (stat.size > GATEWAY_API_KEY_FILE_MAX_BYTES) {
      throw wicketError('WICKET_ERR_CONFIG', `api-key file ${path} is ${stat.size} bytes, more than ${GATEWAY_API_KEY_FILE_MAX_BYTES}; it should hold only the key`);
    }
    // One byte more than the cap, so a file that grew after the fstat is still caught.
    const buffer = Buffer.alloc(GATEWAY_API_KEY_FILE_MAX_BYTES + 1);
    let length = 0;
    for (;;) {
      const read = readSync(fd, buffer, length, buffer.length - length, null);
      if (read === 0) break;
      length += read;
      if (length === buffer.length) throw wicketError('WICKET_ERR_CONFIG', `api-key file ${path} is more than ${GATEWAY_API_KEY_FILE_MAX_BYTES} bytes; it should hold only the key`);
    }
    const text = buffer.toString('utf8', 0, length);
    buffer.fill(0);
    // `echo KEY > file` and editors add one newline; only that one is forgiven.
    const key = text.endsWith('\r\n') ? text.slice(0, -2) : text.endsWith('\n') ? text.slice(0, -1) : text;
    if (key.length === 0) throw wicketError('WICKET_ERR_CONFIG', `api-key file ${path} is empty; write the backend's key there`);
    if (!HEADER_SAFE.test(key)) {
      throw wicketError('WICKET_ERR_CONFIG', `api-key file ${path} must hold the key alone, on one line, without spaces or control characters`);
    }
    return new Secret(key);
  } finally {
    closeSync(fd);
  }
}
