import type { RedisClient } from '@hashwire/registry';
import { connectRedis } from '@hashwire/registry';
import { startRedis, startRedisCluster } from '@hashwire/testkit';
import { commandCalls, measureReporterShares } from '../share-load.js';
import type { BenchContext, BenchSuite } from '../types.js';

const CHAIN = 'bench';
const MASTERS = 3;
/** A replica per master, as in production: the reporter waits (WAIT) for it before acknowledging a credit. */
const REPLICAS = 1;
const CMDS_TARGET = 0.2;

/**
 * The shares suite's load (four stratum servers' batches through a real reporter's
 * `reporter.shares` RPC) on a real Redis Cluster of three masters with a replica each (the
 * reporter's default `replicas: 1`: every credit waits for the chain's replica, WAIT, before it
 * is acknowledged), and, in the same run, on a single Redis as the baseline. Measured single, Cluster, Cluster, single (each on fresh keys
 * and a fresh reporter), so the process warming up and the machine's load drifting touch both
 * alike; each figure is the mean of its two runs. Commands per share are INFO commandstats
 * summed over the Cluster's masters. Every key of one chain is in its `{chain}` slot, so one
 * chain's crediting runs on one master: the figure is what one chain gets from a Cluster, not
 * the Cluster's total.
 */
export const clusterSuite: BenchSuite = {
  name: 'cluster',
  description: `share batches → reporter (RPC) → a ${MASTERS}-master Redis Cluster with replicas, against a single Redis`,
  async run(ctx) {
    const seconds = ctx.quick ? 0.3 : 3;
    const single = await startRedis();
    const singleRedis = connectRedis(single.url, 'bench');
    let cluster: Awaited<ReturnType<typeof startRedisCluster>> | null = null;
    let clusterRedis: RedisClient | null = null;
    try {
      ctx.log(`cluster: starting a Redis Cluster of ${MASTERS} masters with ${REPLICAS} replica each`);
      cluster = await startRedisCluster({ masters: MASTERS, replicas: REPLICAS });
      const onCluster = connectRedis({ cluster: cluster.nodes }, 'bench');
      clusterRedis = onCluster;
      const targets = { single: singleRedis, cluster: onCluster };
      const order = ['single', 'cluster', 'cluster', 'single'] as const;
      const runs = { single: [] as Run[], cluster: [] as Run[] };
      for (const [i, kind] of order.entries()) {
        runs[kind].push(await once(ctx, targets[kind], kind, i, seconds));
      }
      const mean = (list: Run[], pick: (r: Run) => number) =>
        list.reduce((sum, r) => sum + pick(r), 0) / list.length;
      const perS = mean(runs.cluster, (r) => r.perS);
      const basePerS = mean(runs.single, (r) => r.perS);
      const cmds = mean(runs.cluster, (r) => r.cmdsPerShare);
      const baseCmds = mean(runs.single, (r) => r.cmdsPerShare);
      const cpu = mean(runs.cluster, (r) => r.redisCpuUsPerShare);
      const baseCpu = mean(runs.single, (r) => r.redisCpuUsPerShare);
      for (const node of 'nodes' in onCluster ? onCluster.nodes('master') : []) {
        const { port } = node.options;
        ctx.log(`cluster: master :${port} ran ${await commandCalls(node)} commands in all`);
      }
      ctx.log(
        `cluster: shares/s single ${runs.single.map((r) => Math.round(r.perS)).join(', ')}; Cluster ${runs.cluster.map((r) => Math.round(r.perS)).join(', ')}`,
      );
      return [
        {
          name: 'cluster.shares_e2e_per_s',
          value: Math.round(perS),
          unit: `shares/s (one chain, ${MASTERS}+${MASTERS * REPLICAS} Cluster, credits WAIT for a replica, mean of 2 runs)`,
          higherIsBetter: true,
          baseline: {
            name: 'the same load on a single Redis (no replica, no WAIT), mean of 2 runs',
            value: Math.round(basePerS),
          },
        },
        {
          name: 'cluster.redis_cmds_per_share',
          value: Number(cmds.toFixed(4)),
          unit: 'commands/share (all masters)',
          higherIsBetter: false,
          baseline: { name: 'the same load on a single Redis', value: Number(baseCmds.toFixed(4)) },
          target: `<= ${CMDS_TARGET}`,
          met: cmds <= CMDS_TARGET,
        },
        {
          // What one share costs the Redis side: a master's share capacity is about 1e6 / this.
          name: 'cluster.redis_cpu_us_per_share',
          value: Number(cpu.toFixed(2)),
          unit: 'us of Redis CPU per share (all masters, INFO cpu)',
          higherIsBetter: false,
          baseline: { name: 'the same load on a single Redis', value: Number(baseCpu.toFixed(2)) },
        },
      ];
    } finally {
      singleRedis.disconnect();
      clusterRedis?.disconnect();
      await Promise.all([single.stop(), cluster?.stop()]);
    }
  },
};

type Run = Awaited<ReturnType<typeof measureReporterShares>>;

/** One measured run on fresh keys (its own prefix: spool sequence numbers start again at 0). */
function once(ctx: BenchContext, redis: RedisClient, kind: string, i: number, seconds: number): Promise<Run> {
  return measureReporterShares(ctx, redis, {
    chain: CHAIN,
    prefix: `bench${i}:`,
    seconds,
    label: `cluster: run ${i + 1}/4 on ${kind === 'single' ? 'a single Redis' : `the ${MASTERS}+${MASTERS * REPLICAS} Cluster`}`,
    reporterId: `bench-reporter-${i}`,
  });
}
