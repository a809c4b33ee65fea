import { createKeyBuilder } from '@hashwire/protocol';
import { connectRedis } from '@hashwire/registry';
import { startRedis } from '@hashwire/testkit';
import { measureReporterShares } from '../share-load.js';
import type { BenchSuite } from '../types.js';

const CHAIN = 'bench';
const TARGET_RATIO = 0.8;

/**
 * The credit path with the PPLNS share window on (one stream entry per credit, trimmed in the
 * same script) against off, in the same run and the same Redis: the shares suite's load (four
 * stratum servers, 2,500-share batches through a reporter's RPC), alternating off, on, off, on
 * so drift hits both. The window's keep is 1 (difficulty), so every credit also trims: the
 * steady state of a long-running pool.
 */
export const payoutsSuite: BenchSuite = {
  name: 'payouts',
  description: 'PPLNS share window: credit throughput with the window on vs off',
  async run(ctx) {
    const seconds = ctx.quick ? 0.5 : 3;
    const server = await startRedis();
    const redis = connectRedis(server.url, 'bench');
    try {
      const totals = { off: { shares: 0, s: 0 }, on: { shares: 0, s: 0 } };
      for (let round = 0; round < 2; round++) {
        for (const mode of ['off', 'on'] as const) {
          const prefix = `bench${mode}${round}:`;
          if (mode === 'on') await redis.set(createKeyBuilder({ prefix }).shareWindowKeep(CHAIN), '1');
          const load = await measureReporterShares(ctx, redis, {
            chain: CHAIN,
            prefix,
            seconds,
            label: `payouts window ${mode}`,
            reporterId: `bench-window-${mode}-${round}`,
            shareWindow: mode === 'on',
          });
          totals[mode].shares += load.perS * seconds;
          totals[mode].s += seconds;
          await redis.flushdb();
        }
      }
      const off = totals.off.shares / totals.off.s;
      const on = totals.on.shares / totals.on.s;
      return [
        {
          name: 'payouts.pplns_window_update_per_s',
          value: Math.round(on),
          unit: 'shares/s',
          higherIsBetter: true,
          baseline: { name: 'the same credit path, window off', value: Math.round(off) },
          target: `>= ${TARGET_RATIO}x baseline`,
          met: on >= TARGET_RATIO * off,
        },
      ];
    } finally {
      redis.disconnect();
      await server.stop();
    }
  },
};
