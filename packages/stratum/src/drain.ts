import { setTimeout as delay } from 'node:timers/promises';
import type { Connection } from './connection.js';
import type { StratumLogger } from './options.js';

export interface DrainPlan {
  /** Connections still open, looked up again before every wave. */
  connections(): Connection[];
  /** Writes the session to Redis so the miner can resume it on another server. */
  save(conn: Connection): Promise<void>;
  /** Sends `client.reconnect`. */
  reconnect(conn: Connection): void;
  /** Resolves once no connection is left. */
  waitEmpty(): Promise<void>;
  /** Closes a connection that ignored the reconnect. */
  closeRest(conn: Connection): void;
  waveSize: number;
  waveIntervalMs: number;
  graceMs: number;
  logger: StratumLogger;
}

/**
 * Sends every connection `client.reconnect`, `waveSize` at a time with `waveIntervalMs`
 * between waves (so the servers taking them over are not hit by every miner at once), each
 * session saved first. Then waits up to `graceMs` for them to leave and closes the rest.
 */
export async function drainConnections(plan: DrainPlan): Promise<void> {
  const told = new WeakSet<Connection>();
  let waves = 0;
  for (;;) {
    const wave = plan
      .connections()
      .filter((c) => !told.has(c))
      .slice(0, plan.waveSize);
    if (wave.length === 0) break;
    if (waves > 0) await delay(plan.waveIntervalMs);
    waves++;
    await Promise.all(
      wave.map((conn) =>
        plan.save(conn).catch((error: unknown) => {
          plan.logger.warn(
            { err: error, sessionId: conn.state.sessionId },
            'stratum: session not saved before reconnect',
          );
        }),
      ),
    );
    for (const conn of wave) {
      told.add(conn);
      if (!conn.closed) plan.reconnect(conn);
    }
    plan.logger.info({ wave: waves, sessions: wave.length }, 'stratum: drain wave sent');
  }
  let timer: NodeJS.Timeout | undefined;
  const graceOver = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), plan.graceMs);
  });
  const outcome = await Promise.race([plan.waitEmpty().then(() => 'empty' as const), graceOver]);
  clearTimeout(timer);
  if (outcome === 'timeout') {
    const rest = plan.connections();
    plan.logger.warn({ sessions: rest.length }, 'stratum: closing sessions that ignored client.reconnect');
    for (const conn of rest) plan.closeRest(conn);
  }
}
