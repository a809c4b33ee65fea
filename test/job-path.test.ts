import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { prevHashFromStratum } from '@hashwire/chain';
import { type JobManager, createJobManager } from '@hashwire/jobmanager';
import { type Job, createKeyBuilder } from '@hashwire/protocol';
import { type RedisClient, connectRedis } from '@hashwire/registry';
import { JobFeed } from '@hashwire/stratum';
import {
  type LitecoinRegtest,
  type RedisServer,
  grindNonce,
  startLitecoinRegtest,
  startRedis,
  waitFor,
} from '@hashwire/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

const jobmanagerBin = fileURLToPath(new URL('../packages/jobmanager/dist/bin.js', import.meta.url));
const CHAIN = 'litecoin-regtest';

let ltc: LitecoinRegtest;
let redisServer: RedisServer;
let redis: RedisClient;
let payout: string;
const cleanups: (() => Promise<unknown> | unknown)[] = [];

beforeAll(async () => {
  [ltc, redisServer] = await Promise.all([startLitecoinRegtest({ nodes: 2 }), startRedis()]);
  redis = connectRedis(redisServer.url);
  payout = await ltc.rpc[0]!.call<string>('getnewaddress', ['', 'bech32']);
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
afterAll(async () => {
  redis?.disconnect();
  await Promise.all([ltc?.stop(), redisServer?.stop()]);
});

function config(id: string, prefix: string) {
  return {
    id,
    coin: 'litecoin',
    network: 'regtest',
    daemons: ltc.nodes.map((n) => ({ url: n.rpcUrl, cookieFile: n.cookieFile })),
    payouts: [{ address: payout }],
    leaseTtlMs: 1000,
    heartbeatIntervalMs: 100,
    pollIntervalMs: 100,
    serviceTtlMs: 1500,
  };
}

/** A jobmanager in its own process, so it can be SIGKILLed or frozen. */
async function spawnJobmanager(id: string, prefix: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [jobmanagerBin], {
    env: {
      ...process.env,
      HASHWIRE_JOBMANAGER_CONFIG: JSON.stringify({
        ...config(id, prefix),
        redisUrl: redisServer.url,
        keyPrefix: prefix,
      }),
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  cleanups.push(() => {
    child.kill('SIGCONT');
    child.kill('SIGKILL');
  });
  const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
  expect(JSON.parse(line)).toMatchObject({ ready: true, id });
  return child;
}

async function inProcess(
  id: string,
  prefix: string,
  extra: Record<string, unknown> = {},
): Promise<JobManager> {
  const jm = await createJobManager({
    ...config(id, prefix),
    ...extra,
    redis,
    keys: createKeyBuilder({ prefix }),
  });
  cleanups.push(() => jm.close());
  return jm;
}

async function feed(prefix: string): Promise<{ feed: JobFeed; jobs: Job[] }> {
  const f = new JobFeed({
    redis,
    keys: createKeyBuilder({ prefix }),
    chain: CHAIN,
    stratumId: 's1',
    heartbeatIntervalMs: 100,
    reconcileMs: 100,
  });
  cleanups.push(() => f.close());
  const jobs: Job[] = [];
  f.onJob((j) => jobs.push(j));
  await f.start();
  return { feed: f, jobs };
}

describe('jobs from a jobmanager group to a stratum server', () => {
  it('SIGKILL of the leader: a standby publishes under a higher epoch and blocks on the dead leader’s jobs still go in', async () => {
    const prefix = `t${randomBytes(4).toString('hex')}:`;
    const leader = await spawnJobmanager('jm-child', prefix);
    const { feed: f, jobs } = await feed(prefix);
    await waitFor(() => jobs.find((j) => j.jmId === 'jm-child'), {
      timeoutMs: 10_000,
      what: 'a job from the child',
    });
    const standby = await inProcess('jm-standby', prefix);
    await waitFor(() => f.connected().length === 2, { timeoutMs: 5000, what: 'the feed to reach both' });
    // The dead leader's newest job: the one its miners are working on.
    const oldJob = jobs.findLast((j) => j.jmId === 'jm-child')!;

    leader.kill('SIGKILL');
    await waitFor(() => jobs.find((j) => j.jmId === 'jm-standby'), {
      timeoutMs: 10_000,
      what: 'the standby’s first job',
    });
    const newJob = jobs.find((j) => j.jmId === 'jm-standby')!;
    expect(newJob.epoch).toBeGreaterThan(oldJob.epoch);
    // Same block: miners keep their work, nothing thrown away.
    expect(newJob.cleanJobs).toBe(false);
    expect(standby.leadership.isLeader()).toBe(true);

    // A block found on the dead leader's job: assembled by the standby from Redis and accepted.
    const en1 = Buffer.from('01020304', 'hex');
    const en2 = Buffer.from('00000007', 'hex');
    const reply = await f.submitBlock({
      chain: CHAIN,
      jobId: oldJob.jobId,
      extranonce1: en1.toString('hex'),
      extranonce2: en2.toString('hex'),
      ntime: oldJob.ntime,
      nonce: grindNonce(oldJob, en1, en2),
      version: oldJob.version,
      shareId: 'sh-1',
    });
    expect(reply.accepted, `the daemon's answer: ${JSON.stringify(reply)}`).toBe(true);
    await waitFor(async () => (await ltc.rpc[0]!.getBestBlockHash()) === reply.hash, {
      timeoutMs: 5000,
      what: 'the tip',
    });
  });

  it('a leader frozen with SIGSTOP and woken after the takeover gets no job through', async () => {
    const prefix = `t${randomBytes(4).toString('hex')}:`;
    const frozen = await spawnJobmanager('jm-frozen', prefix);
    const { feed: f, jobs } = await feed(prefix);
    await waitFor(() => jobs.find((j) => j.jmId === 'jm-frozen'), {
      timeoutMs: 10_000,
      what: 'a job from the leader',
    });
    await inProcess('jm-live', prefix);
    await waitFor(() => f.connected().length === 2, { timeoutMs: 5000, what: 'the feed to reach both' });

    frozen.kill('SIGSTOP');
    await waitFor(() => jobs.find((j) => j.jmId === 'jm-live'), { timeoutMs: 10_000, what: 'the takeover' });
    const takeoverEpoch = jobs.find((j) => j.jmId === 'jm-live')!.epoch;
    frozen.kill('SIGCONT');
    // A new block: the woken process sees it too and would publish if it believed it led.
    const [hash] = await ltc.mine(1, 1);
    await waitFor(
      () =>
        jobs.find((j) => j.prevhash && prevHashFromStratum(j.prevhash).reverse().toString('hex') === hash),
      {
        timeoutMs: 10_000,
        what: 'the job for the new block',
      },
    );
    const afterTakeover = jobs.slice(jobs.findIndex((j) => j.jmId === 'jm-live'));
    expect(afterTakeover.every((j) => j.jmId === 'jm-live' && j.epoch >= takeoverEpoch)).toBe(true);
  });

  it('a stratum server that subscribes late learns the jobs miners may still work on, not only the current one', async () => {
    const prefix = `t${randomBytes(4).toString('hex')}:`;
    // The leader refreshes for new transactions every 200 ms: each new one in the mempool makes
    // a job on the same block (clean_jobs false), and the jobs before it stay valid work.
    await inProcess('jm-leader', prefix, { refreshIntervalMs: 200 });
    const early = await feed(prefix);
    await waitFor(() => early.jobs.length > 0, { timeoutMs: 10_000, what: 'a first job' });
    const node = ltc.rpc[0]!;
    for (let i = 0; i < 2; i++) {
      const seen = early.jobs.length;
      await node.call('sendtoaddress', [await node.call<string>('getnewaddress', ['', 'bech32']), 0.5]);
      await waitFor(() => early.jobs.slice(seen).some((j) => !j.cleanJobs), {
        timeoutMs: 10_000,
        what: 'a job on the same block with the new transaction',
      });
    }
    const sinceClean = early.jobs.slice(early.jobs.findLastIndex((j) => j.cleanJobs));
    expect(sinceClean.length).toBeGreaterThanOrEqual(3);
    // A server started now (a restart, an upgrade's new worker) gets them all, the current last.
    const late = await feed(prefix);
    await waitFor(() => late.jobs.length >= sinceClean.length, {
      timeoutMs: 10_000,
      what: 'the late feed’s jobs',
    });
    // (A job published meanwhile comes after them.)
    expect(late.jobs.slice(0, sinceClean.length).map((j) => j.jobId)).toEqual(sinceClean.map((j) => j.jobId));
  }, 60_000);
});
