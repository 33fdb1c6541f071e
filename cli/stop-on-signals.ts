import type { Logger } from './logger.js';

// How a long-running relay process (`relay start`, `relay authority`) ends: on SIGTERM or SIGINT it
// logs `stopping` (with `fields()`, e.g. what it did), closes, flushes its log and exits 0, or 1 when
// closing failed. A second signal while closing exits 1 at once (an operator's "stop now").

export function stopOnSignals(logger: Logger, close: () => Promise<void>, fields: () => Record<string, unknown> = () => ({})): void {
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) process.exit(1);
    stopping = true;
    logger.info({ signal, ...fields() }, 'stopping');
    close().then(
      () => logger.flush(() => process.exit(0)),
      (err: unknown) => {
        logger.error({ err }, 'error while stopping');
        logger.flush(() => process.exit(1));
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}
