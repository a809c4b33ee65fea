import { randomBytes, randomUUID } from 'node:crypto';
import { createLogger } from '@hashwire/core';
import { type RpcMethods, type Share, type ShareResult, createKeyBuilder } from '@hashwire/protocol';
import { type RedisClient, connectRedis } from '@hashwire/registry';
import { createReporter } from '@hashwire/reporter';
import { type RpcClient, createRpcClient } from '@hashwire/rpc';
import { startRedis } from '@hashwire/testkit';
import type { BenchContext, BenchResult, BenchSuite } from '../types.js';
import { measureBatching } from './shares-batching.js';

const CHAIN = 'bench';
/** Four stratum servers, each sending 2,500-share batches (a second of 2,500 shares/s each). */
const STRATUM_SERVERS = 4;
const SHARES_PER_BATCH = 2500;
const BATCHES_IN_FLIGHT_PER_SERVER = 2;
/** 1,000 workers in 250 accounts; HAProxy's source hash gives each server its own quarter. */
const ACCOUNTS = 250;
const WORKERS_PER_ACCOUNT = 4;
const E2E_TARGET = 20_000;
const CMDS_TARGET = 0.2;

/**
 * Share batches from stratum servers through a reporter's RPC (`reporter.shares`) into Redis:
 * sustained shares/s with every server keeping batches in flight, and Redis commands per share
 * from INFO commandstats. Baseline, same run and same Redis: the same shares written the naive
 * way, one pipelined HINCRBYFLOAT per share (round totals only: no idempotency, workers,
 * hashrate or share log).
 */
export const sharesSuite: BenchSuite = {
  name: 'shares',
  description: 'share batches → reporter (RPC) → Redis accounting',
  async run(ctx) {
    const seconds = ctx.quick ? 0.5 : 3;
    const server = await startRedis();
    const redis = connectRedis(server.url, 'bench');
    try {
      return [...(await measure(ctx, redis, seconds)), ...(await measureBatching(ctx, redis))];
    } finally {
      redis.disconnect();
      await server.stop();
    }
  },
};

function batchesOf(server: number, count: number): Share[][] {
  const now = Date.now();
  const results: ShareResult[] = [
    'accepted',
    'accepted',
    'accepted',
    'accepted',
    'accepted',
    'accepted',
    'stale',
  ];
  return Array.from({ length: count }, (_, b) =>
    Array.from({ length: SHARES_PER_BATCH }, (_, i) => {
      const n = (b * SHARES_PER_BATCH + i) * 7919;
      const account = server * (ACCOUNTS / STRATUM_SERVERS) + (n % (ACCOUNTS / STRATUM_SERVERS));
      return {
        shareId: randomUUID(),
        sessionId: `s${account}`,
        account: `ltc1qaccount${account}`,
        worker: `rig${(n >> 3) % WORKERS_PER_ACCOUNT}`,
        jobId: '1a2b',
        extranonce1: 'f0000001',
        extranonce2: randomBytes(4).toString('hex'),
        ntime: '65a1b2c3',
        nonce: randomBytes(4).toString('hex'),
        version: '20000000',
        diff: 2 ** (n % 8),
        actualDiff: 300,
        result: results[n % results.length]!,
        ts: now,
        ip: '10.0.0.1',
      };
    }),
  );
}

async function commandCalls(redis: RedisClient): Promise<number> {
  const text = (await redis.info('commandstats')) as string;
  let calls = 0;
  for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) if (m[1] !== 'info') calls += Number(m[2]);
  return calls;
}

