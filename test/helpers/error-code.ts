import { isWicketError, type ErrorCode } from '../../protocol/errors.js';

/** What a call did with hostile input: its WICKET_ERR_* code, 'accepted', or 'foreign error' (a bug). */
export function codeOf(fn: () => unknown): ErrorCode | 'accepted' | 'foreign error' {
  try {
    fn();
    return 'accepted';
  } catch (err) {
    return isWicketError(err) ? err.code : 'foreign error';
  }
}
