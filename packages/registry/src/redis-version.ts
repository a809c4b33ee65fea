import type { RedisClient } from './redis.js';

/**
 * The oldest Redis every hashwire service runs on. The scripts use nothing newer than 6.0
 * (`SET … KEEPTTL`); in particular no `SET … NX GET` (7.0).
 */
export const MIN_REDIS_VERSION = '6.0.0';

/** The Redis server is older than a service needs; names both versions. */
export class RedisVersionError extends Error {
  override readonly name = 'RedisVersionError';
  constructor(
    readonly service: string,
    readonly found: string,
    readonly needed: string,
  ) {
    super(
      `${service}: Redis ${found} is too old, it needs Redis ${needed} or newer (redis_version in INFO server is ${found})`,
    );
  }
}

/** `redis_version` of an `INFO server` reply, or null when it has none. */
export function parseRedisVersion(info: string): string | null {
  const match = /^redis_version:([0-9]+(?:\.[0-9]+){0,2})\s*$/m.exec(info);
  return match ? match[1]! : null;
}

/** Negative, zero or positive as dotted version `a` is below, equal to or above `b`. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** Throws {@link RedisVersionError} unless the `INFO server` text shows at least `needed`. */
export function checkRedisVersion(info: string, service: string, needed = MIN_REDIS_VERSION): string {
  const found = parseRedisVersion(info);
  if (found === null) throw new RedisVersionError(service, 'of unknown version', needed);
  if (compareVersions(found, needed) < 0) throw new RedisVersionError(service, found, needed);
  return found;
}

/**
 * Asks the server its version (`INFO server`) and throws {@link RedisVersionError} when it is
 * older than `needed`; resolves with the version found. Services call it once at start, so an
 * old Redis is a clear error at once instead of a script failing on the first share.
 */
export async function requireRedisVersion(
  redis: RedisClient,
  service: string,
  needed = MIN_REDIS_VERSION,
): Promise<string> {
  return checkRedisVersion(await redis.info('server'), service, needed);
}