async function measure(ctx: BenchContext, redis: RedisClient, seconds: number): Promise<BenchResult[]> {
  const keys = createKeyBuilder({ prefix: 'bench:' });
  const reporter = await createReporter({
    id: 'bench-reporter',
    chain: CHAIN,
    redis,
    keys,
    logger: createLogger({ name: 'reporter', level: 'warn' }),
    blockPollMs: 3_600_000,
  });
  await reporter.start();
  const clients: RpcClient<RpcMethods>[] = [];
  try {
    // Distinct shares per batch; each send under its own id, with its own submissions.
    const perServer = ctx.quick ? 6 : 16;
    const pools = Array.from({ length: STRATUM_SERVERS }, (_, s) => batchesOf(s, perServer));
    for (let s = 0; s < STRATUM_SERVERS; s++) clients.push(createRpcClient<RpcMethods>(reporter.endpoint!));

    let submission = 0;
    const seqs = Array.from({ length: STRATUM_SERVERS }, () => 0);
    const run = async (untilMs: number) => {
      let shares = 0;
      const server = async (s: number) => {
        const pool = pools[s]!;
        let next = 0;
        while (performance.now() < untilMs) {
          const shareList = pool[next++ % pool.length]!;
          // A list sent again must hold new submissions, or the reporter's duplicate check
          // (rightly) credits none of it: each send gets extranonce2 values of its own.
          for (const share of shareList) share.extranonce2 = (submission++).toString(16).padStart(8, '0');
          const seq = seqs[s]!++;
          const reply = await clients[s]!.request(
            'reporter.shares',
            {
              stratumId: `stratum-${s}`,
              spoolId: `spool-${s}`,
              chain: CHAIN,
              floor: Math.max(0, seq - 64),
              subs: [{ seq, id: `${randomUUID()}:0`, shares: shareList }],
            },
            { timeoutMs: 30_000 },
          );
          const outcome = reply.subs[0];
          if (outcome?.status !== 'credited' || outcome.credited === 0)
            throw new Error('bench: a batch was credited nothing');
          shares += shareList.length;
        }
      };
      const start = performance.now();
      await Promise.all(
        Array.from({ length: STRATUM_SERVERS * BATCHES_IN_FLIGHT_PER_SERVER }, (_, i) =>
          server(i % STRATUM_SERVERS),
        ),
      );
      return { shares, elapsedS: (performance.now() - start) / 1000 };
    };

    ctx.log(
      `shares: warm-up, then ${seconds}s of ${STRATUM_SERVERS} stratum servers × ${SHARES_PER_BATCH}-share batches`,
    );
    await run(performance.now() + Math.min(500, seconds * 300));
    const before = await commandCalls(redis);
    const e2e = await run(performance.now() + seconds * 1000);
    const cmds = (await commandCalls(redis)) - before;
    const perS = e2e.shares / e2e.elapsedS;
    const cmdsPerShare = cmds / e2e.shares;

    ctx.log('shares: baseline, one pipelined HINCRBYFLOAT per share');
    const naiveKey = `${keys.prefix}naive-round`;
    const naive = async (untilMs: number) => {
      let shares = 0;
      const start = performance.now();
      let b = 0;
      while (performance.now() < untilMs) {
        const shareList = pools[b % STRATUM_SERVERS]![Math.floor(b / STRATUM_SERVERS) % perServer]!;
        b++;
        const pipeline = redis.pipeline();
        for (const s of shareList) pipeline.hincrbyfloat(naiveKey, s.account, s.diff);
        await pipeline.exec();
        shares += shareList.length;
      }
      return { shares, elapsedS: (performance.now() - start) / 1000 };
    };
    await naive(performance.now() + Math.min(500, seconds * 300));
    const naiveBefore = await commandCalls(redis);
    const base = await naive(performance.now() + seconds * 1000);
    const naiveCmds = ((await commandCalls(redis)) - naiveBefore) / base.shares;
    const basePerS = base.shares / base.elapsedS;

    return [
      {
        name: 'shares.e2e_per_s',
        value: Math.round(perS),
        unit: 'shares/s',
        higherIsBetter: true,
        baseline: { name: 'one pipelined HINCRBYFLOAT per share, no RPC', value: Math.round(basePerS) },
        target: `>= ${E2E_TARGET}`,
        met: perS >= E2E_TARGET,
      },
      {
        name: 'shares.redis_cmds_per_share',
        value: Number(cmdsPerShare.toFixed(4)),
        unit: 'commands/share',
        higherIsBetter: false,
        baseline: { name: 'one HINCRBYFLOAT per share', value: Number(naiveCmds.toFixed(4)) },
        target: `< ${CMDS_TARGET}`,
        met: cmdsPerShare < CMDS_TARGET,
      },
    ];
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await reporter.close();
  }
}
