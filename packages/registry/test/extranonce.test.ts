import { type RedisClient, connectRedis, leaseExtranonceSlot } from '@hashwire/registry';
import { type RedisServer, startRedis } from '@hashwire/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nextEvent, testKeys } from './helpers.js';

let server: RedisServer;
let redis: RedisClient;

beforeAll(async () => {
  server = await startRedis();
  redis = connectRedis(server.url);
});
afterAll(async () => {
  redis.disconnect();
  await server.stop();
});

describe('extranonce slot leases', () => {
  it('gives 64 stratum instances starting at once 64 distinct slots out of 64', async () => {
    const keys = testKeys();
    const leases = await Promise.all(
      Array.from({ length: 64 }, (_, i) => leaseExtranonceSlot({ redis, keys, owner: `s${i}`, slots: 64 })),
    );
    expect(new Set(leases.map((l) => l.slot)).size).toBe(64);
    await expect(leaseExtranonceSlot({ redis, keys, owner: 'late', slots: 64 })).rejects.toThrow(
      'no free extranonce slot among 64',
    );
    // A released slot is free again.
    await leases[7]!.release();
    const again = await leaseExtranonceSlot({ redis, keys, owner: 'late', slots: 64 });
    expect(again.slot).toBe(leases[7]!.slot);
    await Promise.all([...leases, again].map((l) => l.release()));
  });

  it('expires with its owner and tells a live owner that lost it', async () => {
    const keys = testKeys();
    const lease = await leaseExtranonceSlot({ redis, keys, owner: 'a', slots: 4, ttlMs: 300 });
    expect(await redis.pttl(keys.extranonceSlot(lease.slot))).toBeGreaterThan(0);
    // Another instance got the slot (as after this owner stalled past its TTL).
    await redis.set(keys.extranonceSlot(lease.slot), 'b');
    await nextEvent(lease, 'lost', () => true, 3000);
    expect(lease.isHeld).toBe(false);
    await lease.release();
    expect(await redis.get(keys.extranonceSlot(lease.slot))).toBe('b');
  });

  it('refuses a bad slot count, naming it', async () => {
    await expect(leaseExtranonceSlot({ redis, keys: testKeys(), owner: 'x', slots: 0 })).rejects.toThrow(
      /slots must be an integer/,
    );
  });
});
