// Reading raw HTTP/1.1 responses off a byte stream, for tests that drive a server with raw bytes
// (pipelined requests, hostile framing) where no HTTP client would show what was really sent.

export interface ParsedResponse {
  status: number;
  /** Header names lower-cased; a repeated header keeps its last value. */
  headers: Record<string, string>;
  body: string;
}

/**
 * The complete HTTP/1.1 responses in `bytes`, in order (content-length or chunked bodies). A
 * response still arriving is left out, so a test can poll until the count it waits for is there.
 */
export function responses(bytes: Buffer): ParsedResponse[] {
  const text = bytes.toString('latin1');
  const out: ParsedResponse[] = [];
  let at = 0;
  for (;;) {
    const headEnd = text.indexOf('\r\n\r\n', at);
    if (headEnd < 0) return out;
    const [statusLine, ...lines] = text.slice(at, headEnd).split('\r\n');
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    let cursor = headEnd + 4;
    let body = '';
    if (headers['transfer-encoding'] === 'chunked') {
      for (;;) {
        const sizeEnd = text.indexOf('\r\n', cursor);
        if (sizeEnd < 0) return out;
        const size = parseInt(text.slice(cursor, sizeEnd), 16);
        if (text.length < sizeEnd + 2 + size + 2) return out;
        body += text.slice(sizeEnd + 2, sizeEnd + 2 + size);
        cursor = sizeEnd + 2 + size + 2;
        if (size === 0) break;
      }
    } else {
      const length = Number(headers['content-length'] ?? 0);
      if (text.length < cursor + length) return out;
      body = text.slice(cursor, cursor + length);
      cursor += length;
    }
    out.push({ status: Number(statusLine!.split(' ')[1]), headers, body });
    at = cursor;
  }
}
