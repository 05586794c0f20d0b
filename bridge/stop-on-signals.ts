/**
 * How both processes end: the first SIGTERM, SIGINT (or a caller's own reason)
 * starts one graceful stop; the process exits 0 when it completes, 1 if it fails.
 */
import type { Logger } from './log';

export interface Stopper {
  stop(reason: string): void;
  readonly stopping: boolean;
}

export function stopOnSignals(logger: Logger, message: string, close: () => Promise<void>): Stopper {
  let stopping = false;
  const stop = (reason: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info(message, { signal: reason });
    close().then(
      () => process.exit(0),
      (err: Error) => {
        logger.error('stop failed', { error: err.message });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  return {
    stop,
    get stopping() {
      return stopping;
    },
  };
}
