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
