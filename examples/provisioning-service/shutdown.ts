/**
 * Graceful shutdown on SIGTERM/SIGINT: stop accepting connections, let in-flight requests
 * finish (their responses close their connections), then close the issuer (pool, then module).
 * A second signal, or the deadline passing, exits at once with status 1.
 */
import type { Server } from 'http';

import { log } from './log';
import { ServiceState, startDraining } from './routes';

export function installShutdown(server: Server, state: ServiceState, closeIssuer: () => Promise<void>, deadlineMs: number): void {
  const begin = (signal: NodeJS.Signals) => {
    if (state.draining) {
      log('shutdown_forced', { signal });
      process.exit(1);
    }
    startDraining(state);
    log('shutdown_started', { signal });
    const deadline = setTimeout(() => {
      log('shutdown_timeout', { deadlineMs });
      process.exit(1);
    }, deadlineMs);
    deadline.unref();

    // close() stops listening and calls back once every connection has ended; idle keep-alive
    // connections are closed now, busy ones after their response (routes.ts sets Connection: close).
    server.close(() => {
      closeIssuer().then(
        () => {
          log('shutdown_complete');
          clearTimeout(deadline);
          process.exitCode = 0;
        },
        (error: unknown) => {
          log('shutdown_failed', { error: error instanceof Error ? error.message : String(error) });
          process.exit(1);
        },
      );
    });
    server.closeIdleConnections();
  };
  process.on('SIGTERM', begin);
  process.on('SIGINT', begin);
}
