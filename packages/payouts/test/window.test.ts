import { randomUUID } from 'node:crypto';
import type { KeyBuilder } from '@hashwire/protocol';
import { type RedisClient, connectRedis } from '@hashwire/registry';
import type { Reporter } from '@hashwire/reporter';
import { createReporter } from '@hashwire/reporter';
import { type RedisServer, startRedis, startRedisCluster } from '@hashwire/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { payoutKeys } from '../src/keys.js';
import { runScript } from '../src/scripts.js';
import { readPplnsWindow } from '../src/window.js';
import { CHAIN, credit, quiet, share, testKeys } from './helpers.js';

let server: RedisServer;
let redis: RedisClient;

beforeAll(async () => {
  server = await startRedis();
  redis = connectRedis(server.url, 'test');
});
afterAll(async () => {
  redis?.disconnect();
  await server?.stop();
});

async function windowReporter(client: RedisClient, keys: KeyBuilder): Promise<Reporter> {
  const reporter = await createReporter({
    id: `r-${randomUUID().slice(0, 6)}`,
    chain: CHAIN,
    redis: client,
    keys,
    logger: quiet,
    blockPollMs: 3_600_000,
    replication: { replicas: 0 },
    shareWindow: true,
  });
  await reporter.start();
  return reporter;
}

const HASH = (n: number) => n.toString(16).padStart(64, '0');

describe('the PPLNS share window', () => {
  it('is written once per credit, even when a batch is delivered twice', async () => {
    const keys = testKeys();
    const k = payoutKeys(keys, CHAIN);
    const reporter = await windowReporter(redis, keys);
    try {
      const sub = { seq: 1, id: `${randomUUID()}:0` };
      const shares = [share('alice', 2), share('bob', 3), share('alice', 1)];
      await credit(reporter, shares, sub);
      await credit(reporter, shares, sub); // the same sub-batch again: answered from its acknowledgement
      const entries = (await redis.xrange(k.window, '-', '+')) as [string, string[]][];
      expect(entries).toHaveLength(1);
      expect(entries[0]![1]).toEqual(['p', '6', 'a', 'alice 3\nbob 3']);
      expect(await redis.get(keys.shareWindowTotal(CHAIN))).toBe('6');
    } finally {
      await reporter.close();
    }
  });

  it('is off unless asked: a reporter without shareWindow writes none of it', async () => {
    const keys = testKeys();
    const reporter = await createReporter({
      id: 'r-off',
      chain: CHAIN,
      redis,
      keys,
      logger: quiet,
      blockPollMs: 3_600_000,
      replication: { replicas: 0 },
    });
    await reporter.start();
    try {
      await credit(reporter, [share('alice', 2)]);
      expect(await redis.keys(`${keys.prefix}pplnswin*`)).toEqual([]);
    } finally {
      await reporter.close();
    }
  });

  it('is trimmed past keep, but keeps the window of a block not yet shared out', async () => {
    const keys = testKeys();
    const k = payoutKeys(keys, CHAIN);
    const reporter = await windowReporter(redis, keys);
    try {
      await redis.set(k.windowKeep, '10');
      for (let i = 1; i <= 40; i++)
        await credit(reporter, [share('alice', 1, i === 25 ? HASH(25) : undefined)]);
      for (let i = 41; i <= 120; i++) await credit(reporter, [share('bob', 1)]);
      const entries = (await redis.xrange(k.window, '-', '+')) as [string, string[]][];
      const positions = entries.map(([, f]) => Number(f[1]));
      // The block was found at 25: everything from 25 − keep on stays; all older is gone.
      expect(positions[0]).toBe(16);
      expect(positions.at(-1)).toBe(120);
      const window = await readPplnsWindow(
        redis,
        { window: k.window, found: k.windowFound },
        HASH(25),
        10n * 100_000_000n,
      );
      expect(window).toMatchObject({ coveredWeight: 1_000_000_000n, entries: 10 });
      expect(window?.weights).toEqual(new Map([['alice', 1_000_000_000n]]));

      // Once the block is shared out (no longer pending), each credit trims up to 64 more, down to keep.
      await redis.zrem(k.windowPending, HASH(25));
      const oldest = async () =>
        Number(((await redis.xrange(k.window, '-', '+', 'COUNT', 1)) as [string, string[]][])[0]![1][1]);
      await credit(reporter, [share('bob', 1)]);
      expect(await oldest()).toBe(16 + 64);
      await credit(reporter, [share('bob', 1)]);
      expect(await oldest()).toBe(113); // the first with p > 122 − 10
      expect(await redis.xlen(k.window)).toBe(10);
    } finally {
      await reporter.close();
    }
  });

  it('runs on a Redis Cluster: the credit with its window and every payouts script keep to the chain’s slot', async () => {
    const cluster = await startRedisCluster({ masters: 3 });
    const client = connectRedis({ cluster: cluster.nodes });
    const keys = testKeys();
    const k = payoutKeys(keys, CHAIN);
    const reporter = await windowReporter(client, keys);
    try {
      await client.set(k.windowKeep, '1000');
      await credit(reporter, [share('alice', 2), share('bob', 1, HASH(7))]);
      expect(await client.hexists(k.windowFound, HASH(7))).toBe(1);
      const shared = await runScript(
        client,
        'share-out',
        [
          k.shared,
          k.blockCredits(HASH(7)),
          k.balances,
          k.ledger,
          k.windowPending,
          k.events,
          k.fence,
          k.earningsIndex,
        ],
        [
          HASH(7),
          '{"state":"credited"}',
          Date.now(),
          5,
          1000,
          CHAIN,
          '@pool',
          '10',
          '1',
          2,
          'alice',
          '600',
          'bob',
          '300',
        ],
      );
      expect(shared).toBe(1);
      const batch = {
        id: 'b1',
        state: 'intent',
        payments: [['alice', '600']],
        totalSat: '600',
        createdAt: Date.now(),
        epoch: '5',
      };
      expect(
        await runScript(
          client,
          'pay-intent',
          [k.open, k.batches, k.batchIndex, k.balances, k.fence],
          [5, 'b1', JSON.stringify(batch), Date.now(), 1, 'alice', '600'],
        ),
      ).toEqual([1]);
      expect(
        await runScript(
          client,
          'pay-record',
          [k.open, k.batches, k.balances, k.ledger, k.fence, k.events, k.paymentsIndex],
          [5, 'b1', 'ab'.repeat(32), Date.now(), 1000],
        ),
      ).toBe(1);
      // A payer with a lower epoch is fenced off.
      expect(
        await runScript(
          client,
          'pay-fail',
          [k.open, k.batches, k.fence, k.events],
          [4, 'b1', 'late', Date.now(), 1000],
        ),
      ).toBe(-1);
      expect(await client.hgetall(k.balances)).toEqual({ alice: '0', bob: '300', '@pool': '11' });
      // The read API's indexes, in the same slot: alice's earning and her payment.
      expect(await client.zrangebylex(k.earningsIndex, '[alice|', '(alice}')).toHaveLength(1);
      expect(await client.zrangebylex(k.paymentsIndex, '[alice|', '(alice}')).toEqual([
        expect.stringMatching(new RegExp(`^alice\\|\\d{13}\\|b1\\|${'ab'.repeat(32)}\\|600$`)),
      ]);
    } finally {
      await reporter.close();
      client.disconnect();
      await cluster.stop();
    }
  }, 120_000);
});
