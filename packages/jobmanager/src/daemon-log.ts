import type { DaemonPool } from '@hashwire/chain';
import type { Logger } from '@hashwire/core';

/**
 * Logs each daemon going down (again only when its error changes, not at every retry) and coming back.
 * Blocks are submitted to every daemon, so one daemon down matters even while another serves.
 */
export function followDaemons(daemons: DaemonPool, log: Logger): void {
  const logged = new Map<string, string>();
  daemons.on('down', ({ daemon, error, retryInMs }) => {
    if (logged.get(daemon) === error.message) return;
    logged.set(daemon, error.message);
    log.error(
      { daemon, err: error.message, retryInMs },
      `jobmanager: daemon ${daemon} failed: ${error.message}`,
    );
  });
  daemons.on('up', ({ daemon }) => {
    if (!logged.delete(daemon)) return;
    log.info({ daemon }, `jobmanager: daemon ${daemon} answers again`);
  });
}
