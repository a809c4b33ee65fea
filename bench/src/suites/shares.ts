import { createKeyBuilder } from '@hashwire/protocol';
import { type RedisClient, connectRedis } from '@hashwire/registry';
import { startRedis } from '@hashwire/testkit';
import { STRATUM_SERVERS, commandCalls, measureReporterShares } from '../share-load.js';
import type { BenchContext, BenchResult, BenchSuite } from '../types.js';
import { measureBatching } from './shares-batching.js';

const CHAIN = 'bench';
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

async function measure(ctx: BenchContext, redis: RedisClient, seconds: number): Promise<BenchResult[]> {
  const keys = createKeyBuilder({ prefix: 'bench:' });
  const { perS, cmdsPerShare, pools } = await measureReporterShares(ctx, redis, {
    chain: CHAIN,
    prefix: keys.prefix,
    seconds,
    label: 'shares',
    reporterId: 'bench-reporter',
  });
  const perServer = pools[0]!.length;
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
}
