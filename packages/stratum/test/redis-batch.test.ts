import { createKeyBuilder } from '@hashwire/protocol';
import { type RedisClient, connectRedis } from '@hashwire/registry';
import { type RedisServer, startRedis, startRedisCluster } from '@hashwire/testkit';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { RedisBatch, unwrapReplies } from '../src/redis-batch.js';

let server: RedisServer;
let redis: RedisClient;

beforeAll(async () => {
  server = await startRedis();
  redis = connectRedis(server.url, 'redis-batch-test');
});
afterAll(async () => {
  redis.disconnect();
  await server.stop();
});

/** Counts the pipelines (each one write to Redis) the batch sends while `run` runs. */
async function pipelinesDuring(run: () => Promise<void>): Promise<number> {
  const spy = vi.spyOn(redis, 'pipeline');
  try {
    await run();
    return spy.mock.calls.length;
  } finally {
    spy.mockRestore();
  }
}

describe('RedisBatch', () => {
  it('is one batch per client and chain, shared by every user of that client', () => {
    expect(RedisBatch.of(redis, 'ltc')).toBe(RedisBatch.of(redis, 'ltc'));
    expect(RedisBatch.of(redis, 'ltc')).not.toBe(RedisBatch.of(redis, 'btc'));
  });

  it('sends the commands of one turn as one pipeline, each caller getting its own replies', async () => {
    const batch = RedisBatch.of(redis, 'ltc');
    let results: unknown[][] = [];
    const pipelines = await pipelinesDuring(async () => {
      results = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          batch.send((p) => p.set(`rb:one:${i}`, String(i)).get(`rb:one:${i}`)).then(unwrapReplies),
        ),
      );
    });
    expect(pipelines).toBe(1);
    expect(results).toEqual(Array.from({ length: 50 }, (_, i) => ['OK', String(i)]));
  });

  it('while a pipeline waits for its replies, later commands gather and leave together after it', async () => {
    const batch = RedisBatch.of(redis, 'ltc');
    const pipelines = await pipelinesDuring(async () => {
      const first = batch.send((p) => p.incr('rb:wait'));
      // Commands of three later turns, all queued before the first pipeline's replies arrive:
      // the first pipeline is written at setImmediate, its replies need a round trip.
      const later: Promise<unknown>[] = [];
      await new Promise<void>((resolve) => setImmediate(resolve));
      for (let turn = 0; turn < 3; turn++) {
        later.push(batch.send((p) => p.incr('rb:wait')));
        await new Promise<void>((resolve) => process.nextTick(resolve));
      }
      const replies = await Promise.all([first, ...later]);
      expect(replies.map((r) => unwrapReplies(r as never)[0])).toEqual([1, 2, 3, 4]);
    });
    expect(pipelines).toBe(2);
  });

  it('hands a command error to its own caller only', async () => {
    const batch = RedisBatch.of(redis, 'ltc');
    await redis.set('rb:text', 'not a number');
    const [bad, good] = await Promise.all([
      batch.send((p) => p.incr('rb:text')),
      batch.send((p) => p.incr('rb:counter')),
    ]);
    expect(() => unwrapReplies(bad)).toThrow(/not an integer/);
    expect(unwrapReplies(good)).toEqual([1]);
  });

  it('answers every send with an error once its client is closed, one after another (none hangs)', async () => {
    const lost = connectRedis(server.url, 'redis-batch-lost');
    await lost.ping();
    lost.disconnect();
    const batch = RedisBatch.of(lost, 'ltc');
    for (let i = 0; i < 3; i++) {
      const replies = await batch.send((p) => p.ping());
      expect(() => unwrapReplies(replies)).toThrow(/connection is closed/i);
    }
    expect(await RedisBatch.of(redis, 'ltc').send((p) => p.ping())).toEqual([[null, 'PONG']]);
  });

  it("on a Redis Cluster too, sends the commands of one turn on one chain as one pipeline to that chain's node", async () => {
    const cluster = await startRedisCluster({ masters: 3 });
    const client = connectRedis({ cluster: cluster.nodes }, 'redis-batch-cluster');
    try {
      const batch = RedisBatch.of(client, 'ltc');
      const keys = createKeyBuilder({ prefix: 'rb:' });
      await client.ping();
      const spy = vi.spyOn(client, 'pipeline');
      let results: unknown[][] = [];
      try {
        results = await Promise.all(
          Array.from({ length: 50 }, (_, i) => {
            const key = keys.session('ltc', `${i}`.padStart(16, '0'));
            return batch.send((p) => p.hset(key, { n: String(i) }).hget(key, 'n')).then(unwrapReplies);
          }),
        );
        expect(spy.mock.calls.length).toBe(1);
      } finally {
        spy.mockRestore();
      }
      expect(results).toEqual(Array.from({ length: 50 }, (_, i) => [1, String(i)]));
      // All on the one master serving {ltc}.
      const owner = await cluster.masterFor(keys.session('ltc', '0'.repeat(16)));
      const direct = connectRedis(owner.url, 'redis-batch-owner');
      try {
        expect(Number(await direct.dbsize())).toBe(50);
      } finally {
        direct.disconnect();
      }
    } finally {
      client.disconnect();
      await cluster.stop();
    }
  }, 60_000);
});
