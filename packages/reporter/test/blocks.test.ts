import { createLogger } from '@hashwire/core';
import type { KeyBuilder } from '@hashwire/protocol';
import { type RedisClient, connectRedis } from '@hashwire/registry';
import { type LitecoinRegtest, type RedisServer, startLitecoinRegtest, startRedis } from '@hashwire/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type BlockRecord,
  type Reporter,
  type ReporterOptions,
  createReporter,
  readRound,
  readRoundTotal,
  reporterKeys,
} from '../src/index.js';
import {
  CHAIN,
  batch,
  client,
  nextStreamEvent,
  send as sendBatch,
  share,
  streamTail,
  testKeys,
} from './helpers.js';

let ltc: LitecoinRegtest;
let server: RedisServer;
let redis: RedisClient;
const cleanups: (() => Promise<unknown> | unknown)[] = [];

beforeAll(async () => {
  [ltc, server] = await Promise.all([startLitecoinRegtest({ nodes: 2 }), startRedis()]);
  redis = connectRedis(server.url, 'test');
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
afterAll(async () => {
  redis?.disconnect();
  await Promise.all([ltc?.stop(), server?.stop()]);
});

const quiet = createLogger({ name: 'reporter-test', level: 'silent' });

async function startReporter(keys: KeyBuilder, extra: Partial<ReporterOptions> = {}): Promise<Reporter> {
  const reporter = await createReporter({
    id: `r-${Math.random().toString(16).slice(2, 8)}`,
    chain: CHAIN,
    redis,
    keys,
    logger: quiet,
    daemons: ltc.nodes.map((n) => ({ url: n.rpcUrl, cookieFile: n.cookieFile })),
    confirmations: 3,
    ...extra,
  });
  cleanups.push(() => reporter.close());
  await reporter.start();
  return reporter;
}

async function send(reporter: Reporter, shares: Parameters<typeof batch>[0]) {
  const c = client(reporter.endpoint!);
  try {
    return await sendBatch(c, batch(shares));
  } finally {
    await c.close();
  }
}

/** What the jobmanager writes when it submits a block and hears the daemons' verdict. */
async function recordBlock(keys: KeyBuilder, hash: string, height: number, state: BlockRecord['state']) {
  const k = reporterKeys(keys, CHAIN);
  const record = {
    hash,
    chain: CHAIN,
    height,
    jobId: '1f',
    jmId: 'jm-1',
    shareId: 'share-of-block',
    state,
    submittedAt: Date.now(),
    updatedAt: Date.now(),
  };
  await redis.multi().hset(k.blocks, hash, JSON.stringify(record)).zadd(k.blocksIndex, height, hash).exec();
}

async function blockRecord(keys: KeyBuilder, hash: string): Promise<BlockRecord> {
  return JSON.parse((await redis.hget(reporterKeys(keys, CHAIN).blocks, hash))!) as BlockRecord;
}

/** Mines one block on node 0 as if a miner of ours had found it; every node follows. */
async function mineOurs(): Promise<{ hash: string; height: number }> {
  const [hash] = await ltc.mine(0, 1);
  await ltc.sync();
  const { height } = await ltc.rpc[0]!.call<{ height: number }>('getblockheader', [hash]);
  return { hash: hash!, height };
}

describe('rounds', () => {
  it('close atomically when the block of a credited share is accepted, not before; a rejected one leaves the round open', async () => {
    const keys = testKeys();
    const k = reporterKeys(keys, CHAIN);
    const reporter = await startReporter(keys, { blockPollMs: 3_600_000 }); // polled by hand here
    await send(reporter, [share({ account: 'alice', diff: 10 }), share({ account: 'bob', diff: 5 })]);

    // A rejected block: its candidate is settled, the round goes on.
    const rejected = 'ab'.repeat(32);
    await recordBlock(keys, rejected, 1_000_000, 'rejected');
    await send(reporter, [share({ account: 'carol', diff: 2, blockHash: rejected })]);
    await reporter.pollBlocks();
    expect(await redis.hexists(k.candidates, rejected)).toBe(0);
    expect(await readRound(redis, keys, CHAIN)).toEqual({ alice: 10, bob: 5, carol: 2 });

    const { hash, height } = await mineOurs();
    await recordBlock(keys, hash, height, 'submitted');
    await send(reporter, [share({ account: 'alice', worker: 'big', diff: 3, blockHash: hash })]);
    await reporter.pollBlocks();
    expect(await readRound(redis, keys, CHAIN)).toEqual({ alice: 13, bob: 5, carol: 2 }); // still open

    const from = await streamTail(redis, k.events);
    await recordBlock(keys, hash, height, 'accepted');
    await reporter.pollBlocks();
    expect(await readRound(redis, keys, CHAIN, hash)).toEqual({ alice: 13, bob: 5, carol: 2 });
    expect(await redis.exists(k.round)).toBe(0);
    expect(await readRoundTotal(redis, keys, CHAIN)).toEqual({ accounts: 0, totalDiff: 0 });
    expect((await blockRecord(keys, hash)).round).toMatchObject({
      key: k.closedRound(hash),
      accounts: 3,
      totalDiff: 20,
      account: 'alice',
      worker: 'big',
    });
    const event = await nextStreamEvent(redis, k.events, from, 'round.closed', (d) => d.hash === hash);
    expect(event.data).toMatchObject({ chain: CHAIN, height, accounts: 3, totalDiff: 20 });

    // The next round starts from zero; the same candidate again changes nothing.
    await send(reporter, [
      share({ account: 'bob', diff: 7 }),
      share({ account: 'bob', diff: 1, blockHash: hash }),
    ]);
    await reporter.pollBlocks();
    expect(await readRound(redis, keys, CHAIN)).toEqual({ bob: 8 });
    // The round's kept total started again with it.
    expect(await redis.get(k.roundTotal)).toBe('8');
    expect(await readRoundTotal(redis, keys, CHAIN)).toEqual({ accounts: 1, totalDiff: 8 });
    expect(await readRound(redis, keys, CHAIN, hash)).toEqual({ alice: 13, bob: 5, carol: 2 });
    expect(reporter.stats().blocks.roundsClosed).toBe(1);
  });
});

describe('a block record its jobmanager left submitted (killed between the verdict and its write)', () => {
  it('is settled from the daemons: accepted when they have it in their main chain (its round closes), left alone when they do not', async () => {
    const keys = testKeys();
    const k = reporterKeys(keys, CHAIN);
    const reporter = await startReporter(keys, { blockPollMs: 3_600_000, settleSubmittedMs: 1 });
    await send(reporter, [share({ account: 'alice', diff: 4 })]);
    const ours = await mineOurs();
    await recordBlock(keys, ours.hash, ours.height, 'submitted');
    const unknown = 'cd'.repeat(32);
    await recordBlock(keys, unknown, ours.height, 'submitted');
    // A batch with a candidate starts a poll of its own: the round may close in that one.
    const from = await streamTail(redis, k.events);
    await send(reporter, [
      share({ account: 'alice', diff: 1, blockHash: ours.hash }),
      share({ account: 'bob', diff: 2, blockHash: unknown }),
    ]);
    await reporter.pollBlocks();
    expect((await blockRecord(keys, ours.hash)).state).toBe('accepted');
    await nextStreamEvent(redis, k.events, from, 'round.closed', (d) => d.hash === ours.hash);
    expect(await readRound(redis, keys, CHAIN, ours.hash)).toEqual({ alice: 5, bob: 2 });
    // Not in the daemons' main chain: what became of it cannot be told, it stays as it was.
    expect((await blockRecord(keys, unknown)).state).toBe('submitted');
    expect(await redis.hexists(k.candidates, unknown)).toBe(1);
    expect(reporter.stats().blocks.settledFromDaemons).toBe(1);
  });
});

describe('block lifecycle on regtest', () => {
  it('confirms a block of ours after N confirmations and orphans one reorganised away (invalidateblock), with events', async () => {
    const keys = testKeys();
    const k = reporterKeys(keys, CHAIN);
    const reporter = await startReporter(keys, { blockPollMs: 100 });
    const start = await streamTail(redis, k.events);

    // A block that stays in the chain: confirmed at 3 confirmations.
    await send(reporter, [share({ account: 'alice', diff: 4 })]);
    const kept = await mineOurs();
    await recordBlock(keys, kept.hash, kept.height, 'accepted');
    await send(reporter, [share({ account: 'alice', diff: 1, blockHash: kept.hash })]);
    await nextStreamEvent(redis, k.events, start, 'round.closed', (d) => d.hash === kept.hash);
    await ltc.mine(0, 2);
    await ltc.sync();
    const confirmed = await nextStreamEvent(
      redis,
      k.events,
      start,
      'block.confirmed',
      (d) => d.hash === kept.hash,
    );
    expect(confirmed.data).toMatchObject({ state: 'confirmed', confirmations: 3, height: kept.height });
    expect((await blockRecord(keys, kept.hash)).state).toBe('confirmed');

    // A block reorganised away: every daemon invalidates it and follows a longer chain.
    await send(reporter, [share({ account: 'bob', diff: 6 })]);
    const lost = await mineOurs();
    await recordBlock(keys, lost.hash, lost.height, 'accepted');
    await send(reporter, [share({ account: 'bob', diff: 2, blockHash: lost.hash })]);
    await nextStreamEvent(redis, k.events, start, 'round.closed', (d) => d.hash === lost.hash);
    expect(await readRound(redis, keys, CHAIN, lost.hash)).toEqual({ bob: 8 });
    await send(reporter, [share({ account: 'carol', diff: 1 })]); // the next round has begun

    await Promise.all(ltc.rpc.map((rpc) => rpc.call('invalidateblock', [lost.hash])));
    const elsewhere = await ltc.rpc[0]!.call<string>('getnewaddress', ['', 'bech32']);
    await ltc.mine(0, 2, elsewhere);
    await ltc.sync();
    const orphaned = await nextStreamEvent(
      redis,
      k.events,
      start,
      'block.orphaned',
      (d) => d.hash === lost.hash,
    );
    expect(orphaned.data).toMatchObject({ state: 'orphaned', confirmations: -1, height: lost.height });
    const record = await blockRecord(keys, lost.hash);
    expect(record.state).toBe('orphaned');
    // Its round's work is not lost: it went back into the current round.
    expect(record.round).toMatchObject({ returned: true, totalDiff: 8 });
    expect(await readRound(redis, keys, CHAIN)).toEqual({ bob: 8, carol: 1 });
    expect(await readRoundTotal(redis, keys, CHAIN)).toEqual({ accounts: 2, totalDiff: 9 });
    // The kept total counts the returned round too once the next credit sums the round again.
    await send(reporter, [share({ account: 'carol', diff: 2 })]);
    expect(await redis.get(k.roundTotal)).toBe('11');
    expect(await readRoundTotal(redis, keys, CHAIN)).toEqual({ accounts: 2, totalDiff: 11 });
    expect(await redis.exists(k.closedRound(lost.hash))).toBe(0);

    // The confirmed block stayed confirmed; each change was emitted exactly once.
    expect((await blockRecord(keys, kept.hash)).state).toBe('confirmed');
    const events = (await redis.xrange(k.events, '-', '+')) as [string, string[]][];
    const types = events.map(([, f]) => `${f[1]} ${JSON.parse(f[5]!).hash}`);
    expect(types.filter((t) => t === `block.confirmed ${kept.hash}`)).toHaveLength(1);
    expect(types.filter((t) => t === `block.orphaned ${lost.hash}`)).toHaveLength(1);
    expect(reporter.stats().blocks).toMatchObject({ confirmed: 1, orphaned: 1, roundsClosed: 2 });
    const metrics = await reporter.metrics.text();
    expect(metrics).toMatch(/hashwire_blocks_total\{state="confirmed"[^}]*\} 1\n/);
    expect(metrics).toMatch(/hashwire_blocks_total\{state="orphaned"[^}]*\} 1\n/);
  });
});
