import { type Socket, createSocket } from 'node:dgram';
import { once } from 'node:events';
import { createLogger } from '@hashwire/core';
import { type KeyBuilder, RpcErrorCode, type Share } from '@hashwire/protocol';
import { type RedisClient, connectRedis, getService } from '@hashwire/registry';
import { RpcError } from '@hashwire/rpc';
import { type RedisServer, startRedis } from '@hashwire/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type Reporter,
  type ReporterOptions,
  createReporter,
  readHashrate,
  readHashrateHistory,
  readOnline,
  readRound,
  readRoundTotal,
  readShareCounts,
  readShareLog,
  readWorkers,
  reporterKeys,
} from '../src/index.js';
import {
  CHAIN,
  type TestBatch,
  batch,
  callsBetween,
  client,
  commandCalls,
  mixedShares,
  send,
  share,
  snapshot,
  spoolOf,
  testKeys,
  useReporterBed,
  wire,
} from './helpers.js';

const bed = useReporterBed();
const { cleanups, startReporter, rpc } = bed;
let redis: RedisClient;
beforeAll(() => {
  redis = bed.redis;
});

async function sendError(send: Promise<unknown>): Promise<RpcError> {
  try {
    await send;
  } catch (error) {
    expect(error).toBeInstanceOf(RpcError);
    return error as RpcError;
  }
  throw new Error('the request was answered, not refused');
}

