import { randomBytes } from 'node:crypto';
import { type JobManager, blocknotifyCommand, createJobManager } from '@hashwire/jobmanager';
import { type Job, type RpcMethods, type RpcPushes, createKeyBuilder } from '@hashwire/protocol';
import { type RedisClient, connectRedis } from '@hashwire/registry';
import { type RpcClient, createRpcClient } from '@hashwire/rpc';
import {
  type LitecoinRegtest,
  type RedisServer,
  startLitecoinRegtest,
  startRedis,
  waitFor,
} from '@hashwire/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const CHAIN = 'litecoin-regtest';
const keys = createKeyBuilder({ prefix: `bn${randomBytes(4).toString('hex')}:` });
let redisServer: RedisServer;
let redis: RedisClient;
let ltc: LitecoinRegtest;
let jm: JobManager;
let client: RpcClient<RpcMethods, RpcPushes>;
const jobs: Job[] = [];

beforeAll(async () => {
  redisServer = await startRedis();
  redis = connectRedis(redisServer.url);
  // The daemons run the command an operator gets from `hashwire render blocknotify`.
  const command = blocknotifyCommand(redisServer.url, keys.blocknotifyChannel(CHAIN));
  ltc = await startLitecoinRegtest({
    nodes: 2,
    blocknotify: false,
    extraArgs: () => [`-blocknotify=${command}`],
  });
  const payout = await ltc.rpc[0]!.call<string>('getnewaddress', ['', 'bech32']);
  jm = await createJobManager({
    id: 'jm-bn',
    coin: 'litecoin',
    network: 'regtest',
    daemons: [{ url: ltc.nodes[0]!.rpcUrl, cookieFile: ltc.nodes[0]!.cookieFile }],
    payouts: [{ address: payout }],
    redis,
    keys,
    blocknotify: true,
    // No long poll and a poll too slow to matter: a new block can only come from blocknotify.
    longpoll: false,
    pollIntervalMs: 600_000,
    refreshIntervalMs: 600_000,
    // The only member, it leads from its start, and a lease no stall of this process outlasts
    // keeps it leading: with 600 ms, an event-loop stall of 0.4 s (0.4-0.75 s are seen in a
    // jobmanager test on a loaded machine) lapsed the lease, and the re-elected leader published
    // its job again, a job no block asked for.
    leaseTtlMs: 60_000,
    // The default rpc heartbeat: with 100 ms, a client takes the jobmanager (in this very
    // process) for gone after 300 ms without a word, which a loaded machine's event loop exceeds.
    heartbeatIntervalMs: 1000,
  });
  await waitFor(() => jm.leadership.isLeader(), { timeoutMs: 5000, what: 'the jobmanager to lead' });
  client = createRpcClient<RpcMethods, RpcPushes>(jm.endpoint, { heartbeatIntervalMs: 1000 });
  client.onPush('job', (job) => jobs.push(job));
  const reply = await client.subscribe('jm.subscribe', { stratumId: 's-bn', chain: CHAIN });
  if (reply.job) jobs.push(reply.job);
  await waitFor(() => jobs[0], { timeoutMs: 5000, what: 'a first job' });
}, 60_000);

afterAll(async () => {
  await client?.close();
  await jm?.close();
  redis?.disconnect();
  await Promise.all([ltc?.stop(), redisServer?.stop()]);
});

describe('blocknotify through Redis', () => {
  it('a block found elsewhere reaches the jobmanager through the daemon’s -blocknotify, as a clean job', async () => {
    const before = jobs.at(-1)!;
    expect(jm.blocknotifyChannel).toBe(keys.blocknotifyChannel(CHAIN));
    // Mined by the other node: node0 hears of it from its peer and runs -blocknotify.
    const [hash] = await ltc.mine(1, 1);
    const next = await waitFor(() => jobs.find((j) => j.height === before.height + 1), {
      timeoutMs: 10_000,
      what: 'a job on the new block (blocknotify is the only way it can come this soon)',
    });
    expect(next.cleanJobs).toBe(true);
    expect(next.prevhash).not.toBe(before.prevhash);
    expect(jm.stats().blocknotify).toMatchObject({ channel: keys.blocknotifyChannel(CHAIN) });
    expect(jm.stats().blocknotify!.received).toBeGreaterThanOrEqual(1);
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('ignores and counts a message on the channel that is not a block hash', async () => {
    const ignored = jm.stats().blocknotify!.ignored;
    const published = jobs.length;
    await redis.publish(keys.blocknotifyChannel(CHAIN), 'not a block hash; rm -rf /');
    await waitFor(() => jm.stats().blocknotify!.ignored === ignored + 1, {
      timeoutMs: 5000,
      what: 'the stray message to be counted',
    });
    expect(jobs.length).toBe(published);
  });
});

describe('blocknotifyCommand', () => {
  it('quotes the URL and channel for /bin/sh and names TLS', () => {
    expect(blocknotifyCommand('redis://127.0.0.1:6379', 'hw:ev:blocknotify:ltc')).toBe(
      "redis-cli -u 'redis://127.0.0.1:6379' PUBLISH 'hw:ev:blocknotify:ltc' %s",
    );
    expect(blocknotifyCommand("rediss://u:it's@r.example:6380/2", 'c')).toBe(
      "redis-cli --tls -u 'rediss://u:it'\\''s@r.example:6380/2' PUBLISH 'c' %s",
    );
    expect(() => blocknotifyCommand('http://x', 'c')).toThrow(/redis:\/\/ or rediss:\/\//);
  });
});
