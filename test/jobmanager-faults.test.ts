import { randomBytes } from 'node:crypto';
import { type Job, type RpcMethods, type RpcPushes, createKeyBuilder } from '@hashwire/protocol';
import { type RedisClient, connectRedis } from '@hashwire/registry';
import { type RpcClient, createRpcClient } from '@hashwire/rpc';
import {
  type LitecoinRegtest,
  type RedisServer,
  type RpcCounter,
  grindNonce,
  startLitecoinRegtest,
  startRedis,
  startRpcCounter,
  waitFor,
} from '@hashwire/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type ServiceProcess,
  killService,
  regtestJobmanagerConfig,
  spawnService,
} from './service-process.js';

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

async function spawnJobmanager(
  id: string,
  prefix: string,
  options: { nodes?: { rpcUrl: string; cookieFile: string }[]; extra?: Record<string, unknown> } = {},
): Promise<ServiceProcess> {
  const service = await spawnService(
    'jobmanager',
    regtestJobmanagerConfig({
      id,
      keyPrefix: prefix,
      redisUrl: redisServer.url,
      payout,
      nodes: options.nodes ?? ltc.nodes,
      extra: { logLevel: 'warn', ...options.extra },
    }),
  );
  cleanups.push(() => killService(service));
  return service;
}

/** A stratum server's side of the wire to one jobmanager: subscribed, collecting pushes. */
async function subscribe(endpoint: string) {
  const client: RpcClient<RpcMethods, RpcPushes> = createRpcClient<RpcMethods, RpcPushes>(endpoint, {
    heartbeatIntervalMs: 250,
  });
  cleanups.push(() => client.close());
  const jobs: Job[] = [];
  const health: RpcPushes['health'][] = [];
  client.onPush('job', (job) => jobs.push(job));
  client.onPush('health', (h) => health.push(h));
  const reply = (await client.subscribe('jm.subscribe', { stratumId: 's1', chain: CHAIN })) as {
    job: Job | null;
  };
  if (reply.job) jobs.push(reply.job);
  return { client, jobs, health };
}

/** A `jm.submitBlock` for `job` whose nonce is ground to meet the network target. */
function blockFor(job: Job, extranonce2: string, shareId: string): RpcMethods['jm.submitBlock']['req'] {
  const extranonce1 = '0a0b0c0d';
  const nonce = grindNonce(job, Buffer.from(extranonce1, 'hex'), Buffer.from(extranonce2, 'hex'));
  return {
    chain: CHAIN,
    jobId: job.jobId,
    extranonce1,
    extranonce2,
    ntime: job.ntime,
    nonce,
    version: job.version,
    shareId,
  };
}

/** The job's previous block hash in the daemon's byte order. */
function prevOf(job: Job): string {
  const words = Buffer.from(job.prevhash, 'hex');
  for (let i = 0; i < 32; i += 4) words.subarray(i, i + 4).reverse();
  return Buffer.from(words).reverse().toString('hex');
}

describe('jobmanager faults (real litecoind, Redis, jobmanagers in their own processes)', () => {
  it('after a daemon restart, an idle pool asks each daemon at most 3 times a second, the standby included', async () => {
    // A freshly started litecoind answers a GBT long poll at once until its first new block.
    await Promise.all(ltc.nodes.map((n) => n.restart()));
    await ltc.connect();
    const prefix = `t${randomBytes(4).toString('hex')}:`;
    const counters: RpcCounter[][] = [];
    const jobmanagers: ServiceProcess[] = [];
    for (const id of ['jm-idle-1', 'jm-idle-2']) {
      const mine = await Promise.all(ltc.nodes.map((n) => startRpcCounter({ port: n.rpcPort })));
      cleanups.push(() => Promise.all(mine.map((c) => c.close())));
      counters.push(mine);
      // The production poll interval (500 ms), not the tests' 100 ms.
      jobmanagers.push(
        await spawnJobmanager(id, prefix, {
          nodes: ltc.nodes.map((n, i) => ({ rpcUrl: mine[i]!.url, cookieFile: n.cookieFile })),
          extra: { pollIntervalMs: 500 },
        }),
      );
    }
    const keys = createKeyBuilder({ prefix });
    await waitFor(async () => (await redis.get(keys.lease(`jm:${CHAIN}`))) !== null, {
      timeoutMs: 10_000,
      what: 'a leader',
    });
    for (const c of counters.flat()) c.reset();
    const windowMs = 10_000;
    const from = performance.now();
    await new Promise((resolve) => setTimeout(resolve, windowMs));
    const seconds = (performance.now() - from) / 1000;
    const perJobmanager = counters.map((mine) => {
      const total = mine.reduce((sum, c) => sum + c.total(), 0);
      const gbt = mine.reduce((sum, c) => sum + (c.counts().getblocktemplate ?? 0), 0);
      return { callsPerS: total / seconds, gbtPerS: gbt / seconds };
    });
    for (const jm of jobmanagers) expect(jm.child.exitCode).toBeNull();
    for (const figures of perJobmanager) {
      expect(figures.callsPerS).toBeLessThanOrEqual(3);
      expect(figures.gbtPerS).toBeLessThanOrEqual(1);
    }
  });
});
