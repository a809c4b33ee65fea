import { randomBytes } from 'node:crypto';
import { displayFromStratumPrevhash } from '@hashwire/chain';
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
/**
 * Each test's own bound, not vitest's default 30 s: the first restarts both litecoind nodes and
 * starts two jobmanager processes before its fixed 10 s window (29.3 s of the 30 s on this 2-core
 * box at a load of about 28), and the waits of each allow well over 30 s.
 */
const OWN = { timeout: 180_000 };

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

/** True when Redis does not answer a PING within 500 ms (it is frozen). */
async function redisFrozen(): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const answered = await Promise.race([
    redis.ping().then(() => true),
    new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), 500);
    }),
  ]);
  clearTimeout(timer);
  return !answered;
}

describe('jobmanager faults (real litecoind, Redis, jobmanagers in their own processes)', OWN, () => {
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

  it('a block found while Redis is frozen reaches the daemon and is accepted during the freeze; its records follow, and jobs and blocks flow again after', async () => {
    const prefix = `t${randomBytes(4).toString('hex')}:`;
    const keys = createKeyBuilder({ prefix });
    const jms = [await spawnJobmanager('jm-f1', prefix), await spawnJobmanager('jm-f2', prefix)];
    const feeds = await Promise.all(jms.map((jm) => subscribe(jm.ready.endpoint as string)));
    const jobs = () =>
      feeds.flatMap((f) => f.jobs).sort((a, b) => a.epoch - b.epoch || a.createdAt - b.createdAt);
    const job = await waitFor(() => jobs().at(-1), { timeoutMs: 10_000, what: 'a first job' });
    const issuer = feeds[jms.findIndex((jm) => jm.ready.id === job.jmId)]!;
    const height = await ltc.rpc[0]!.getBlockCount();

    // A VM pause of Redis: the process stops answering, its connections stay open.
    process.kill(redisServer.pid, 'SIGSTOP');
    let frozen = true;
    const thaw = () => {
      if (frozen) process.kill(redisServer.pid, 'SIGCONT');
      frozen = false;
    };
    cleanups.push(thaw);
    const reply = await issuer.client.request('jm.submitBlock', blockFor(job, '00000001', 'share-frozen'));
    expect(reply).toMatchObject({ accepted: true });
    expect(await ltc.rpc[0]!.getBestBlockHash()).toBe(reply.hash);
    expect(await ltc.rpc[0]!.getBlockCount()).toBe(height + 1);
    // A stratum server (re)subscribing to the standby meanwhile is answered, without a job.
    const standby = jms.find((jm) => jm.ready.id !== job.jmId)!;
    const subscribedAt = performance.now();
    const late = await subscribe(standby.ready.endpoint as string);
    expect(performance.now() - subscribedAt).toBeLessThan(2500);
    expect(late.jobs).toEqual([]);
    // Frozen past the lease: no jobmanager may still lead when Redis returns.
    await waitFor(
      async () => {
        const status = await Promise.all(feeds.map((f) => f.client.request('svc.status', {})));
        return status.every((st) => (st as { leader: boolean }).leader === false);
      },
      { timeoutMs: 10_000, what: 'every lease lapsed during the freeze' },
    );
    expect(await redisFrozen()).toBe(true);
    thaw();
    const thawedAt = performance.now();

    // Its records, written after the submission, reach Redis with their events.
    await waitFor(
      async () => {
        const text = await redis.hget(keys.blocks(CHAIN), reply.hash);
        const events = await redis.xrange(keys.events(CHAIN), '-', '+');
        const types = events.map(([, f]) => f[f.indexOf('type') + 1]);
        return text && JSON.parse(text).state === 'accepted' && types.includes('block.accepted');
      },
      { timeoutMs: 10_000, what: 'the accepted block record in Redis' },
    );
    // Jobs on the new block flow within the failover bound, and a block on one is accepted.
    const next = await waitFor(
      () => jobs().find((j) => displayFromStratumPrevhash(j.prevhash) === reply.hash),
      {
        timeoutMs: 10_000,
        intervalMs: 10,
        what: 'a job on the block found during the freeze',
      },
    );
    expect(performance.now() - thawedAt).toBeLessThan(3000);
    const nextIssuer = feeds[jms.findIndex((jm) => jm.ready.id === next.jmId)]!;
    const second = await nextIssuer.client.request(
      'jm.submitBlock',
      blockFor(next, '00000002', 'share-after'),
    );
    expect(second).toMatchObject({ accepted: true });
    expect(await ltc.rpc[0]!.getBlockCount()).toBe(height + 2);
  });

  it('a jobmanager whose daemons lost their peers goes unhealthy within its grace period, and healthy again once they reconnect, without a restart', async () => {
    const prefix = `t${randomBytes(4).toString('hex')}:`;
    const keys = createKeyBuilder({ prefix });
    const graceMs = 3000;
    const jm = await spawnJobmanager('jm-net', prefix, { extra: { templateGraceMs: graceMs } });
    const feed = await subscribe(jm.ready.endpoint as string);
    const http = (await redis.hget(keys.service('jobmanager', 'jm-net'), 'http'))!;
    const healthz = async () => {
      const res = await fetch(`${http}/healthz`);
      return { status: res.status, body: await res.text() };
    };
    const gauge = async (name: string) => {
      const text = await (await fetch(`${http}/metrics`)).text();
      return Number(new RegExp(`^${name}\\{[^}]*\\} (\\S+)$`, 'm').exec(text)?.[1]);
    };
    expect((await healthz()).status).toBe(200);
    await waitFor(() => feed.health.some((h) => h.healthy), { timeoutMs: 5000, what: 'a healthy report' });

    // Both nodes drop their peers: they still answer RPC (the tip poll works), but this
    // litecoind refuses templates with "Litecoin Core is not connected!".
    const cutAt = performance.now();
    await Promise.all(ltc.rpc.map((rpc) => rpc.call('setnetworkactive', [false])));
    cleanups.push(async () => {
      await Promise.all(ltc.rpc.map((rpc) => rpc.call('setnetworkactive', [true])));
      await ltc.connect();
    });
    await waitFor(async () => (await ltc.rpc[0]!.call<number>('getconnectioncount')) === 0, {
      timeoutMs: 5000,
      what: 'no peers',
    });
    await expect(ltc.rpc[0]!.getBlockTemplate()).rejects.toThrow(/not connected/);
    const unhealthy = await waitFor(
      async () => {
        const h = await healthz();
        return h.status === 503 ? h : undefined;
      },
      { timeoutMs: graceMs + 5000, intervalMs: 100, what: '/healthz 503' },
    );
    // Within the grace period plus the half-grace check that finds out.
    expect(performance.now() - cutAt).toBeLessThan(graceMs * 1.5 + 1000);
    expect(unhealthy.body).toMatch(/no fresh template for \d+ s: .*not connected/);
    const report = await waitFor(() => feed.health.find((h) => !h.healthy), {
      timeoutMs: 5000,
      what: 'a health push saying unhealthy',
    });
    expect(report.lastError).toMatch(/not connected/);
    expect(report.templateAgeMs).toBeGreaterThanOrEqual(graceMs);
    expect(report.lastTemplateAt).toBeGreaterThan(0);
    expect(await gauge('hashwire_template_healthy')).toBe(0);
    expect(await gauge('hashwire_template_age_seconds')).toBeGreaterThanOrEqual(graceMs / 1000);
    expect(jm.logs()).toMatch(/"msg":"jobmanager: unhealthy: no fresh template/);

    // Peers back: healthy again, same process.
    const reports = feed.health.length;
    await Promise.all(ltc.rpc.map((rpc) => rpc.call('setnetworkactive', [true])));
    await ltc.connect();
    await waitFor(async () => (await healthz()).status === 200, {
      timeoutMs: 10_000,
      intervalMs: 100,
      what: '/healthz 200 again',
    });
    await waitFor(() => feed.health.slice(reports).some((h) => h.healthy), {
      timeoutMs: 5000,
      what: 'a health push saying healthy',
    });
    expect(await gauge('hashwire_template_healthy')).toBe(1);
    expect(jm.child.exitCode).toBeNull();
  });
});
