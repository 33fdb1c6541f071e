import type { ErrorCode, WicketError } from '../protocol/errors.js';

/** A resource's most recent failure, as `agent status` shows it: code, message and when (ISO 8601). */
export interface LastError {
  code: ErrorCode;
  message: string;
  at: string;
}

export function lastErrorOf(err: WicketError, now: number = Date.now()): LastError {
  const prefix = `${err.code}: `;
  const message = err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message;
  return { code: err.code, message, at: new Date(now).toISOString() };
}
