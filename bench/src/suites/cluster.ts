import { connectRedis } from '@hashwire/registry';
import { startRedis, startRedisCluster } from '@hashwire/testkit';
import { measureReporterShares } from '../share-load.js';
import type { BenchSuite } from '../types.js';

const CHAIN = 'bench';
const MASTERS = 3;
const CMDS_TARGET = 0.2;

/**
 * The shares suite's load (four stratum servers' batches through a real reporter's
 * `reporter.shares` RPC) on a real Redis Cluster of three masters, and, in the same run, on a
 * single Redis as the baseline. Commands per share are INFO commandstats summed over the
 * Cluster's masters. Every key of one chain is in its `{chain}` slot, so one chain's crediting
 * runs on one master: the figure is what one chain gets from a Cluster, not the Cluster's total.
 */
export const clusterSuite: BenchSuite = {
  name: 'cluster',
  description: `share batches → reporter (RPC) → a ${MASTERS}-master Redis Cluster, against a single Redis`,
  async run(ctx) {
    const seconds = ctx.quick ? 0.5 : 3;

    const single = await startRedis();
    const singleRedis = connectRedis(single.url, 'bench');
    let base: Awaited<ReturnType<typeof measureReporterShares>>;
    try {
      base = await measureReporterShares(ctx, singleRedis, {
        chain: CHAIN,
        prefix: 'bench:',
        seconds,
        label: 'cluster baseline (single Redis)',
        reporterId: 'bench-reporter-single',
      });
    } finally {
      singleRedis.disconnect();
      await single.stop();
    }

    ctx.log(`cluster: starting a Redis Cluster of ${MASTERS} masters`);
    const cluster = await startRedisCluster({ masters: MASTERS });
    const clusterRedis = connectRedis({ cluster: cluster.nodes }, 'bench');
    let onCluster: Awaited<ReturnType<typeof measureReporterShares>>;
    try {
      onCluster = await measureReporterShares(ctx, clusterRedis, {
        chain: CHAIN,
        prefix: 'bench:',
        seconds,
        label: `cluster (${MASTERS} masters)`,
        reporterId: 'bench-reporter-cluster',
      });
    } finally {
      clusterRedis.disconnect();
      await cluster.stop();
    }

    return [
      {
        name: 'cluster.shares_e2e_per_s',
        value: Math.round(onCluster.perS),
        unit: `shares/s (one chain, ${MASTERS}-master Cluster)`,
        higherIsBetter: true,
        baseline: { name: 'the same load on a single Redis', value: Math.round(base.perS) },
      },
      {
        name: 'cluster.redis_cmds_per_share',
        value: Number(onCluster.cmdsPerShare.toFixed(4)),
        unit: 'commands/share (all masters)',
        higherIsBetter: false,
        baseline: { name: 'the same load on a single Redis', value: Number(base.cmdsPerShare.toFixed(4)) },
        target: `<= ${CMDS_TARGET}`,
        met: onCluster.cmdsPerShare <= CMDS_TARGET,
      },
    ];
  },
};