describe('reporter.shares', () => {
  it('credits a batch: round per account, worker counters, hashrate buckets, share log', async () => {
    const keys = testKeys();
    const reporter = await startReporter(keys);
    const now = Date.now();
    const shares: Share[] = [
      share({ account: 'alice', worker: 'rig1', diff: 8, ts: now }),
      share({ account: 'alice', worker: 'rig1', diff: 8, ts: now }),
      share({ account: 'alice', worker: 'rig2', diff: 16, ts: now }),
      share({ account: 'bob', worker: '', diff: 4, ts: now }),
      share({ account: 'bob', worker: '', diff: 4, ts: now, result: 'stale' }),
      share({ account: 'alice', worker: 'rig1', diff: 8, ts: now, result: 'lowdiff' }),
      share({ account: 'alice', worker: 'rig1', diff: 8, ts: now, result: 'duplicate' }),
      share({ account: 'alice', worker: 'rig2', diff: 8, ts: now, result: 'invalid' }),
    ];
    const request = batch(shares);
    const reply = await send(rpc(reporter), request);
    expect(reply).toEqual({ batchId: request.batchId, credited: 4 });

    expect(await readRound(redis, keys, CHAIN)).toEqual({ alice: 32, bob: 4 });
    const workers = await readWorkers(redis, keys, CHAIN);
    expect(workers.get('alice.rig1')).toEqual({
      accepted: 2,
      stale: 0,
      duplicate: 1,
      lowdiff: 1,
      invalid: 0,
      acceptedDiff: 16,
      lastShareMs: now,
    });
    expect(workers.get('alice.rig2')).toMatchObject({ accepted: 1, invalid: 1, acceptedDiff: 16 });
    expect(workers.get('bob')).toMatchObject({ accepted: 1, stale: 1, acceptedDiff: 4 });

    // All credited in the current bucket of each window: diff/s is (share of the bucket) / window.
    const rates = await readHashrate(redis, keys, CHAIN, ['alice.rig1', 'bob'], now);
    expect(rates.get('alice.rig1')!['1m']).toBeCloseTo(16 / 60, 9);
    expect(rates.get('alice.rig1')!['5m']).toBeCloseTo(16 / 300, 9);
    expect(rates.get('alice.rig1')!['60m']).toBeCloseTo(16 / 3600, 9);
    expect(rates.get('bob')!['1m']).toBeCloseTo(4 / 60, 9);
    const bucket = reporterKeys(keys, CHAIN).hashrate(1, Math.floor(now / 60_000));
    expect(await redis.ttl(bucket)).toBeGreaterThan(60);

    const log = [];
    for await (const entry of readShareLog(redis, keys, CHAIN)) log.push(entry);
    expect(log).toHaveLength(1);
    expect(log[0]).toMatchObject({
      batchId: request.batchId,
      stratumId: 'stratum-1',
      counts: { accepted: 4, stale: 1, duplicate: 1, lowdiff: 1, invalid: 1 },
    });
    expect(await readShareCounts(redis, keys, CHAIN)).toEqual({
      accepted: 4,
      stale: 1,
      duplicate: 1,
      lowdiff: 1,
      invalid: 1,
    });
    expect(log[0]!.shares).toEqual(
      shares
        .filter((s) => s.result === 'accepted')
        .map((s) => ({
          shareId: s.shareId,
          account: s.account,
          worker: s.worker,
          diff: s.diff,
          jobId: s.jobId,
          extranonce1: s.extranonce1,
          extranonce2: s.extranonce2,
          ntime: s.ntime,
          nonce: s.nonce,
          version: s.version,
        })),
    );
    // The spool's acknowledgement, kept a day after its last credit: its floor and this seq.
    const acks = reporterKeys(keys, CHAIN).spoolAcks(spoolOf('stratum-1'));
    expect(await redis.ttl(acks)).toBeGreaterThan(86_000);
    expect(await redis.zrange(acks, 0, -1, 'WITHSCORES')).toEqual([
      'floor',
      '0',
      expect.stringMatching(new RegExp(`^${request.seq}:4:`)),
      String(request.seq),
    ]);
    expect(reporter.stats()).toMatchObject({ credited: 4, batches: { credited: 1 } });
  });

  it('credits a batch delivered twice once, and answers the second delivery with the first reply', async () => {
    const keys = testKeys();
    const reporter = await startReporter(keys);
    const c = rpc(reporter);
    const request = batch(mixedShares(300, 5, 3));
    const first = await send(c, request);
    const after = await snapshot(redis, keys);
    // A retry after a lost ack, even with its shares in another order, credits nothing.
    const second = await send(c, { ...request, shares: [...request.shares].reverse() });
    expect(second).toEqual(first);
    expect(await snapshot(redis, keys)).toEqual(after);
    expect(reporter.stats().batches).toMatchObject({ credited: 1, duplicate: 1 });
  });

  it('credits a batch once when it is delivered concurrently, through two reporters', async () => {
    const keys = testKeys();
    const [a, b] = await Promise.all([startReporter(keys), startReporter(keys)]);
    const clients = [rpc(a), rpc(b), rpc(a), rpc(b)];
    const request = batch(mixedShares(2000, 20, 4, 7));
    const accepted = request.shares.filter((s) => s.result === 'accepted');
    const replies = await Promise.all(
      Array.from({ length: 16 }, (_, i) => send(clients[i % clients.length]!, request)),
    );
    for (const r of replies) expect(r).toEqual({ batchId: request.batchId, credited: accepted.length });
    const expected: Record<string, number> = {};
    for (const s of accepted) expected[s.account] = (expected[s.account] ?? 0) + s.diff;
    expect(await readRound(redis, keys, CHAIN)).toEqual(expected);
    const log = [];
    for await (const entry of readShareLog(redis, keys, CHAIN)) log.push(entry);
    expect(log).toHaveLength(1);
    const [sa, sb] = [a.stats().batches, b.stats().batches];
    expect(sa.credited + sb.credited).toBe(1);
    expect(sa.duplicate + sb.duplicate).toBe(15);
    // The chain's share counts by result: the request's, once.
    expect(await readShareCounts(redis, keys, CHAIN)).toEqual(log[0]!.counts);
    expect((await readShareCounts(redis, keys, CHAIN)).accepted).toBe(accepted.length);
  });

  it('keeps a hashrate history: 5-minute points over the previous and current hour, hourly points over 24 h', async () => {
    const keys = testKeys();
    const c = rpc(await startReporter(keys));
    const HOUR = 3_600_000;
    const SLOT = 300_000;
    const now = Date.now();
    const hour = Math.floor(now / HOUR);
    const earlier = (hour - 1) * HOUR + 7 * SLOT + 1_000; // slot 7 of the previous hour
    const hoursAgo = now - 5 * HOUR; // only in the hour buckets (26 h)
    await send(
      c,
      batch([
        share({ account: 'alice', worker: 'rig1', diff: 8, ts: earlier }),
        share({ account: 'alice', worker: 'rig2', diff: 16, ts: hoursAgo }),
        share({ account: 'alice', worker: 'rig1', diff: 4, ts: now }),
        share({ account: 'bob', worker: '', diff: 2, ts: now }),
        share({ account: 'bob', worker: '', diff: 64, ts: now, result: 'stale' }),
      ]),
    );
    const alice = await readHashrateHistory(redis, keys, CHAIN, 'alice', now);
    const pool = await readHashrateHistory(redis, keys, CHAIN, undefined, now);
    const slotNow = Math.floor(now / SLOT) * SLOT;
    const elapsed = (from: number, size: number) => Math.max(1, Math.min(size, now - from)) / 1000;
    for (const [history, current] of [
      [alice, 4],
      [pool, 6],
    ] as const) {
      // Every slot from the start of the previous hour to the current one, oldest first.
      expect(history.fiveMinutes.map((p) => p.t)).toEqual(
        Array.from(
          { length: (slotNow - (hour - 1) * HOUR) / SLOT + 1 },
          (_, i) => (hour - 1) * HOUR + i * SLOT,
        ),
      );
      const at = (t: number) => history.fiveMinutes.find((p) => p.t === t)!.rate;
      expect(at((hour - 1) * HOUR + 7 * SLOT)).toBeCloseTo(8 / 300, 12);
      expect(at(slotNow)).toBeCloseTo(current / elapsed(slotNow, SLOT), 12);
      const credited = history.fiveMinutes.filter((p) => p.rate > 0).map((p) => p.t);
      expect(credited).toEqual([(hour - 1) * HOUR + 7 * SLOT, slotNow]);
      // The last 24 hours and the current one.
      expect(history.hours.map((p) => p.t)).toEqual(
        Array.from({ length: 25 }, (_, i) => (hour - 24 + i) * HOUR),
      );
      expect(history.hours[19]!.rate).toBeCloseTo(16 / 3600, 12);
      expect(history.hours[23]!.rate).toBeCloseTo(8 / 3600, 12);
      expect(history.hours[24]!.rate).toBeCloseTo(current / elapsed(hour * HOUR, HOUR), 12);
      expect(history.hours.filter((p) => p.rate > 0)).toHaveLength(3);
    }
    // An account with no share has a history of zeros.
    const nobody = await readHashrateHistory(redis, keys, CHAIN, 'carol', now);
    expect([...nobody.fiveMinutes, ...nobody.hours].every((p) => p.rate === 0)).toBe(true);
  });

  it('keeps round totals equal to the sum over the share log, share by share', async () => {
    const keys = testKeys();
    const reporter = await startReporter(keys);
    const c = rpc(reporter);
    const sent: Share[] = [];
    const requests: TestBatch[] = [];
    for (let i = 0; i < 40; i++) {
      const request = batch(mixedShares(250, 12, 5, 100 + i), `stratum-${i % 3}`);
      requests.push(request);
      sent.push(...request.shares);
    }
    // Several in flight at once, some delivered twice.
    await Promise.all(requests.map((r) => send(c, r)));
    await Promise.all(requests.slice(0, 10).map((r) => send(c, r)));

    const logged = new Map<string, { account: string; worker: string; diff: number }>();
    for await (const entry of readShareLog(redis, keys, CHAIN, { pageSize: 7 })) {
      for (const s of entry.shares) {
        expect(logged.has(s.shareId), `share ${s.shareId} logged twice`).toBe(false);
        logged.set(s.shareId, s);
      }
    }
    const accepted = sent.filter((s) => s.result === 'accepted');
    expect(logged.size).toBe(accepted.length);
    for (const s of accepted) {
      expect(logged.get(s.shareId)).toEqual({
        shareId: s.shareId,
        account: s.account,
        worker: s.worker,
        diff: s.diff,
        jobId: s.jobId,
        extranonce1: s.extranonce1,
        extranonce2: s.extranonce2,
        ntime: s.ntime,
        nonce: s.nonce,
        version: s.version,
      });
    }
    const fromLog: Record<string, number> = {};
    for (const s of logged.values()) fromLog[s.account] = (fromLog[s.account] ?? 0) + s.diff;
    // Dyadic difficulties: the sums are exact in any order.
    expect(await readRound(redis, keys, CHAIN)).toEqual(fromLog);
    // The total kept beside the round, and the counts of who is online, agree with the credits.
    const totalDiff = Object.values(fromLog).reduce((a, b) => a + b, 0);
    expect(await readRoundTotal(redis, keys, CHAIN)).toEqual({
      accounts: Object.keys(fromLog).length,
      totalDiff,
    });
    const online = await readOnline(redis, keys, CHAIN);
    expect(online).toEqual({
      workers: new Set(accepted.map((s) => `${s.account}.${s.worker}`)).size,
      accounts: new Set(accepted.map((s) => s.account)).size,
    });

    const workers = await readWorkers(redis, keys, CHAIN);
    // The worker index holds every worker the counters do, nothing else.
    const index = await redis.zrangebylex(keys.workerIndex(CHAIN), '-', '+');
    expect(index).toEqual([...workers.keys()].sort());
    const perWorker = new Map<string, number>();
    for (const s of sent) {
      const name = `${s.account}.${s.worker}`;
      perWorker.set(name, (perWorker.get(name) ?? 0) + 1);
    }
    for (const [name, total] of perWorker) {
      const w = workers.get(name)!;
      expect(w.accepted + w.stale + w.duplicate + w.lowdiff + w.invalid).toBe(total);
    }
    // The chain's share counts by result: every share sent counted once (10 requests were
    // delivered twice), and the same as the workers' counters summed.
    const byResult = { accepted: 0, stale: 0, duplicate: 0, lowdiff: 0, invalid: 0 };
    for (const s of sent) byResult[s.result]++;
    expect(await readShareCounts(redis, keys, CHAIN)).toEqual(byResult);
    const summed = { accepted: 0, stale: 0, duplicate: 0, lowdiff: 0, invalid: 0 };
    for (const w of workers.values())
      for (const k of Object.keys(summed) as (keyof typeof summed)[]) summed[k] += w[k];
    expect(summed).toEqual(byResult);
  });

  it('runs a constant handful of Redis commands per request: far below one per share (INFO commandstats)', async () => {
    const keys = testKeys();
    // Its registry refresh (a script, on a timer) out of the counted span, as the block poll is.
    const reporter = await startReporter(keys, { serviceTtlMs: 3_600_000 });
    const c = rpc(reporter, { quietHeartbeat: true });
    // Every share at one time, so no request's shares straddle a bucket boundary (that costs a
    // bucket more): the count below is exact.
    const ts = Date.now();
    const requests = Array.from({ length: 20 }, (_, i) =>
      batch(mixedShares(1000, 50, 4, 500 + i).map((s) => ({ ...s, ts }))),
    );
    // Scripts loaded, and every worker of the requests online already: a worker's first
    // accepted share costs a ZRANGEBYSCORE and an XADD more (its worker.online), once.
    const everyWorker = Array.from({ length: 200 }, (_, i) =>
      share({ account: `acct${Math.floor(i / 4)}`, worker: `w${i % 4}` }),
    );
    await send(c, batch(everyWorker));
    const before = await commandCalls(redis);
    for (const r of requests) await send(c, r);
    const delta = callsBetween(before, await commandCalls(redis));
    // PING is the reporter's Redis health check, on a timer: it counts by time, not by batch.
    delta.delete('ping');
    // EXISTS + ROLE is the reporter asking the chain's node how many replicas it has (to wait
    // for them), also on a timer (`replication.checkMs`), not per batch.
    expect(delta.get('role') ?? 0).toBeLessThanOrEqual(Math.ceil(requests.length / 2));
    expect(delta.get('exists') ?? 0).toBe(delta.get('role') ?? 0);
    delta.delete('role');
    delta.delete('exists');
    const total = [...delta.values()].reduce((a, b) => a + b, 0);
    const shares = requests.length * 1000;
    const perShare = total / shares;
    expect(delta.get('evalsha')).toBe(requests.length);
    expect(delta.get('eval') ?? 0).toBe(0);
    // 200 workers in 50 accounts per request: each hash (round, workers, 3 hash-rate buckets,
    // the hour bucket of accounts and the chain, the job's seen identities) is one HMGET and one
    // HSET, with 4 EXPIREAT and one EXPIRE; the spool's acknowledgements are ZSCORE +
    // ZRANGEBYSCORE to check, ZREMRANGEBYSCORE + ZADD + EXPIRE to record; one XADD and one XRANGE
    // for the share log's age; GET + SET of the round's total; one ZADD of every worker into the
    // worker index; ZADD NX (new ones, for their worker.online) + ZADD of the online workers;
    // ZADD + ZREMRANGEBYSCORE of the online accounts; GET + SET of the chain's share counts by
    // result; and the EVALSHA: 36, whatever the number of shares (more only when a request's
    // shares straddle a bucket boundary: a bucket more).
    expect(total / requests.length, `commands by name: ${JSON.stringify(Object.fromEntries(delta))}`).toBe(
      36,
    );
    expect(perShare).toBeLessThan(0.05);
  });
});

