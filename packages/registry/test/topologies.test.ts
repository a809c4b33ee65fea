import {
  Membership,
  type RedisClient,
  acquireLease,
  connectRedis,
  registerService,
  renewLease,
  watchServices,
} from '@hashwire/registry';
import { startRedisCluster, startRedisSentinel } from '@hashwire/testkit';
import { describe, expect, it } from 'vitest';
import { nextEvent, testKeys } from './helpers.js';

/** Everything the registry does with multi-key scripts, against one connection config. */
async function exercise(redis: RedisClient) {
  const keys = testKeys();
  const watcher = watchServices({ redis, keys, kind: 'stratum', reconcileMs: 3_600_000 });
  await watcher.ready;
  const up = nextEvent(watcher, 'event', (e: { type: string }) => e.type === 'up', 3000);
  const reg = await registerService({ redis, keys, kind: 'stratum', id: 's1', rpc: 'tcp://127.0.0.1:1' });
  await up;
  expect([...watcher.services.keys()]).toEqual(['s1']);

  const lease = await acquireLease(redis, keys, 'jm:ltc', 'A', 10_000);
  expect(lease.held).toBe(true);
  expect(await renewLease(redis, keys, 'jm:ltc', 'A', lease.epoch, 10_000)).toBe(true);

  const membership = new Membership(redis, keys);
  const view = await membership.join('pool', 'm1', { config: 'c1' });
  expect(view.active).toEqual([{ id: 'm1', config: 'c1' }]);

  await reg.close();
  await watcher.close();
}

describe('Redis topologies passed through to ioredis', () => {
  it('works on a Redis Cluster: every multi-key script keeps its keys in one hash slot', async () => {
    const cluster = await startRedisCluster({ masters: 3 });
    const redis = connectRedis({ cluster: cluster.nodes });
    try {
      await exercise(redis);
    } finally {
      redis.disconnect();
      await cluster.stop();
    }
  });

  it('works through Redis Sentinel', async () => {
    const sentinel = await startRedisSentinel();
    const redis = connectRedis({ sentinels: sentinel.sentinels, name: sentinel.name });
    try {
      await exercise(redis);
      // The connection really went to the master the sentinel named.
      expect(await redis.config('GET', 'port')).toEqual(['port', String(sentinel.master.port)]);
    } finally {
      redis.disconnect();
      await sentinel.stop();
    }
  });
});
