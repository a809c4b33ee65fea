import { startRedisCluster } from '@hashwire/testkit';
import { Cluster } from 'ioredis';
import { describe, expect, it } from 'vitest';

describe('startRedisCluster with replicas', () => {
  it('starts 3 masters with a synced replica each, and fails a SIGKILLed master over to its replica', async () => {
    const cluster = await startRedisCluster({ masters: 3, replicas: 1 });
    const redis = new Cluster(cluster.nodes);
    try {
      expect(cluster.servers).toHaveLength(6);
      const masters = await cluster.masters();
      expect(masters).toHaveLength(3);

      const key = 'hw:{ltc}:probe';
      const owner = await cluster.masterFor(key);
      expect(masters).toContain(owner);
      // A key-less WAIT after a keyed command in one pipeline goes to that key's master, which
      // answers how many replicas acknowledged the write: 1.
      const replies = await redis.pipeline().set(key, 'kept').call('WAIT', '1', '5000').exec();
      expect(replies?.map(([err]) => err)).toEqual([null, null]);
      expect(replies?.[1]?.[1]).toBe(1);
      // Every master has one replica, so that 1 alone does not show where WAIT went: a key-less
      // CONFIG GET in the same position names the node.
      const where = await redis.pipeline().get(key).call('CONFIG', 'GET', 'port').exec();
      expect(where?.[1]?.[1]).toEqual(['port', String(owner.port)]);

      const { promoted, failoverMs } = await cluster.killMaster(owner);
      expect(promoted).not.toBe(owner);
      expect(await cluster.masterFor(key)).toBe(promoted);
      expect(failoverMs).toBeGreaterThan(0);
      // The write the replica acknowledged survived the master's death.
      expect(await redis.get(key)).toBe('kept');
      expect(await cluster.masters()).toHaveLength(3);
    } finally {
      redis.disconnect();
      await cluster.stop();
    }
  }, 120_000);
});