describe('redis restart', () => {
  it('keeps crediting after Redis restarts (AOF on, script cache lost) and still refuses a batch it already credited', async () => {
    const aof = await startRedis({ appendonly: true });
    cleanups.push(() => aof.stop());
    const own = connectRedis(aof.url, 'test-aof');
    cleanups.push(() => own.disconnect());
    const keys = testKeys();
    const reporter = await startReporter(keys, { redis: own });
    const c = rpc(reporter);
    const first = batch(mixedShares(500, 5, 2, 11));
    const reply = await send(c, first);
    const round = await readRound(own, keys, CHAIN);

    await aof.restart();
    await own.ping(); // reconnected
    expect(await send(c, first)).toEqual(reply); // the batch id survived
    expect(await readRound(own, keys, CHAIN)).toEqual(round);
    const second = batch([share({ account: 'acct0', diff: 1 })]);
    expect(await send(c, second)).toEqual({ batchId: second.batchId, credited: 1 });
    expect((await readRound(own, keys, CHAIN)).acct0).toBe((round.acct0 ?? 0) + 1);
  });
});

describe('malformed batches', () => {
  const good = () => batch([share({ account: 'alice' }), share({ account: 'bob', diff: 3 })]);
  const withShare = (i: number, change: Record<string, unknown>) => {
    const b = good();
    (b.shares as unknown as Record<string, unknown>[])[i] = { ...b.shares[i], ...change };
    return b;
  };
  const cases: [string, () => unknown, number, RegExp][] = [
    ['not an object', () => [1, 2], RpcErrorCode.BadRequest, /must be an object/],
    ['id not a string', () => ({ ...good(), batchId: 42 }), RpcErrorCode.BadRequest, /subs\[0\]\.id/],
    ['id with braces', () => ({ ...good(), batchId: 'a{b}' }), RpcErrorCode.BadRequest, /subs\[0\]\.id/],
    ['seq not an integer', () => ({ ...good(), seq: 1.5 }), RpcErrorCode.BadRequest, /subs\[0\]\.seq/],
    ['another chain', () => ({ ...good(), chain: 'btc' }), RpcErrorCode.BadRequest, /chain must be "ltc"/],
    [
      'shares not an array',
      () => ({ ...good(), shares: {} }),
      RpcErrorCode.BadRequest,
      /shares must be an array/,
    ],
    ['negative difficulty', () => withShare(1, { diff: -1 }), RpcErrorCode.BadRequest, /shares\[1\]\.diff/],
    ['difficulty as text', () => withShare(1, { diff: '5' }), RpcErrorCode.BadRequest, /shares\[1\]\.diff/],
    [
      'NaN difficulty',
      () => withShare(0, { diff: Number.NaN }),
      RpcErrorCode.BadRequest,
      /shares\[0\]\.diff/,
    ],
    [
      'unknown result',
      () => withShare(1, { result: 'great' }),
      RpcErrorCode.BadRequest,
      /result must be one of/,
    ],
    ['unknown worker (no account)', () => withShare(1, { account: '' }), RpcErrorCode.BadRequest, /account/],
    ['account with a space', () => withShare(0, { account: 'a b' }), RpcErrorCode.BadRequest, /account/],
    ['missing ts', () => withShare(1, { ts: undefined }), RpcErrorCode.BadRequest, /ts must be/],
    ['nonce not a string', () => withShare(1, { nonce: 7 }), RpcErrorCode.BadRequest, /nonce/],
    [
      'job id with a tab (would split its share-log line)',
      () => withShare(0, { jobId: '1a\t2' }),
      RpcErrorCode.BadRequest,
      /shares\[0\]\.jobId/,
    ],
    ['bad block hash', () => withShare(1, { blockHash: 'zz' }), RpcErrorCode.BadRequest, /blockHash/],
    [
      'share id twice',
      () => {
        const b = good();
        b.shares[1]!.shareId = b.shares[0]!.shareId;
        return b;
      },
      RpcErrorCode.BadRequest,
      /appears twice/,
    ],
    [
      'too many shares',
      () => batch(Array.from({ length: 101 }, () => share({ account: 'alice' }))),
      RpcErrorCode.TooLarge,
      /at most 100 shares/,
    ],
  ];

  it('are refused whole with an error code, counted, and leave Redis unchanged', async () => {
    const keys = testKeys();
    const reporter = await startReporter(keys, { maxBatchShares: 100 });
    const c = rpc(reporter, { quietHeartbeat: true }); // each case handed over exactly once
    await send(c, good()); // something to leave unchanged
    const before = await snapshot(redis, keys);
    for (const [what, make, code, message] of cases) {
      const body = make();
      const error = await sendError(
        Array.isArray(body) ? c.request('reporter.shares', body as never) : send(c, body as TestBatch),
      );
      expect(error.code, what).toBe(code);
      expect(error.message, what).toMatch(message);
    }
    expect(await snapshot(redis, keys)).toEqual(before);
    expect(reporter.stats().batches.refused).toBe(cases.length);
    const text = await reporter.metrics.text();
    expect(text).toMatch(new RegExp(`hashwire_batches_total\\{outcome="refused"[^}]*\\} ${cases.length}\\n`));
  });
});

