import { randomBytes, randomUUID } from 'node:crypto';
import { createLogger } from '@hashwire/core';
import { type RpcMethods, type Share, type ShareResult, createKeyBuilder } from '@hashwire/protocol';
import type { RedisClient } from '@hashwire/registry';
import { createReporter } from '@hashwire/reporter';
import { type RpcClient, createRpcClient } from '@hashwire/rpc';
import type { BenchContext } from './types.js';

/** Four stratum servers, each sending 2,500-share batches (a second of 2,500 shares/s each). */
export const STRATUM_SERVERS = 4;
export const SHARES_PER_BATCH = 2500;
const BATCHES_IN_FLIGHT_PER_SERVER = 2;
/** 1,000 workers in 250 accounts; HAProxy's source hash gives each server its own quarter. */
const ACCOUNTS = 250;
const WORKERS_PER_ACCOUNT = 4;

/** `count` distinct share lists of stratum server `server` (its quarter of the accounts). */
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

/**
 * Commands Redis ran so far (INFO commandstats, INFO itself left out), summed over every
 * master of a Cluster: what the share store did, wherever the slots live.
 */
export async function commandCalls(redis: RedisClient): Promise<number> {
  const nodes = 'nodes' in redis ? redis.nodes('master') : [redis];
  let calls = 0;
  for (const node of nodes) {
    const text = (await node.info('commandstats')) as string;
    for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm))
      if (m[1] !== 'info') calls += Number(m[2]);
  }
  return calls;
}

/**
 * CPU seconds Redis used so far (INFO cpu, user + system, main thread and all), summed over every
 * master of a Cluster.
 */
export async function redisCpuSeconds(redis: RedisClient): Promise<number> {
  const nodes = 'nodes' in redis ? redis.nodes('master') : [redis];
  let seconds = 0;
  for (const node of nodes) {
    const text = (await node.info('cpu')) as string;
    for (const m of text.matchAll(/^used_cpu_(?:sys|user):([\d.]+)/gm)) seconds += Number(m[1]);
  }
  return seconds;
}

export interface ReporterShareLoad {
  /** Shares credited per second, sustained, every server keeping batches in flight. */
  perS: number;
  /** Redis commands per share in the measured window. */
  cmdsPerShare: number;
  /** Redis CPU (all masters) per share in the measured window, microseconds. */
  redisCpuUsPerShare: number;
  /** The share lists sent, per stratum server (for a baseline that writes the same shares). */
  pools: Share[][][];
}

/**
 * Share batches from four stratum servers through a real reporter's RPC (`reporter.shares`,
 * one sub-batch per request, two requests in flight per server) into `redis`: a warm-up, then
 * `seconds` measured, with the commands Redis ran meanwhile counted by `commandCalls`.
 */
export async function measureReporterShares(
  ctx: BenchContext,
  redis: RedisClient,
  options: {
    chain: string;
    prefix: string;
    seconds: number;
    label: string;
    reporterId: string;
    /** Write the PPLNS share window with each credit (payouts). @defaultValue false */
    shareWindow?: boolean;
  },
): Promise<ReporterShareLoad> {
  const { chain, seconds, label } = options;
  const keys = createKeyBuilder({ prefix: options.prefix });
  const reporter = await createReporter({
    id: options.reporterId,
    chain,
    redis,
    keys,
    logger: createLogger({ name: 'reporter', level: 'warn' }),
    blockPollMs: 3_600_000,
    shareWindow: options.shareWindow === true,
  });
  const clients: RpcClient<RpcMethods>[] = [];
  try {
    await reporter.start();
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
              chain,
              floor: Math.max(0, seq - 64),
              subs: [{ seq, id: `${randomUUID()}:0`, shares: shareList }],
            },
            { timeoutMs: 30_000 },
          );
          const outcome = reply.subs[0];
          if (outcome?.status !== 'credited' || outcome.credited === 0)
            throw new Error(`bench (${label}): a batch was credited nothing`);
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
      `${label}: warm-up, then ${seconds}s of ${STRATUM_SERVERS} stratum servers × ${SHARES_PER_BATCH}-share batches`,
    );
    await run(performance.now() + Math.min(500, seconds * 300));
    const before = await commandCalls(redis);
    const cpuBefore = await redisCpuSeconds(redis);
    const e2e = await run(performance.now() + seconds * 1000);
    const cpu = (await redisCpuSeconds(redis)) - cpuBefore;
    const cmds = (await commandCalls(redis)) - before;
    const result = {
      perS: e2e.shares / e2e.elapsedS,
      cmdsPerShare: cmds / e2e.shares,
      redisCpuUsPerShare: (cpu * 1e6) / e2e.shares,
      pools,
    };
    ctx.log(
      `${label}: ${Math.round(result.perS)} shares/s, ${result.cmdsPerShare.toFixed(4)} Redis commands and ${result.redisCpuUsPerShare.toFixed(2)} us of Redis CPU per share`,
    );
    return result;
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await reporter.close();
  }
}
