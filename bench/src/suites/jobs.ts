import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';
import { type Job, createKeyBuilder } from '@hashwire/protocol';
import { connectRedis } from '@hashwire/registry';
import { JobFeed } from '@hashwire/stratum';
import { startLitecoinRegtest, startRedis, waitFor } from '@hashwire/testkit';
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
    try {
      for (let round = 0; round < rounds; round++) {
        ctx.log(`jobs: round ${round + 1}/${rounds}`);
        const prefix = `b${randomBytes(4).toString('hex')}:`;
        const spawnJm = async (id: string) => {
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
    } finally {
      for (const child of children) child.kill('SIGKILL');
      redis.disconnect();
      await Promise.all([ltc.stop(), redisServer.stop()]);
    }
    const ms = (v: number) => Number(v.toFixed(1));
    const blockRef = { name: 'new block → job at the feed, p99', value: ms(percentile(blockToJob, 99)) };
    return [
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
