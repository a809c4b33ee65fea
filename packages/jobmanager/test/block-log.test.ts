import { randomBytes } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import { BlockLog, type BlockRecord, JobStore } from '@hashwire/jobmanager';
import { createKeyBuilder } from '@hashwire/protocol';
import { type RedisClient, connectRedis } from '@hashwire/registry';
import { type RedisServer, startRedis, waitFor } from '@hashwire/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

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

describe('BlockLog', () => {
  it('keeps block records while Redis refuses writes and writes them, in order and with their events, once it takes them again', async () => {
    const keys = createKeyBuilder({ prefix: `t${randomBytes(4).toString('hex')}:` });
    const store = new JobStore(redis, keys, 'ltc', 60_000);
    const failures: string[] = [];
    const failed = new EventEmitter();
    const log = new BlockLog(store, {
      retryMs: 20,
      maxRetryMs: 100,
      onError: (error, record) => {
        failures.push(`${record.state}: ${error.message}`);
        failed.emit('error-seen');
      },
    });
    const base = {
      hash: 'ab'.repeat(32),
      chain: 'ltc',
      height: 600,
      jobId: '1f',
      jmId: 'jm-1',
      shareId: 's-1',
      submittedAt: Date.now(),
    };
    // A real Redis refusing every write (as a primary does without enough replicas).
    await redis.config('SET', 'min-replicas-to-write', '1');
    try {
      const refused = once(failed, 'error-seen');
      log.write({ ...base, state: 'submitted', updatedAt: Date.now() } satisfies BlockRecord);
      log.write({ ...base, state: 'accepted', updatedAt: Date.now() } satisfies BlockRecord);
      await refused;
      expect(failures[0]).toMatch(/^submitted: (NOREPLICAS|EXECABORT)/);
      expect(log.stats()).toEqual({ pending: 2, dropped: 0 });
      expect(await redis.hget(keys.blocks('ltc'), base.hash)).toBeNull();
    } finally {
      await redis.config('SET', 'min-replicas-to-write', '0');
    }
    expect(await log.flush(5000)).toBe(true);
    expect(log.stats()).toEqual({ pending: 0, dropped: 0 });
    const record = JSON.parse((await redis.hget(keys.blocks('ltc'), base.hash))!);
    expect(record).toMatchObject({ state: 'accepted', shareId: 's-1' });
    const events = await waitFor(async () => {
      const all = await redis.xrange(keys.events('ltc'), '-', '+');
      return all.length >= 2 ? all : undefined;
    });
    expect(events.map(([, f]) => f[f.indexOf('type') + 1])).toEqual(['block.submitted', 'block.accepted']);
  });
});
