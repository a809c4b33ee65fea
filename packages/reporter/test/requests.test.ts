import { createLogger } from '@hashwire/core';
import { type KeyBuilder, RpcErrorCode, type Share } from '@hashwire/protocol';
import { type RedisClient, connectRedis } from '@hashwire/registry';
import { type RedisServer, startRedis } from '@hashwire/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type Reporter,
  type ReporterOptions,
  createReporter,
  readAccountHashrate,
  readChainHashrate,
  readRound,
  readShareLog,
  reporterKeys,
} from '../src/index.js';
import {
  CHAIN,
  type TestBatch,
  batch,
  callsBetween,
  client,
  commandCalls,
  share,
  snapshot,
  spoolOf,
  testKeys,
  useReporterBed,
  wire,
} from './helpers.js';

// Issue 16: one request per reporter and interval carries every sub-batch of a stratum server's
// spool routed to it; one script run credits them; the spool's acknowledgements are bounded by
// its floor instead of a day of per-batch keys.

const bed = useReporterBed();
const { cleanups, startReporter, rpc } = bed;
let redis: RedisClient;
beforeAll(() => {
  redis = bed.redis;
});

/** `buckets` sub-batches of one stratum server, `perSub` shares each, every share its own worker. */
function subBatches(buckets: number, perSub: number, stratumId = 'stratum-1', now = Date.now()): TestBatch[] {
  return Array.from({ length: buckets }, (_, b) =>
    batch(
      Array.from({ length: perSub }, (_, i) =>
        share({ account: `acct${b}`, worker: `w${i}`, diff: 2, ts: now, jobId: '7a' }),
      ),
      stratumId,
    ),
  );
}

/**
 * Takes out of a span of commands what the reporter runs by time, not per request: PING (its
 * Redis health check, on a timer) and EXISTS + ROLE (how many replicas the chain's node has,
 * asked by the first request once `replication.checkMs`, 5 s, passed since it last asked: the
 * warm-up request before the span can take longer than that on a loaded machine).
 */
function withoutTimers(delta: Map<string, number>): void {
  delta.delete('ping');
  expect(delta.get('exists') ?? 0).toBe(delta.get('role') ?? 0);
  expect(delta.get('role') ?? 0).toBeLessThanOrEqual(1);
  delta.delete('role');
  delta.delete('exists');
}

const credited = (subs: TestBatch[], each: number) =>
  subs.map((b) => ({ seq: b.seq, status: 'credited', credited: each }));

