import type { RedisClient } from '@hashwire/registry';
import { ONLINE_WINDOW_MS } from './credit.js';
import type { ReporterKeys } from './keys.js';
import { runScript } from './scripts.js';

/** Workers taken offline per script run: bounds how long one run holds Redis. */
const SWEEP_BATCH = 1000;

export interface OnlineSweepOptions {
  redis: RedisClient;
  keys: ReporterKeys;
  chain: string;
  /** Entries kept in the chain's events stream (approximate). */
  eventsMaxLen: number;
}

/**
 * Takes the workers with no accepted share within `ONLINE_WINDOW_MS` before `now` out of the
 * chain's online set, each with its `worker.offline` event (`online-sweep.lua`: atomic, so
 * reporters sweeping at once emit each event once). Returns how many went offline.
 */
export async function sweepOfflineWorkers(options: OnlineSweepOptions, now = Date.now()): Promise<number> {
  const { redis, keys, chain, eventsMaxLen } = options;
  let total = 0;
  for (;;) {
    const gone = Number(
      await runScript(
        redis,
        'online-sweep',
        [keys.onlineWorkers, keys.events],
        [now - ONLINE_WINDOW_MS, now, chain, eventsMaxLen, SWEEP_BATCH],
      ),
    );
    total += gone;
    if (gone < SWEEP_BATCH) return total;
  }
}

export interface OnlineSweeper {
  start(): void;
  /** Stops the timer and waits for a sweep under way. */
  stop(): Promise<void>;
}

/** Sweeps every `intervalMs` (a worker goes offline at most that long after its window ends). */
export function createOnlineSweeper(
  options: OnlineSweepOptions & { intervalMs: number; onError: (error: Error) => void },
): OnlineSweeper {
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<unknown> | null = null;
  const tick = () => {
    if (running) return;
    running = sweepOfflineWorkers(options)
      .catch(options.onError)
      .finally(() => {
        running = null;
      });
  };
  return {
    start() {
      timer ??= setInterval(tick, options.intervalMs);
      timer.unref();
    },
    async stop() {
      if (timer) clearInterval(timer);
      timer = null;
      await running;
    },
  };
}
