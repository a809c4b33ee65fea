import { randomBytes } from 'node:crypto';
import { JobStore } from '@hashwire/jobmanager';
import { createKeyBuilder } from '@hashwire/protocol';
import { type RedisClient, connectRedis } from '@hashwire/registry';
import { type RedisServer, startRedis } from '@hashwire/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// An upgrade from the release whose job keys had no `{chain}` hash tag: jobs the old leader
// published stay usable for a block, and job ids are not handed out a second time.

const CHAIN = 'ltc';
let redisServer: RedisServer;
let redis: RedisClient;

beforeAll(async () => {
  redisServer = await startRedis();
  redis = connectRedis(redisServer.url);
});
afterAll(async () => {
  redis?.disconnect();
  await redisServer?.stop();
});

function freshKeys() {
  return createKeyBuilder({ prefix: `up${randomBytes(3).toString('hex')}:` });
}

/** What the earlier release's leader wrote for one job: the hash and its template. */
async function writeOldJob(keys: ReturnType<typeof createKeyBuilder>, jobId: string): Promise<void> {
  await redis.set(keys.legacy.template(CHAIN, 't1'), JSON.stringify({ height: 812, bits: '1e0ffff0' }));
  await redis.hset(keys.legacy.job(CHAIN, jobId), {
    job: JSON.stringify({ jobId, chain: CHAIN, height: 812 }),
    templateId: 't1',
    payouts: JSON.stringify([{ address: 'rltc1qexample', amount: 1 }]),
    poolTag: '/hw/',
    extranonce1Size: 4,
    extranonce2Size: 4,
  });
}

describe('job store across the upgrade to per-chain key tags', () => {
  it('loads a job an earlier release published, template included', async () => {
    const keys = freshKeys();
    await writeOldJob(keys, '2a');
    const store = new JobStore(redis, keys, CHAIN, 60_000);
    const stored = await store.load('2a');
    expect(stored).not.toBeNull();
    expect(stored!.job.jobId).toBe('2a');
    expect(stored!.template).toEqual({ height: 812, bits: '1e0ffff0' });
    expect(stored!.poolTag).toBe('/hw/');
    expect(stored!.extranonce2Size).toBe(4);
    expect(await store.load('2b')).toBeNull();
  });

  it('stops looking at the old names once its own jobs have outlived them (one job TTL)', async () => {
    const keys = freshKeys();
    await writeOldJob(keys, '2a');
    const store = new JobStore(redis, keys, CHAIN, 1);
    const start = Date.now();
    while (Date.now() - start < 3) await redis.ping(); // past the 1 ms TTL
    expect(await store.load('2a')).toBeNull();
  });

  it('continues the old job id sequence instead of starting again at 1', async () => {
    const keys = freshKeys();
    await redis.set(keys.legacy.jobSequence(CHAIN), '4095');
    const first = new JobStore(redis, keys, CHAIN, 60_000);
    const second = new JobStore(redis, keys, CHAIN, 60_000);
    const ids = [await first.nextJobId(), await second.nextJobId(), await first.nextJobId()];
    expect(ids).toEqual(['1000', '1001', '1002']);
  });

  it('starts at 1 on a new pool', async () => {
    const store = new JobStore(redis, freshKeys(), CHAIN, 60_000);
    expect(await store.nextJobId()).toBe('1');
  });
});
