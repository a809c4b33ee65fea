import { randomBytes } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import { createKeyBuilder } from '@hashwire/protocol';
import { type RedisClient, connectRedis } from '@hashwire/registry';

/** A fresh key prefix per test so tests share one redis-server and run in parallel. */
export function testKeys() {
  return createKeyBuilder({ prefix: `t${randomBytes(4).toString('hex')}:` });
}

/** Resolves with the first event matching `match`; rejects after `timeoutMs` naming what it waited for. */
export function nextEvent<T>(
  emitter: EventEmitter,
  name: string,
  match: (value: T) => boolean,
  timeoutMs: number,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(name, listener);
      reject(new Error(`no matching "${name}" event within ${timeoutMs} ms`));
    }, timeoutMs);
    const listener = (value: T) => {
      if (!match(value)) return;
      clearTimeout(timer);
      emitter.off(name, listener);
      resolve(value);
    };
    emitter.on(name, listener);
  });
}

/** Polls `check` until it returns true; for conditions that have no event (a key in Redis). */
export async function until(
  check: () => Promise<boolean> | boolean,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export function clients(url: string, n: number): RedisClient[] {
  return Array.from({ length: n }, () => connectRedis(url, 'test'));
}
