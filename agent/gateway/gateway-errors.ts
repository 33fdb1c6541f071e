import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { ERROR_CODES, type ErrorCode } from '../../protocol/errors.js';

// Failures the gateway answers itself reach the app as HTTP with an Azure-shaped JSON body,
//   {"error": {"code": "WICKET_ERR_…", "message": "…", "type": "wicket_gateway", "param": null}}
// so the openai SDK raises an APIError with the status, the code and a message that says what to
// do, instead of a connection error. Backend answers (a 400 for a bad body, say) pass through as
// they are: those are the service's to word.

export interface GatewayErrorAnswer {
  status: number;
  code: ErrorCode;
  message: string;
  headers?: Record<string, string>;
}

export function errorBody(code: ErrorCode, message: string): string {
  return JSON.stringify({ error: { code, message, type: 'wicket_gateway', param: null } });
}

/** The message with the code's fix appended when the message does not already say what to do. */
export function withFix(code: ErrorCode, message: string): string {
  return `${message} ${ERROR_CODES[code].fix}`;
}

/** Answers `res` with the error (a response already under way cannot be changed: it is cut instead). */
export function sendGatewayError(res: ServerResponse, answer: GatewayErrorAnswer, extraHeaders: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = errorBody(answer.code, answer.message);
  res.writeHead(answer.status, {
    ...extraHeaders,
    ...answer.headers,
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(body)),
    'x-wicket-error-code': answer.code,
  });
  res.end(body);
}

/** Azure's pair: whole seconds (at least 1) for retry-after, exact milliseconds for retry-after-ms. */
export function retryHeaders(ms: number): Record<string, string> {
  const wait = Math.max(0, Math.ceil(ms));
  return { 'retry-after': String(Math.max(1, Math.ceil(wait / 1000))), 'retry-after-ms': String(wait) };
}

const STATUS_TEXT: Readonly<Record<number, string>> = { 400: 'Bad Request', 408: 'Request Timeout', 413: 'Content Too Large', 431: 'Request Header Fields Too Large' };

/**
 * An error answered on the raw connection, outside any request (the parser refused the bytes, or
 * the request head never finished): one response with `connection: close`, then the stream ends.
 */
export function writeRawError(connection: Duplex, status: number, message: string): void {
  if (!connection.writable) {
    connection.destroy();
    return;
  }
  const body = errorBody('WICKET_ERR_HTTP_REQUEST', message);
  connection.end(
    `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
      `x-wicket-error-code: WICKET_ERR_HTTP_REQUEST\r\nconnection: close\r\n\r\n${body}`,
  );
}
