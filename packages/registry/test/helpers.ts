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

export function clients(url: string, n: number): RedisClient[] {
  return Array.from({ length: n }, () => connectRedis(url, 'test'));
}
