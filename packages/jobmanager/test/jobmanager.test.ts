import { randomBytes } from 'node:crypto';
import {
  addressToScript,
  getChainParams,
  prevHashFromStratum,
  soloCoinb2,
  soloFeeSat,
} from '@hashwire/chain';
import { ConfigError, type JobManager, type JobManagerOptions, createJobManager } from '@hashwire/jobmanager';
import {
  type Job,
  type KeyBuilder,
  type RpcMethods,
  type RpcPushes,
  createKeyBuilder,
} from '@hashwire/protocol';
import { type RedisClient, connectRedis, getService } from '@hashwire/registry';
import { type RpcClient, createRpcClient } from '@hashwire/rpc';
import {
  type LitecoinRegtest,
  type RedisServer,
  grindNonce,
  startLitecoinRegtest,
  startRedis,
  waitFor,
} from '@hashwire/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

const params = getChainParams('litecoin', 'regtest');
/**
 * The rpc heartbeat of the jobmanagers and their clients: the default. With 100 ms, a client
 * took the jobmanager (in this very process) for gone after 300 ms without a word, which a
 * loaded machine's event loop exceeds: 'jm.submitBlock: connection to server lost'.
 */
const HEARTBEAT_MS = 1000;
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

function baseOptions(id: string, keys = createKeyBuilder({ prefix: `t${randomBytes(4).toString('hex')}:` })) {
  return {
    id,
    coin: 'litecoin',
    network: 'regtest',
    daemons: ltc.nodes.slice(0, 1).map((n) => ({ url: n.rpcUrl, cookieFile: n.cookieFile })),
    payouts: [{ address: payout }],
    redis,
    keys,
    // Who leads is decided at the start (the first to start takes the free lease) and changes
    // only by close, drain or handover, never by a stall: with 600 ms, event-loop stalls of
    // 0.4-0.75 s on a loaded machine lapsed the leader's lease mid-test (it re-published as a
    // new leader, or a standby took over). The takeover test sets a short one of its own.
    leaseTtlMs: 60_000,
    heartbeatIntervalMs: HEARTBEAT_MS,
    pollIntervalMs: 100,
  } satisfies JobManagerOptions;
}

async function start(options: JobManagerOptions): Promise<JobManager> {
  const jm = await createJobManager(options);
  cleanups.push(() => jm.close());
  return jm;
}

/** A stratum server's side of the wire: subscribe, collect pushed jobs. */
async function subscriber(endpoint: string) {
  const client: RpcClient<RpcMethods, RpcPushes> = createRpcClient<RpcMethods, RpcPushes>(endpoint, {
    heartbeatIntervalMs: HEARTBEAT_MS,
  });
  cleanups.push(() => client.close());
  const jobs: Job[] = [];
  client.onPush('job', (job) => jobs.push(job));
  const reply = (await client.subscribe('jm.subscribe', { stratumId: 's1', chain: 'litecoin-regtest' })) as {
    job: Job | null;
  };
  // A leader elected a moment ago may still be publishing its first job: then it comes as a push.
  const first = reply.job ?? (await waitFor(() => jobs[0], { timeoutMs: 5000, what: 'a first job' }));
  return { client, jobs, first };
}

/** `hashwire_leader`, `hashwire_lease_epoch` and `hashwire_draining` from a jobmanager's /metrics. */
async function leaseGauges(keys: KeyBuilder, id: string) {
  const info = await getService(redis, keys, 'jobmanager', id);
  const text = await (await fetch(`${info!.http}/metrics`)).text();
  const gauge = (name: string) => Number(new RegExp(`^${name}\\{[^}]*\\} (\\S+)$`, 'm').exec(text)?.[1]);
  return {
    leader: gauge('hashwire_leader'),
    epoch: gauge('hashwire_lease_epoch'),
    draining: gauge('hashwire_draining'),
  };
}

/** The block record in Redis once it reached `state` (records are written after the daemons answered). */
async function blockRecord(keys: KeyBuilder, hash: string, state: string): Promise<Record<string, unknown>> {
  return waitFor(
    async () => {
      const text = await redis.hget(keys.blocks('litecoin-regtest'), hash);
      const record = text ? (JSON.parse(text) as Record<string, unknown>) : undefined;
      const events = await redis.xrange(keys.events('litecoin-regtest'), '-', '+');
      const written = events.some(([, f]) => f[f.indexOf('type') + 1] === `block.${state}`);
      return record?.state === state && written ? record : undefined;
    },
    { timeoutMs: 5000, what: `the ${state} record of block ${hash}` },
  );
}

