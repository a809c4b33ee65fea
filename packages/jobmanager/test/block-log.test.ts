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

  it('records each state of a block once and never moves it back when a second jobmanager submits it again', async () => {
    const keys = createKeyBuilder({ prefix: `t${randomBytes(4).toString('hex')}:` });
    const store = new JobStore(redis, keys, 'ltc', 60_000);
    const base = {
      hash: 'cd'.repeat(32),
      chain: 'ltc',
      height: 601,
      jobId: '20',
      shareId: 's-2',
      submittedAt: Date.now(),
      updatedAt: Date.now(),
    };
    const write = (jmId: string, state: BlockRecord['state']) => store.recordBlock({ ...base, jmId, state });
    expect(await write('jm-1', 'submitted')).toBe(true);
    expect(await write('jm-1', 'accepted')).toBe(true);
    // The reporter closes the round on it: the record gets its round.
    const blocksKey = keys.blocks('ltc');
    const closed = { ...JSON.parse((await redis.hget(blocksKey, base.hash))!), round: { totalDiff: 5 } };
    await redis.hset(blocksKey, base.hash, JSON.stringify(closed));
    // A stratum server's submit timed out on jm-1 and went to jm-2, which submits it again.
    expect(await write('jm-2', 'submitted')).toBe(false);
    expect(await write('jm-2', 'accepted')).toBe(false);
    const record = JSON.parse((await redis.hget(blocksKey, base.hash))!);
    expect(record).toMatchObject({ state: 'accepted', jmId: 'jm-1', round: { totalDiff: 5 } });
    const types = async () =>
      (await redis.xrange(keys.events('ltc'), '-', '+')).map(([, f]) => f[f.indexOf('type') + 1]);
    expect(await types()).toEqual(['block.submitted', 'block.accepted']);

    // A verdict of rejected or stale gives way to accepted (a retry or another daemon took it).
    const other = { ...base, hash: 'ce'.repeat(32) };
    await store.recordBlock({ ...other, jmId: 'jm-1', state: 'submitted' });
    await store.recordBlock({ ...other, jmId: 'jm-1', state: 'stale', reason: 'inconclusive' });
    expect(await store.recordBlock({ ...other, jmId: 'jm-2', state: 'accepted' })).toBe(true);
    expect(await store.recordBlock({ ...other, jmId: 'jm-2', state: 'rejected' })).toBe(false);
    expect(JSON.parse((await redis.hget(blocksKey, other.hash))!)).toMatchObject({
      state: 'accepted',
      jmId: 'jm-2',
    });
    expect((await types()).slice(2)).toEqual(['block.submitted', 'block.stale', 'block.accepted']);
  });
});
