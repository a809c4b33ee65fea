import { Cluster, type ClusterNode, type ClusterOptions, Redis, type RedisOptions } from 'ioredis';

/**
 * How to reach Redis: a URL (`redis://host:port/db`), ioredis options (Sentinel included:
 * `{ sentinels: [{ host, port }], name: 'mymaster' }`), or a Cluster (`{ cluster: nodes }`).
 * Everything is passed through to ioredis unchanged.
 */
export type RedisConfig = string | RedisOptions | { cluster: ClusterNode[]; options?: ClusterOptions };

export type RedisClient = Redis | Cluster;

/**
 * Connects with settings that suit a long-running service: reconnect forever with a short
 * backoff, and fail commands fast while Redis is away instead of queueing them without
 * bound (callers keep serving with what they last knew and try again on the next tick).
 */
export function connectRedis(config: RedisConfig, connectionName = 'hashwire'): RedisClient {
  const common = {
    connectionName,
    maxRetriesPerRequest: 1,
    retryStrategy: (attempt: number) => Math.min(50 * 2 ** Math.min(attempt, 5), 1000),
    enableOfflineQueue: true,
  } satisfies RedisOptions;
  let client: RedisClient;
  if (typeof config === 'string') {
    client = new Redis(config, common);
  } else if ('cluster' in config) {
    client = new Cluster(config.cluster, {
      ...config.options,
      redisOptions: { ...common, ...config.options?.redisOptions },
      clusterRetryStrategy: common.retryStrategy,
    });
  } else {
    client = new Redis({ ...common, ...config });
  }
  // Without a listener ioredis would turn a lost connection into an uncaught exception.
  client.on('error', () => {});
  return client;
}

/** A second connection with the same settings, for SUBSCRIBE (a subscribed connection can do nothing else). */
export function duplicateRedis(client: RedisClient): RedisClient {
  const copy = client.duplicate();
  copy.on('error', () => {});
  return copy;
}

/**
 * The Redis of a service's JSON config: `redisUrl`, or `redis` with ioredis options (Sentinel:
 * `{ sentinels: [{ host, port }], name }`; Cluster: `{ cluster: [{ host, port }] }`). Throws a
 * TypeError naming the field when neither, both, or a malformed one is given.
 */
export function serviceRedisConfig(record: { redis?: unknown; redisUrl?: unknown }): RedisConfig {
  if (record.redis !== undefined) {
    if (record.redisUrl !== undefined) throw new TypeError('give redis or redisUrl, not both');
    const redis = record.redis;
    if (typeof redis !== 'object' || redis === null || Array.isArray(redis))
      throw new TypeError(
        'redis must be an object: ioredis options (e.g. { sentinels, name }) or { cluster }',
      );
    if ('cluster' in redis && !Array.isArray((redis as { cluster: unknown }).cluster))
      throw new TypeError('redis.cluster must be a list of { host, port }');
    if ('sentinels' in redis && !Array.isArray((redis as { sentinels: unknown }).sentinels))
      throw new TypeError('redis.sentinels must be a list of { host, port }');
    return redis as RedisConfig;
  }
  if (typeof record.redisUrl !== 'string' || record.redisUrl === '')
    throw new TypeError('redisUrl must be a non-empty string (or give redis: Sentinel or Cluster options)');
  return record.redisUrl;
}

/** Where a RedisConfig points, for messages (passwords left out). */
export function describeRedisConfig(config: RedisConfig): string {
  if (typeof config === 'string') return config.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
  if ('cluster' in config) {
    const node = (n: ClusterNode) => (typeof n === 'object' ? `${n.host}:${n.port}` : String(n));
    return `cluster ${config.cluster.map(node).join(', ')}`;
  }
  if (config.sentinels) {
    return `sentinel ${config.name} (${config.sentinels.map((s) => `${s.host}:${s.port}`).join(', ')})`;
  }
  return `${config.host ?? '127.0.0.1'}:${config.port ?? 6379}`;
}

/**
 * A service's Redis from its JSON config (see `serviceRedisConfig`), connected and answering:
 * one PING before anything else is opened, so an unreachable Redis is reported at start
 * (`redis: cannot reach <where>: <why>`) rather than as a hang. Throws a TypeError naming the
 * field for a bad config; the connection is closed again when the PING fails.
 */
export async function openServiceRedis(
  record: { redis?: unknown; redisUrl?: unknown },
  connectionName: string,
): Promise<RedisClient> {
  const config = serviceRedisConfig(record);
  const client = connectRedis(config, connectionName);
  try {
    await client.ping();
  } catch (error) {
    client.disconnect();
    throw new Error(`redis: cannot reach ${describeRedisConfig(config)}: ${(error as Error).message}`);
  }
  return client;
}