/** The `jm.submitBlock` a miner with these extranonces (hex) sends for `job`, its nonce ground to meet the target (or to miss it). */
function blockSubmission(
  job: Job,
  extranonce1: string,
  extranonce2: string,
  shareId: string,
  options: { meetsTarget?: boolean } = {},
): RpcMethods['jm.submitBlock']['req'] {
  const nonce = grindNonce(job, Buffer.from(extranonce1, 'hex'), Buffer.from(extranonce2, 'hex'), options);
  return {
    chain: 'litecoin-regtest',
    jobId: job.jobId,
    extranonce1,
    extranonce2,
    ntime: job.ntime,
    nonce,
    version: job.version,
    shareId,
  };
}

describe('jobmanager', () => {
  it('refuses bad config naming the field, before starting anything', async () => {
    const opts = baseOptions('jm-bad');
    await expect(
      createJobManager({ ...opts, payouts: [{ address: '1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2' }] }),
    ).rejects.toThrow(/^payouts\[0\]\.address: .*1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2.*litecoin regtest/);
    await expect(createJobManager({ ...opts, daemons: [] })).rejects.toThrow(ConfigError);
    await expect(createJobManager({ ...opts, daemons: [] })).rejects.toThrow(/^daemons: at least one daemon/);
    await expect(createJobManager({ ...opts, extranonce2Size: 0 })).rejects.toThrow(
      /^extranonce2Size: must be/,
    );
    await expect(
      createJobManager({ ...opts, daemons: [{ url: 'http://user:s3cret@127.0.0.1:1', timeoutMs: 500 }] }),
    ).rejects.toThrow(/no daemon answered getblocktemplate \(http:\/\/127\.0\.0\.1:1\/?\)/);
    await createJobManager({
      ...opts,
      daemons: [{ url: 'http://user:s3cret@127.0.0.1:1', timeoutMs: 500 }],
    }).catch((e: Error) => expect(e.message).not.toContain('s3cret'));
  });

  it('the leader pushes jobs; a new block on the other node makes a clean job at once; jobs are in Redis', async () => {
    const opts = baseOptions('jm-a');
    const a = await start(opts);
    const b = await start({ ...opts, id: 'jm-b' });
    await waitFor(() => a.leadership.isLeader() || b.leadership.isLeader(), {
      timeoutMs: 5000,
      what: 'a leader',
    });
    const leader = a.leadership.isLeader() ? a : b;
    const standby = leader === a ? b : a;
    const sub = await subscriber(leader.endpoint);
    expect(sub.first?.jmId).toBe(leader.id);
    expect(standby.currentJob()).toBeNull();

    const before = sub.first!;
    const [hash] = await ltc.mine(1, 1);
    await waitFor(() => sub.jobs.find((j) => j.height === before.height + 1), {
      timeoutMs: 10_000,
      what: 'the new job',
    });
    const job = sub.jobs.find((j) => j.height === before.height + 1)!;
    expect(job.cleanJobs).toBe(true);
    expect(job.epoch).toBe(before.epoch);
    // prevhash is the new block, in stratum word order.
    expect(prevHashFromStratum(job.prevhash).reverse().toString('hex')).toBe(hash);
    expect(await redis.exists(opts.keys.job('litecoin-regtest', job.jobId))).toBe(1);

    // Its HTTP face, found through discovery: healthy, stats, and the job push timing in /metrics.
    const http = await redis.hget(opts.keys.service('jobmanager', leader.id), 'http');
    expect(http).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect((await fetch(`${http}/healthz`)).status).toBe(200);
    expect(await (await fetch(`${http}/stats`)).json()).toMatchObject({
      id: leader.id,
      leader: true,
      healthy: true,
    });
    const metrics = await (await fetch(`${http}/metrics`)).text();
    const pushes = /^hashwire_job_push_seconds_count\{[^}]*\} (\d+)$/m.exec(metrics);
    expect(Number(pushes?.[1])).toBeGreaterThanOrEqual(2);
  });

  it('refreshes the template on its interval: a job with the same prevhash and clean_jobs false', async () => {
    const jm = await start({ ...baseOptions('jm-refresh'), refreshIntervalMs: 300 });
    await waitFor(() => jm.leadership.isLeader(), { timeoutMs: 5000, what: 'a leader' });
    const sub = await subscriber(jm.endpoint);
    const refreshed = await waitFor(() => sub.jobs.find((j) => j.jobId !== sub.first!.jobId), {
      timeoutMs: 5000,
      what: 'a refreshed job',
    });
    expect(refreshed.prevhash).toBe(sub.first!.prevhash);
    expect(refreshed.cleanJobs).toBe(false);
  });

  it('a standby takes over when the leader goes, with a higher epoch, and keeps the same work when the block did not change', async () => {
    // A short lease: the standby retries every leaseTtlMs / 8, so it takes over at once.
    const opts = { ...baseOptions('jm-1'), leaseTtlMs: 600 };
    const first = await start(opts);
    await waitFor(() => first.leadership.isLeader(), { timeoutMs: 5000, what: 'jm-1 to lead' });
    // Read while jm-1 leads for sure: a stall past the short lease may hand it to jm-2 before
    // the close, under a higher epoch still.
    const epoch = first.leadership.epoch!;
    const second = await start({ ...opts, id: 'jm-2' });
    const sub = await subscriber(second.endpoint);
    await first.close(); // gone: no handover
    await waitFor(() => sub.jobs.find((j) => j.jmId === 'jm-2'), {
      timeoutMs: 5000,
      what: 'a job from jm-2',
    });
    const job = sub.jobs.find((j) => j.jmId === 'jm-2')!;
    expect(job.epoch).toBeGreaterThan(epoch);
    expect(job.cleanJobs).toBe(false);
  });

  it('a planned drain hands over to a standby, which publishes at once', async () => {
    const opts = { ...baseOptions('jm-x'), leaseTtlMs: 60_000 };
    const x = await start(opts);
    await waitFor(() => x.leadership.isLeader(), { timeoutMs: 5000, what: 'jm-x to lead' });
    const y = await start({ ...opts, id: 'jm-y' });
    const sub = await subscriber(y.endpoint);
    // What a dashboard sees: the leader's gauge and epoch, the standby at 0.
    const xEpoch = x.leadership.epoch!;
    expect(await leaseGauges(opts.keys, 'jm-x')).toEqual({ leader: 1, epoch: xEpoch, draining: 0 });
    expect(await leaseGauges(opts.keys, 'jm-y')).toEqual({ leader: 0, epoch: 0, draining: 0 });
    const started = Date.now();
    await x.drain();
    // With a 60 s lease only the handover can make jm-y leader this soon.
    await waitFor(() => sub.jobs.find((j) => j.jmId === 'jm-y'), {
      timeoutMs: 5000,
      what: 'a job from jm-y',
    });
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(sub.jobs.find((j) => j.jmId === 'jm-y')!.cleanJobs).toBe(false);
    const yGauges = await leaseGauges(opts.keys, 'jm-y');
    expect(yGauges).toMatchObject({ leader: 1, draining: 0 });
    expect(yGauges.epoch).toBe(y.leadership.epoch);
    expect(yGauges.epoch).toBeGreaterThan(xEpoch);
    // The pool's event stream says so: jm-x up, draining, then down once drained (jm-y only up).
    const poolEvents = (await redis.xrange(opts.keys.poolEvents(), '-', '+')).map(([, fields]) => {
      const data = JSON.parse(fields[fields.indexOf('data') + 1]!) as { id: string; chain?: string };
      return [fields[fields.indexOf('type') + 1], data.id, data.chain];
    });
    expect(poolEvents).toEqual([
      ['service.jobmanager.up', 'jm-x', 'litecoin-regtest'],
      ['service.jobmanager.up', 'jm-y', 'litecoin-regtest'],
      ['service.jobmanager.draining', 'jm-x', 'litecoin-regtest'],
      ['service.jobmanager.down', 'jm-x', 'litecoin-regtest'],
    ]);
  });

  it('a block built on a parent that was no longer the tip is recorded stale, not orphaned, at once', async () => {
    const opts = {
      ...baseOptions('jm-race'),
      daemons: ltc.nodes.map((n) => ({ url: n.rpcUrl, cookieFile: n.cookieFile })),
    };
    const jm = await start(opts);
    await waitFor(() => jm.leadership.isLeader(), { timeoutMs: 5000, what: 'jm-race to lead' });
    const sub = await subscriber(jm.endpoint);
    const job = sub.jobs.at(-1) ?? sub.first!;
    // The sibling: another miner's block at the same height, on both daemons before ours is
    // submitted, so our parent is no longer the tip when it is.
    const [sibling] = await ltc.mine(1, 1);
    await waitFor(async () => (await ltc.rpc[0]!.getBestBlockHash()) === sibling, {
      timeoutMs: 5000,
      what: 'the sibling at both daemons',
    });
    const client = createRpcClient<RpcMethods>(jm.endpoint, { heartbeatIntervalMs: HEARTBEAT_MS });
    cleanups.push(() => client.close());
    const started = Date.now();
    const reply = await client.request(
      'jm.submitBlock',
      blockSubmission(job, '0a0b0c0e', '00000001', 'share-race'),
    );
    // Both daemons keep it as a side branch (submitblock: inconclusive; getchaintips:
    // valid-headers, never connected); the tips they had when it was submitted say why.
    expect(reply).toMatchObject({
      accepted: false,
      stale: true,
      reason: expect.stringContaining(
        `stale: its parent ${prevHashFromStratum(job.prevhash).reverse().toString('hex')} was no longer the tip (the daemons were at ${sibling})`,
      ),
    });
    expect(reply.orphaned).toBeUndefined();
    expect(Date.now() - started).toBeLessThan(2000); // not the 3 s wait for a block being connected
    expect(await ltc.rpc[0]!.getBestBlockHash()).toBe(sibling);
    // Its records are written after the answer (a block never waits on Redis).
    const record = await blockRecord(opts.keys, reply.hash, 'stale');
    expect(record).toMatchObject({ state: 'stale', shareId: 'share-race', reason: reply.reason });
  });

  it('SOLO: a block pays the finder’s payoutAddress, less the fee output; a payoutAddress of another chain is refused', async () => {
    const finder = await ltc.rpc[1]!.call<string>('getnewaddress', ['', 'bech32']);
    const feeAddress = await ltc.rpc[1]!.call<string>('getnewaddress', ['', 'legacy']);
    await expect(
      createJobManager({ ...baseOptions('jm-solo-bad'), solo: { feePercent: 1 } }),
    ).rejects.toThrow(/^solo\.feeAddress: /);
    const opts = { ...baseOptions('jm-solo'), solo: { feePercent: 2.5, feeAddress } };
    const jm = await start(opts);
    await waitFor(() => jm.leadership.isLeader(), { timeoutMs: 5000, what: 'the SOLO jobmanager to lead' });
    const job = (await subscriber(jm.endpoint)).first!;
    const solo = job.solo!;
    // What a stratum server sends the finder's sessions.
    const coinb2 = soloCoinb2(
      {
        head: Buffer.from(solo.coinb2Head, 'hex'),
        finderValueSat: solo.finderValueSat,
        tail: Buffer.from(solo.coinb2Tail, 'hex'),
      },
      addressToScript(finder, params),
    ).toString('hex');
    const minerJob = { ...job, coinb2 };
    const client = createRpcClient<RpcMethods>(jm.endpoint, { heartbeatIntervalMs: HEARTBEAT_MS });
    cleanups.push(() => client.close());
    await expect(
      client.request('jm.submitBlock', {
        ...blockSubmission(minerJob, '0a0b0c0e', '00000001', 'share-s0'),
        payoutAddress: 'ltc1qpyysjzgfpyysjzgfpyysjzgfpyysjzgf0asqjy',
      }),
    ).rejects.toThrow(/payoutAddress: .*expected litecoin regtest/);
    const reply = await client.request('jm.submitBlock', {
      ...blockSubmission(minerJob, '0a0b0c0e', '00000002', 'share-s1'),
      account: finder,
      worker: 'rig1',
      payoutAddress: finder,
    });
    expect(reply).toEqual({ accepted: true, hash: expect.stringMatching(/^[0-9a-f]{64}$/) });
    const block = await ltc.rpc[0]!.call<{
      tx: {
        vout: { value: number; scriptPubKey: { type: string; address?: string; addresses?: string[] } }[];
      }[];
    }>('getblock', [reply.hash, 2]);
    const paying = block.tx[0]!.vout.filter((o) => o.scriptPubKey.type !== 'nulldata');
    expect(paying.map((o) => o.scriptPubKey.address ?? o.scriptPubKey.addresses?.[0])).toEqual([
      finder,
      feeAddress,
    ]);
    const sat = (v: number) => Math.round(v * 1e8);
    const total = sat(paying[0]!.value) + sat(paying[1]!.value);
    expect(sat(paying[1]!.value)).toBe(soloFeeSat(total, 250));
    expect(sat(paying[0]!.value)).toBe(solo.finderValueSat);
    expect(await blockRecord(opts.keys, reply.hash, 'accepted')).toMatchObject({
      account: finder,
      payoutAddress: finder,
    });
  });

  it('any member submits a block for a job issued by another, even after the issuer is gone', async () => {
    const opts = {
      ...baseOptions('jm-issuer'),
      daemons: ltc.nodes.map((n) => ({ url: n.rpcUrl, cookieFile: n.cookieFile })),
    };
    const issuer = await start(opts);
    await waitFor(() => issuer.leadership.isLeader(), { timeoutMs: 5000, what: 'the issuer to lead' });
    const sub = await subscriber(issuer.endpoint);
    const job = sub.first!;
    const other = await start({ ...opts, id: 'jm-other' });
    await issuer.close();

    const client = createRpcClient<RpcMethods>(other.endpoint, { heartbeatIntervalMs: HEARTBEAT_MS });
    cleanups.push(() => client.close());
    const reply = await client.request('jm.submitBlock', {
      ...blockSubmission(job, '0a0b0c0d', '00000001', 'share-1'),
      account: 'finder-address',
      worker: 'rig1',
    });
    expect(reply).toEqual({ accepted: true, hash: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(await ltc.rpc[0]!.getBestBlockHash()).toBe(reply.hash);
    const record = await blockRecord(opts.keys, reply.hash, 'accepted');
    expect(record).toMatchObject({
      state: 'accepted',
      jobId: job.jobId,
      jmId: 'jm-other',
      shareId: 'share-1',
      account: 'finder-address',
      worker: 'rig1',
    });
    const events = await redis.xrange(opts.keys.events('litecoin-regtest'), '-', '+');
    const types = events.map(([, fields]) => fields[fields.indexOf('type') + 1]);
    expect(types).toEqual(expect.arrayContaining(['job.new', 'block.submitted', 'block.accepted']));
    // The finder is in every block event from the submission on: what `account.<addr>.*` watches match.
    const blockEvents = events
      .map(([, fields]) => ({
        type: fields[fields.indexOf('type') + 1]!,
        data: JSON.parse(fields[fields.indexOf('data') + 1]!) as Record<string, unknown>,
      }))
      .filter((e) => e.type.startsWith('block.') && e.data.hash === reply.hash);
    expect(blockEvents.map((e) => [e.type, e.data.account, e.data.worker])).toEqual([
      ['block.submitted', 'finder-address', 'rig1'],
      ['block.accepted', 'finder-address', 'rig1'],
    ]);

    // A share that does not meet the network target is not sent to the daemon.
    const weak = await client.request(
      'jm.submitBlock',
      blockSubmission(job, '0a0b0c0d', '00000002', 'share-2', { meetsTarget: false }),
    );
    expect(weak).toMatchObject({ accepted: false, reason: 'does not meet the network target' });
    expect(await ltc.rpc[0]!.getBestBlockHash()).toBe(reply.hash);
    await expect(
      client.request('jm.submitBlock', {
        ...{
          chain: 'litecoin-regtest',
          jobId: 'nope',
          extranonce1: '00',
          extranonce2: '00',
          ntime: '00',
          nonce: '00',
          version: '00',
          shareId: 'x',
        },
      }),
    ).rejects.toThrow(/job nope is unknown or expired/);
    // Every jm.submitBlock it handled is timed in its RPC latency histogram.
    const http = await redis.hget(opts.keys.service('jobmanager', 'jm-other'), 'http');
    const text = await (await fetch(`${http}/metrics`)).text();
    expect(text).toMatch(/^hashwire_rpc_seconds_count\{[^}]*method="jm\.submitBlock"[^}]*\} 3$/m);
    expect(text).toMatch(/^hashwire_blocks_total\{[^}]*state="accepted"[^}]*\} 1$/m);
  });
});

describe('jobmanager process', () => {
  it('exits 1 with one line naming the bad field when its config is invalid', async () => {
    const { spawnSync } = await import('node:child_process');
    const bin = new URL('../dist/bin.js', import.meta.url).pathname;
    const config = {
      ...baseOptions('jm-cli'),
      redis: undefined,
      keys: undefined,
      redisUrl: redisServer.url,
      payouts: [{ address: 'ltc1qnotanaddress' }],
    };
    const run = spawnSync(process.execPath, [bin], {
      env: { ...process.env, HASHWIRE_JOBMANAGER_CONFIG: JSON.stringify(config) },
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(run.status).toBe(1);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toMatch(/^jobmanager: payouts\[0\]\.address: .*ltc1qnotanaddress/);
  });
});
