import { once } from 'node:events';
import type { EventEmitter } from 'node:events';

/**
 * A port range of `width` ports at a random place, so parallel test files (and other services on the
 * machine) rarely share one; the server binds the first free port in it anyway.
 */
export function randomRange(width = 50): [number, number] {
  const first = 20000 + Math.floor(Math.random() * (32000 - 20000 - width));
  return [first, first + width - 1];
}

/** Rejects with a message naming `what` unless `promise` settles within `ms`. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** The arguments of the next `event` from `emitter`, within `ms`. */
export function nextEvent<T extends unknown[] = unknown[]>(
  emitter: EventEmitter | NodeJS.EventEmitter,
  event: string,
  ms: number,
): Promise<T> {
  const ac = new AbortController();
  return within(once(emitter as EventEmitter, event, { signal: ac.signal }) as Promise<T>, ms, event).finally(
    () => ac.abort(),
  );
}

/** Closes everything registered, last first; use in `afterEach`. */
export class Closer {
  private readonly items: (() => unknown)[] = [];
  add<T extends { close(): unknown }>(item: T): T {
    this.items.push(() => item.close());
    return item;
  }
  async closeAll(): Promise<void> {
    while (this.items.length > 0) await this.items.pop()?.();
  }
}
