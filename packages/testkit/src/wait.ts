import { setTimeout as delay } from 'node:timers/promises';

export interface WaitOptions {
  /** @defaultValue 30_000 */
  timeoutMs?: number;
  /** Pause between two checks. @defaultValue 50 */
  intervalMs?: number;
  /** Names the condition in the timeout error. */
  what?: string;
}

/** Thrown by a condition to end `waitFor` at once (the thing waited for can no longer happen). */
export class StopWaiting extends Error {
  override readonly name = 'StopWaiting';
}

/**
 * Checks `condition` until it returns a value other than `undefined`/`false`, or throws after
 * the deadline with the last error the check threw (a `StopWaiting` error ends it at once). For conditions only observable by asking
 * (a daemon's height), not a substitute for waiting on an event.
 */
export async function waitFor<T>(
  condition: () => Promise<T | undefined | false> | T | undefined | false,
  options: WaitOptions = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  let lastError: unknown;
  for (;;) {
    try {
      const value = await condition();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      if (err instanceof StopWaiting) throw err;
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const why = lastError instanceof Error ? `: last error ${lastError.message}` : '';
      throw new Error(
        `timed out after ${options.timeoutMs ?? 30_000} ms waiting for ${options.what ?? 'condition'}${why}`,
      );
    }
    await delay(options.intervalMs ?? 50);
  }
}
