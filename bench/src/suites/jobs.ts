import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { getChainParams } from '@hashwire/chain';
import { type Job, createKeyBuilder } from '@hashwire/protocol';
import { connectRedis } from '@hashwire/registry';
import { JobFeed, createStratumServer } from '@hashwire/stratum';
import { startLitecoinRegtest, startRedis, waitFor } from '@hashwire/testkit';
import { startBenchChild } from '../child-ipc.js';
import { percentile } from '../measure.js';
import type { BenchSuite } from '../types.js';

const CHAIN = 'litecoin-regtest';

/**
 * The job path around leadership changes, with jobmanagers as real processes and a stratum
 * server's JobFeed as the receiver: SIGKILL of the leader → first job of the new epoch
 * (`jobs.failover_gap_ms`, default 2 s lease), planned handover (SIGTERM → drain) → first job
 * of the new epoch (`jobs.handover_gap_ms`), and as the same-run reference the normal path,
 * a block mined on the other litecoind node → its job at the feed.
 */
export const jobsSuite: BenchSuite = {
  name: 'jobs',
  description: 'job path: new block, leader failover and planned handover',
  async run(ctx) {
    const rounds = ctx.quick ? 1 : 5;
    const bin = createRequire(import.meta.url)
      .resolve('@hashwire/jobmanager')
      .replace(/index\.js$/, 'bin.js');
    const [ltc, redisServer] = await Promise.all([startLitecoinRegtest({ nodes: 2 }), startRedis()]);
    const redis = connectRedis(redisServer.url, 'bench');
    const children = new Set<ChildProcess>();
    const payout = await ltc.rpc[0]!.call<string>('getnewaddress', ['', 'bech32']);
    const failover: number[] = [];
    const handover: number[] = [];
    const blockToJob: number[] = [];
    const blockToNotify: number[] = [];
    const blockToNotify10k: number[] = [];
    const spawnJobmanager = async (prefix: string, id: string) => {
      const config = {
        id,
        coin: 'litecoin',
        network: 'regtest',
        daemons: ltc.nodes.map((n) => ({ url: n.rpcUrl, cookieFile: n.cookieFile })),
        payouts: [{ address: payout }],
        redisUrl: redisServer.url,
        keyPrefix: prefix,
        heartbeatIntervalMs: 250,
      };
      const child = spawn(process.execPath, [bin], {
        env: { ...process.env, HASHWIRE_JOBMANAGER_CONFIG: JSON.stringify(config) },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      children.add(child);
      await once(createInterface({ input: child.stdout! }), 'line');
      return child;
    };
    try {
      for (let round = 0; round < rounds; round++) {
        ctx.log(`jobs: round ${round + 1}/${rounds}`);
        const prefix = `b${randomBytes(4).toString('hex')}:`;
        const spawnJm = (id: string) => spawnJobmanager(prefix, id);
        const feed = new JobFeed({
          redis,
          keys: createKeyBuilder({ prefix }),
          chain: CHAIN,
          stratumId: 'bench',
          heartbeatIntervalMs: 250,
          reconcileMs: 250,
        });
        const jobs: { job: Job; at: number }[] = [];
        feed.onJob((job) => jobs.push({ job, at: performance.now() }));
        await feed.start();
        const firstJobAfter = (from: number, match: (j: Job) => boolean) =>
          waitFor(() => jobs.find((j) => j.at >= from && match(j.job)), {
            timeoutMs: 20_000,
            intervalMs: 5,
            what: 'a job',
          });

        const a = await spawnJm('jm-a');
        await firstJobAfter(0, (j) => j.jmId === 'jm-a');
        const b = await spawnJm('jm-b');
        await waitFor(() => feed.connected().length === 2, { timeoutMs: 10_000, what: 'both jobmanagers' });

        // Reference: a new block on the other node reaches the feed as a clean job.
        let start = performance.now();
        await ltc.mine(1, 1);
        const fresh = await firstJobAfter(start, (j) => j.cleanJobs);
        blockToJob.push(fresh.at - start);

        const epochA = jobs.filter((j) => j.job.jmId === 'jm-a').at(-1)!.job.epoch;
        start = performance.now();
        a.kill('SIGKILL');
        const taken = await firstJobAfter(start, (j) => j.epoch > epochA);
        failover.push(taken.at - start);

        const c = await spawnJm('jm-c');
        await waitFor(() => feed.connected().includes('jm-c'), {
          timeoutMs: 10_000,
          what: 'the new standby',
        });
        start = performance.now();
        b.kill('SIGTERM'); // drains: hands the lease to jm-c
        const handed = await firstJobAfter(start, (j) => j.epoch > taken.job.epoch);
        handover.push(handed.at - start);

        await feed.close();
        for (const child of [b, c]) child.kill('SIGKILL');
      }
      ctx.log('jobs: block → notify at 1,000 sessions');
      blockToNotify.push(
        ...(await blockToNotifyRounds(ltc, redisServer.url, spawnJobmanager, ctx.quick ? 2 : 10, 1000)),
      );
      if (!ctx.quick) {
        ctx.log('jobs: block → notify at 10,000 sessions');
        blockToNotify10k.push(
          ...(await blockToNotifyRounds(ltc, redisServer.url, spawnJobmanager, 10, 10_000)),
        );
      }
    } finally {
      for (const child of children) child.kill('SIGKILL');
      redis.disconnect();
      await Promise.all([ltc.stop(), redisServer.stop()]);
    }
    const ms = (v: number) => Number(v.toFixed(1));
    const blockRef = { name: 'new block → job at the feed, p99', value: ms(percentile(blockToJob, 99)) };
    return [
      {
        name: 'jobs.block_to_notify_p99_ms',
        value: ms(percentile(blockToNotify, 99)),
        unit: `ms (1,000 sessions, ${blockToNotify.length} blocks)`,
        higherIsBetter: false,
        baseline: blockRef,
        target: '< 50 ms',
        met: percentile(blockToNotify, 99) < 50,
      },
      ...(blockToNotify10k.length > 0
        ? [
            {
              name: 'jobs.block_to_notify_10k_p99_ms',
              value: ms(percentile(blockToNotify10k, 99)),
              unit: `ms (10,000 sessions, ${blockToNotify10k.length} blocks)`,
              higherIsBetter: false,
              baseline: blockRef,
            },
          ]
        : []),
      {
        name: 'jobs.failover_gap_ms',
        value: ms(percentile(failover, 99)),
        unit: `ms (max of ${rounds})`,
        higherIsBetter: false,
        baseline: blockRef,
        target: '< 3000 ms',
        met: percentile(failover, 99) < 3000,
      },
      {
        name: 'jobs.handover_gap_ms',
        value: ms(percentile(handover, 99)),
        unit: `ms (max of ${rounds})`,
        higherIsBetter: false,
        baseline: blockRef,
        target: '< 200 ms',
        met: percentile(handover, 99) < 200,
      },
    ];
  },
};

/**
 * A block mined on the other litecoind node → the last of `sessions` stratum sessions holding
 * the new clean `mining.notify`: daemon long poll → jobmanager → push → stratum server (in this
 * process) → every socket. The sessions are bare sockets in a child process (10,000 of them
 * would not fit this process's file descriptors next to the server's); both sides stamp times
 * on the shared epoch clock.
 */
async function blockToNotifyRounds(
  ltc: Awaited<ReturnType<typeof startLitecoinRegtest>>,
  redisUrl: string,
  spawnJobmanager: (prefix: string, id: string) => Promise<ChildProcess>,
  rounds: number,
  sessions: number,
): Promise<number[]> {
  const prefix = `b${randomBytes(4).toString('hex')}:`;
  const keys = createKeyBuilder({ prefix });
  const redis = connectRedis(redisUrl, 'bench-notify');
  const jm = await spawnJobmanager(prefix, 'jm-notify');
  const feed = new JobFeed({ redis, keys, chain: CHAIN, stratumId: 'bench', heartbeatIntervalMs: 250 });
  await feed.start();
  const spoolDir = mkdtempSync(join(tmpdir(), 'hw-bench-spool-'));
  const server = await createStratumServer({
    id: 'bench-stratum',
    chain: CHAIN,
    params: getChainParams('litecoin', 'regtest'),
    host: '127.0.0.1',
    port: 0,
    redis,
    keys,
    jobs: feed,
    blockSink: feed,
    spoolDir,
    limits: { maxConnectionsPerIp: 0 },
    vardiff: { enabled: false },
  });
  const miners = startBenchChild('stratum-session-child');
  const results: number[] = [];
  try {
    await waitFor(() => feed.current(), { timeoutMs: 15_000, what: 'a first job' });
    await server.start();
    const address = await ltc.rpc[1]!.call<string>('getnewaddress', ['', 'bech32']);
    await miners.request('open', { port: server.port, sessions, concurrency: 200, address });
    for (let round = 0; round < rounds; round++) {
      await miners.request('armClean');
      const start = performance.timeOrigin + performance.now();
      await ltc.mine(1, 1);
      const last = await miners.request<number>('collectClean');
      results.push(last - start);
      await ltc.sync();
    }
  } finally {
    await miners.close();
    await server.close();
    await feed.close();
    jm.kill('SIGKILL');
    redis.disconnect();
    rmSync(spoolDir, { recursive: true, force: true });
  }
  return results;
}