describe('service', () => {
  it('registers as reporter with its RPC endpoint, answers svc.status, and drains to Unavailable', async () => {
    const keys = testKeys();
    const reporter = await startReporter(keys);
    const c = rpc(reporter);
    const info = await getService(redis, keys, 'reporter', reporter.id);
    expect(info).toMatchObject({ kind: 'reporter', rpc: reporter.endpoint, chain: CHAIN, state: 'up' });
    expect(await c.request('svc.status', {})).toMatchObject({ id: reporter.id, state: 'up' });
    // Its HTTP face is registered too: healthy, its stats, and Prometheus text.
    expect((await fetch(`${info!.http}/healthz`)).status).toBe(200);
    expect(await (await fetch(`${info!.http}/stats`)).json()).toMatchObject({ id: reporter.id, state: 'up' });
    expect(await (await fetch(`${info!.http}/metrics`)).text()).toMatch(/^hashwire_batches_total\{/m);

    // A batch in flight when the drain starts is still written and acknowledged: Redis holds
    // writes (CLIENT PAUSE WRITE) so the batch is surely in flight while the drain begins.
    const admin = connectRedis(bed.url, 'admin');
    cleanups.push(async () => {
      await admin.client('UNPAUSE');
      admin.disconnect();
    });
    await admin.client('PAUSE', 60_000, 'WRITE');
    const inFlight = send(c, batch(mixedShares(3000, 10, 10)));
    await c.request('svc.status', {}); // handlers run in arrival order: the batch is being written
    expect(reporter.stats().inFlight).toBe(1);
    const drained = reporter.drain();
    const late = await sendError(send(c, batch([share({ account: 'alice' })])));
    expect(late.code).toBe(RpcErrorCode.Unavailable);
    expect(reporter.stats()).toMatchObject({ state: 'draining', inFlight: 1 });
    await admin.client('UNPAUSE');
    expect((await inFlight).credited).toBeGreaterThan(0);
    await drained;
    expect(await getService(redis, keys, 'reporter', reporter.id)).toBeNull();
    expect(reporter.stats()).toMatchObject({ state: 'draining', batches: { unavailable: 1, credited: 1 } });
  });

  it('mirrors its metrics to statsd over real UDP', async () => {
    const socket: Socket = createSocket('udp4');
    socket.bind(0, '127.0.0.1');
    await once(socket, 'listening');
    cleanups.push(() => new Promise<void>((resolve) => socket.close(() => resolve())));
    const lines: string[] = [];
    let wake: () => void = () => {};
    socket.on('message', (m) => {
      lines.push(...m.toString().split('\n').filter(Boolean));
      wake();
    });
    const keys = testKeys();
    const reporter = await startReporter(keys, {
      id: 'r-statsd',
      metrics: { statsd: { host: '127.0.0.1', port: socket.address().port, tags: { env: 'test' } } },
    });
    await send(
      rpc(reporter),
      batch([share({ account: 'a' }), share({ account: 'a' }), share({ account: 'a', result: 'stale' })]),
    );
    const wanted = [
      'hashwire.batches:1|c|#service:reporter,id:r-statsd,chain:ltc,env:test,outcome:credited',
      'hashwire.shares:2|c|#service:reporter,id:r-statsd,chain:ltc,env:test,result:accepted',
      'hashwire.shares:1|c|#service:reporter,id:r-statsd,chain:ltc,env:test,result:stale',
    ];
    const timing =
      /^hashwire\.rpc:[0-9.]+\|ms\|#service:reporter,id:r-statsd,chain:ltc,env:test,method:reporter\.shares$/;
    const complete = () => wanted.every((w) => lines.includes(w)) && lines.some((l) => timing.test(l));
    while (!complete()) {
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
    expect(lines.filter((l) => l.includes('result:duplicate'))).toEqual([]); // zero counts are not sent
  });
});
