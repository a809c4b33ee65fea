import { ServerMethod, formatNotification } from '@hashwire/protocol';
import type { Connection } from './connection.js';
import type { JobFeed } from './job-feed.js';
import type { DaemonLossOptions } from './options.js';

/**
 * Texts for miners while the pool is suspended (no coin daemon answers, so no real work):
 * what they are told is fixed and plain; the operator's reason (daemon errors, addresses)
 * goes to the log only.
 */
export const SUSPENDED_GOODBYE =
  'this pool has no work from its coin daemons right now: switch to your backup pool and come back later';

export const SUSPENDED_REFUSAL =
  'this pool has no work from its coin daemons right now: try again later or use a backup pool';

/** What sending miners away needs from the server. */
export interface SendAwayPlan {
  /** Every open connection, looked up again when the grace ends. */
  connections(): Connection[];
  /** No more jobs for this session. */
  stopJobs(conn: Connection): void;
  /** Closes with reason `suspended` (after the last line is out). */
  close(conn: Connection, detail: string): void;
  /** Closes a miner that does not read (its output passed the cap). */
  overflow(conn: Connection): void;
  /** The backup pool; without one, sessions are told why and closed. */
  reconnectTo: DaemonLossOptions['reconnectTo'];
  graceMs: number;
}

/**
 * Sends every session away at once (a backup pool takes all of them; there is nothing to
 * spread): `client.reconnect` to the backup pool, or a `client.show_message` goodbye and a
 * close. Connections mid-handshake are closed (their subscribe would be refused anyway).
 * With a backup pool, returns the timer that closes whoever is still here after `graceMs`.
 */
export function sendMinersAway(plan: SendAwayPlan): NodeJS.Timeout | null {
  const to = plan.reconnectTo;
  const goodbye = to
    ? formatNotification(ServerMethod.Reconnect, [to.host, to.port, to.waitSeconds ?? 0])
    : formatNotification(ServerMethod.ShowMessage, [SUSPENDED_GOODBYE]);
  const connections = plan.connections();
  for (const conn of connections) {
    if (!conn.state.subscribed) {
      plan.close(conn, 'no work');
      continue;
    }
    // Shares it has in flight are still answered.
    plan.stopJobs(conn);
    if (!conn.write(goodbye)) plan.overflow(conn);
    else if (!to) plan.close(conn, 'no work');
  }
  if (!to || connections.length === 0) return null;
  const timer = setTimeout(() => {
    for (const conn of plan.connections()) plan.close(conn, 'did not leave');
  }, plan.graceMs);
  timer.unref();
  return timer;
}

/** What `followDaemonHealth` suspends and resumes (a `StratumServer`). */
export interface Suspendable {
  suspend(reason: string): void;
  resume(): void;
}

/**
 * Sends miners away while the job feed has no fresh work for them (`JobFeed` `unhealthy`: no
 * jobmanager has had a coin daemon for its grace period, or the newest job is older than its
 * bound, as when the daemons answer but give no template; until then they keep mining the last
 * job), and takes them back when fresh work comes (`healthy`). Returns the function that stops
 * following.
 */
export function followDaemonHealth(
  feed: Pick<JobFeed, 'on' | 'off' | 'isHealthy'>,
  server: Suspendable,
): () => void {
  const onUnhealthy = (event: { sinceMs: number; reasons: string[] }) =>
    server.suspend(`no fresh work for ${event.sinceMs} ms: ${event.reasons.join('; ')}`);
  const onHealthy = () => server.resume();
  feed.on('unhealthy', onUnhealthy);
  feed.on('healthy', onHealthy);
  if (!feed.isHealthy()) server.suspend('no fresh work from any jobmanager');
  return () => {
    feed.off('unhealthy', onUnhealthy);
    feed.off('healthy', onHealthy);
  };
}