describe('one request for every sub-batch routed to a reporter', () => {
  it('credits 100 sub-batches of 10,000 workers with one script run and a constant handful of commands', async () => {
    const keys = testKeys();
    const c = rpc(await startReporter(keys));
    // Scripts loaded, and the same 10,000 workers brought online: their first shares cost one
    // XADD each more (worker.online) and a ZRANGEBYSCORE finding them, once.
    const warming = await commandCalls(redis);
    await c.request('reporter.shares', wire(subBatches(100, 100, 'stratum-0')));
    const warm = callsBetween(warming, await commandCalls(redis));
    expect(warm.get('xadd')).toBe(1 + 10_000); // the share log's entry, and 10,000 worker.online
    const subs = subBatches(100, 100);
    const before = await commandCalls(redis);
    const reply = await c.request('reporter.shares', wire(subs));
    const delta = callsBetween(before, await commandCalls(redis));
    withoutTimers(delta);
    expect(reply.subs).toEqual(credited(subs, 100));
    expect(delta.get('evalsha')).toBe(1);
    const total = [...delta.values()].reduce((a, b) => a + b, 0);
    // The same 36 as a request of one sub-batch (shares.test.ts), the 100 acknowledgements in one
    // ZADD; a hash of 10,000 fields takes more than one HMGET (4,000 fields each) and HSET (2,000
    // each), and a zset of 10,000 members more than one ZADD (2,000 each), only because Lua's
    // unpack() stops near 8,000 values.
    const chunked = (fields: number) => Math.ceil(fields / 4000) + Math.ceil(fields / 2000);
    // seen identities, round, workers, hash rate 1m, 5m (with 100 accounts and the chain), 60m
    // (with the 5-minute slot of 100 accounts and the chain), hour.
    const hashes = [10_000, 100, 10_000, 10_000, 10_101, 10_101, 101];
    // worker index, online workers (ZADD NX of new ones, ZADD of the times), online accounts.
    const zsets = [10_000, 10_000, 10_000, 100];
    const expected =
      36 -
      2 * hashes.length +
      hashes.reduce((n, f) => n + chunked(f), 0) -
      zsets.length +
      zsets.reduce((n, m) => n + Math.ceil(m / 2000), 0);
    expect(total, `commands by name: ${JSON.stringify(Object.fromEntries(delta))}`).toBe(expected);
    expect(total / 10_000).toBeLessThan(0.01);
    const round = await readRound(redis, keys, CHAIN);
    expect(Object.keys(round)).toHaveLength(100);
    expect(Object.values(round).every((d) => d === 400)).toBe(true); // the warm-up's 200 and these
    const log = [];
    for await (const entry of readShareLog(redis, keys, CHAIN))
      if (entry.stratumId === 'stratum-1') log.push(entry);
    expect(log).toHaveLength(1); // one share-log entry per request, not per sub-batch
    expect(log[0]!.shares).toHaveLength(10_000);
    expect(log[0]!.spoolId).toBe(spoolOf('stratum-1'));
  });

  it('answers sub-batches credited before with their first answer and credits only the new ones, writing nothing for a full repeat', async () => {
    const keys = testKeys();
    const c = rpc(await startReporter(keys));
    const old = subBatches(5, 3);
    await c.request('reporter.shares', wire(old));
    const after = await snapshot(redis, keys);
    const repeat = await c.request('reporter.shares', wire([...old].reverse()));
    expect(repeat.subs).toEqual(
      [...old].reverse().map((b) => ({ seq: b.seq, status: 'repeat', credited: 3 })),
    );
    expect(await snapshot(redis, keys)).toEqual(after);

    const fresh = subBatches(2, 4);
    const mixed = await c.request('reporter.shares', wire([old[0]!, fresh[0]!, old[1]!, fresh[1]!]));
    expect(mixed.subs).toEqual([
      { seq: old[0]!.seq, status: 'repeat', credited: 3 },
      { seq: fresh[0]!.seq, status: 'credited', credited: 4 },
      { seq: old[1]!.seq, status: 'repeat', credited: 3 },
      { seq: fresh[1]!.seq, status: 'credited', credited: 4 },
    ]);
    // acct0 and acct1: 3 shares of diff 2 from the first request, 4 more from the second.
    expect(await readRound(redis, keys, CHAIN)).toMatchObject({ acct0: 14, acct1: 14, acct2: 6 });
  });

  it('credits a request once when it is delivered concurrently through two reporters', async () => {
    const keys = testKeys();
    const [a, b] = await Promise.all([startReporter(keys), startReporter(keys)]);
    const clients = [rpc(a), rpc(b)];
    const subs = subBatches(20, 50);
    const replies = await Promise.all(
      Array.from({ length: 8 }, (_, i) => clients[i % 2]!.request('reporter.shares', wire(subs))),
    );
    const creditedNow = replies.flatMap((r) => r.subs).filter((o) => o.status === 'credited');
    expect(creditedNow).toHaveLength(20); // each sub-batch credited by exactly one delivery
    for (const r of replies) {
      expect(r.subs.map((o) => (o.status === 'refused' ? -1 : o.credited))).toEqual(subs.map(() => 50));
    }
    const round = await readRound(redis, keys, CHAIN);
    expect(Object.values(round).every((d) => d === 100)).toBe(true);
    expect(a.stats().batches.credited + b.stats().batches.credited).toBe(20);
  });

  it('forgets acknowledgements below the floor; a late copy below it is answered forgotten and writes nothing', async () => {
    const keys = testKeys();
    const c = rpc(await startReporter(keys));
    const acks = reporterKeys(keys, CHAIN).spoolAcks(spoolOf('stratum-1'));
    const first = subBatches(10, 2);
    await c.request('reporter.shares', wire(first));
    expect(await redis.zcard(acks)).toBe(11); // 10 sub-batches and the floor
    // The server acknowledged all of them: its next request says so, and they are forgotten.
    const next = subBatches(1, 2);
    await c.request('reporter.shares', wire(next, next[0]!.seq));
    // Same score: by name, digits before 'floor'.
    expect(await redis.zrange(acks, 0, -1, 'WITHSCORES')).toEqual([
      expect.stringMatching(new RegExp(`^${next[0]!.seq}:2:`)),
      String(next[0]!.seq),
      'floor',
      String(next[0]!.seq),
    ]);
    const after = await snapshot(redis, keys);
    // A copy of the first request still in flight (a timed-out try through another reporter).
    const late = await c.request('reporter.shares', wire(first));
    expect(late.subs).toEqual(first.map((b) => ({ seq: b.seq, status: 'forgotten', credited: 0 })));
    expect(await snapshot(redis, keys)).toEqual(after);
  });

  it('refuses a seq acknowledged for another sub-batch (two servers on one spool) and a request whose seq is below its own floor', async () => {
    const keys = testKeys();
    const c = rpc(await startReporter(keys));
    const [one] = subBatches(1, 2);
    await c.request('reporter.shares', wire(one!));
    const after = await snapshot(redis, keys);
    const impostor = { ...subBatches(1, 2)[0]!, seq: one!.seq };
    const reply = await c.request('reporter.shares', wire(impostor));
    expect(reply.subs[0]).toMatchObject({ status: 'refused', error: { code: RpcErrorCode.BadRequest } });
    expect(JSON.stringify(reply.subs[0])).toMatch(/acknowledged for another sub-batch/);
    expect(await snapshot(redis, keys)).toEqual(after);
    await expect(c.request('reporter.shares', wire(subBatches(1, 1), 1e12))).rejects.toMatchObject({
      code: RpcErrorCode.BadRequest,
      message: expect.stringMatching(/below the request's floor/),
    });
  });

  it('credits the readable sub-batches of a request and refuses the unreadable one alone', async () => {
    const keys = testKeys();
    const c = rpc(await startReporter(keys));
    const subs = subBatches(3, 2);
    (subs[1]!.shares as unknown as Record<string, unknown>[])[0]!.diff = -1;
    const reply = await c.request('reporter.shares', wire(subs));
    expect(reply.subs[0]).toEqual({ seq: subs[0]!.seq, status: 'credited', credited: 2 });
    expect(reply.subs[1]).toMatchObject({
      seq: subs[1]!.seq,
      status: 'refused',
      error: {
        code: RpcErrorCode.BadRequest,
        message: expect.stringMatching(/subs\[1\]\.shares\[0\]\.diff/),
      },
    });
    expect(reply.subs[2]).toEqual({ seq: subs[2]!.seq, status: 'credited', credited: 2 });
    expect(await readRound(redis, keys, CHAIN)).toEqual({ acct0: 4, acct2: 4 });
  });
});

describe('share log retention and account hashrate', () => {
  it('deletes share log entries older than shareLogRetentionS as requests come', async () => {
    const keys = testKeys();
    const c = rpc(await startReporter(keys, { shareLogRetentionS: 3600 }));
    const log = reporterKeys(keys, CHAIN).shareLog;
    const now = Date.now();
    await redis.xadd(log, `${now - 7_200_000}-0`, 'batch', 'old');
    await redis.xadd(log, `${now - 3_700_000}-0`, 'batch', 'old');
    await redis.xadd(log, `${now - 1_800_000}-0`, 'batch', 'kept');
    await c.request('reporter.shares', wire(subBatches(1, 1)));
    const left = ((await redis.xrange(log, '-', '+')) as [string, string[]][]).map(([, f]) => f[1]);
    expect(left).toEqual(['kept', expect.stringMatching(/:0$/)]);
  });

  it('keeps account and chain hashrate over 5 min, 1 h and 24 h from accepted difficulty', async () => {
    const keys = testKeys();
    const c = rpc(await startReporter(keys));
    const now = Date.now();
    const hourAgo = now - 3_600_000 - 1;
    const shares: Share[] = [
      share({ account: 'alice', worker: 'a', diff: 600, ts: now }),
      share({ account: 'alice', worker: 'b', diff: 300, ts: now }),
      share({ account: 'bob', worker: '', diff: 3000, ts: now }),
      share({ account: 'bob', worker: '', diff: 3000, ts: now, result: 'stale' }),
      // Two hours old: outside 5 min and 1 h, inside 24 h.
      share({ account: 'alice', worker: 'a', diff: 8640, ts: hourAgo - 3_600_000 }),
    ];
    await c.request('reporter.shares', wire(batch(shares)));
    const accounts = await readAccountHashrate(redis, keys, CHAIN, ['alice', 'bob', 'nobody'], now);
    expect(accounts.get('alice')!['5m']).toBeCloseTo(900 / 300, 9);
    expect(accounts.get('alice')!['1h']).toBeCloseTo(900 / 3600, 9);
    expect(accounts.get('alice')!['24h']).toBeCloseTo((900 + 8640) / 86_400, 9);
    expect(accounts.get('bob')).toEqual({ '5m': 10, '1h': 3000 / 3600, '24h': 3000 / 86_400 });
    expect(accounts.get('nobody')).toEqual({ '5m': 0, '1h': 0, '24h': 0 });
    const chain = await readChainHashrate(redis, keys, CHAIN, now);
    expect(chain['5m']).toBeCloseTo(3900 / 300, 9);
    expect(chain['24h']).toBeCloseTo((3900 + 8640) / 86_400, 9);
    const hour = reporterKeys(keys, CHAIN).accountHashrate(Math.floor(now / 3_600_000));
    expect(await redis.ttl(hour)).toBeGreaterThan(24 * 3600);
  });
});
