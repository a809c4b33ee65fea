import { createLogger } from '@hashwire/core';
import { JobStore } from '@hashwire/jobmanager';
import type { KeyBuilder, RpcMethods, Share } from '@hashwire/protocol';
import { type RedisClient, connectRedis } from '@hashwire/registry';
import { type Reporter, createReporter, readShareLog } from '@hashwire/reporter';
import type { RpcClient } from '@hashwire/rpc';
import { type RedisServer, startRedis } from '@hashwire/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { batch, client, share, testKeys, wire } from '../../reporter/test/helpers.js';
import { type ApiService, createApiService } from '../src/index.js';
import { call } from './helpers.js';

// The read API over what a real reporter wrote from real `reporter.shares` requests, and block
// records written by the jobmanager's own JobStore.

const CHAIN = 'ltc'; // the reporter test helpers' chain
const SCRYPT = 2 ** 16;
const BLOCK_A = 'ab'.repeat(32);
const quiet = createLogger({ name: 'api-test', level: 'silent' });

let server: RedisServer;
let redis: RedisClient;
let keys: KeyBuilder;
let api: ApiService;
let reporter: Reporter;
const ADMIN = 'read-test-admin-token';
let base: string;
const closers: (() => Promise<unknown> | unknown)[] = [];

async function credit(rpc: RpcClient<RpcMethods>, shares: Share[]) {
  const reply = await rpc.request('reporter.shares', wire(batch(shares)));
  expect(reply.subs[0]?.status).toBe('credited');
}

beforeAll(async () => {
  server = await startRedis();
  redis = connectRedis(server.url, 'api-test');
  keys = testKeys();
  const started = await createReporter({
    id: 'r1',
    chain: CHAIN,
    redis,
    keys,
    logger: quiet,
    blockPollMs: 3_600_000,
  });
  closers.push(() => started.close());
  await started.start();
  const rpc = client(started.endpoint!);
  closers.push(() => rpc.close());

  // acctA: rig1 3 × diff 8 accepted + 1 stale; rig2 2 × diff 16 accepted + 1 invalid + 1 duplicate;
  // the bare account 1 × diff 4. acctB: rig1 1 × diff 64 accepted, the block candidate.
  await credit(rpc, [
    ...[1, 2, 3].map(() => share({ account: 'acctA', worker: 'rig1', diff: 8 })),
    share({ account: 'acctA', worker: 'rig1', diff: 8, result: 'stale' }),
    share({ account: 'acctA', worker: 'rig2', diff: 16 }),
    share({ account: 'acctA', worker: 'rig2', diff: 16 }),
    share({ account: 'acctA', worker: 'rig2', diff: 16, result: 'invalid' }),
    share({ account: 'acctA', worker: 'rig2', diff: 16, result: 'duplicate' }),
    share({ account: 'acctA', worker: '', diff: 4 }),
  ]);
  await credit(rpc, [share({ account: 'acctB', worker: 'rig1', diff: 64, blockHash: BLOCK_A })]);

  api = await createApiService({
    id: 'api-1',
    redis,
    keys,
    chains: [{ chain: CHAIN, algorithm: 'scrypt' }],
    port: 0,
    httpPortRange: [0, 0],
    logger: quiet,
    adminToken: ADMIN,
  });
  closers.push(() => api.close());
  await api.start();
  base = api.url!;
  reporter = started;
});

afterAll(async () => {
  for (const c of closers.splice(0).reverse()) await c();
  redis?.disconnect();
  await server?.stop();
});

/** `value` is `expected` read within a few seconds of crediting: a bucket boundary may cut a little off. */
function near(value: number, expected: number) {
  expect(value).toBeLessThanOrEqual(expected * (1 + 1e-9));
  expect(value).toBeGreaterThan(expected * 0.97);
}

describe('read API v1', () => {
  it('serves the pool: hashrate from accepted difficulty, miners and workers online, round, network', async () => {
    const store = new JobStore(redis, keys, CHAIN, 60_000);
    await store.save(
      {
        job: {
          chain: CHAIN,
          epoch: 1,
          jobId: '1a',
          jmId: 'jm1',
          height: 321,
          prevhash: '00'.repeat(32),
          coinb1: '',
          coinb2: '',
          merkleBranch: [],
          version: '20000000',
          nbits: '1e0ffff0',
          ntime: '65a1b2c3',
          cleanJobs: true,
          target: '00'.repeat(32),
          createdAt: Date.now(),
        },
        template: {} as never,
        payouts: [],
        poolTag: '',
        extranonce1Size: 4,
        extranonce2Size: 4,
      },
      'tpl1',
    );
    const { status, body } = await call(`${base}/v1/chains/${CHAIN}`);
    expect(status).toBe(200);
    const diff = 3 * 8 + 2 * 16 + 4 + 64;
    near(body.hashrate['5m'], (diff / 300) * SCRYPT);
    near(body.hashrate['1h'], (diff / 3600) * SCRYPT);
    near(body.hashrate['24h'], (diff / 86_400) * SCRYPT);
    expect(body.minersOnline).toBe(2);
    expect(body.workersOnline).toBe(4); // acctA.rig1, acctA.rig2, acctA, acctB.rig1
    expect(body.round).toEqual({ accounts: 2, totalDiff: diff });
    expect(body.network.height).toBe(321);
    expect(body.network.difficulty).toBeCloseTo(0.000244140625, 12); // 1e0ffff0: litecoin's minimum
    // The chain's share counts by result: what the two requests credited, as the share log has them.
    expect(body.shares).toEqual({ accepted: 7, stale: 1, duplicate: 1, lowdiff: 0, invalid: 1 });
    const logged = { accepted: 0, stale: 0, duplicate: 0, lowdiff: 0, invalid: 0 };
    for await (const entry of readShareLog(redis, keys, CHAIN))
      for (const k of Object.keys(logged) as (keyof typeof logged)[]) logged[k] += entry.counts[k];
    expect(body.shares).toEqual(logged);
    const all = await call(`${base}/v1/pool`);
    expect(all.body.chains.map((c: { chain: string }) => c.chain)).toEqual([CHAIN]);
    expect(all.body.chains[0].shares).toEqual(logged);
  });

  it('serves the stored hashrate history of the chain and of an account', async () => {
    const SLOT = 300_000;
    const HOUR = 3_600_000;
    type Point = { t: number; hashrate: number };
    // Each point is the average over its interval (the elapsed part, for the current one): the
    // points times their seconds give back the difficulty credited.
    const credited = (points: Point[], size: number, at: number) =>
      points.reduce(
        (sum, p) => sum + (p.hashrate / SCRYPT) * (Math.max(1, Math.min(size, at - p.t)) / 1000),
        0,
      );
    for (const [path, diff] of [
      [`/v1/chains/${CHAIN}/hashrate/history`, 3 * 8 + 2 * 16 + 4 + 64],
      [`/v1/chains/${CHAIN}/accounts/acctA/hashrate/history`, 60],
    ] as const) {
      const { status, body } = await call(`${base}${path}`);
      expect(status).toBe(200);
      const hour = Math.floor(body.at / HOUR);
      // 5-minute points from the start of the previous hour to now; hourly points over 24 h and the current hour.
      expect(body.fiveMinutes[0].t).toBe((hour - 1) * HOUR);
      expect(body.fiveMinutes.at(-1).t).toBe(Math.floor(body.at / SLOT) * SLOT);
      expect(body.hours).toHaveLength(25);
      expect(body.hours.at(-1).t).toBe(hour * HOUR);
      expect(credited(body.fiveMinutes, SLOT, body.at)).toBeCloseTo(diff, 9);
      expect(credited(body.hours, HOUR, body.at)).toBeCloseTo(diff, 9);
      // `since` keeps the points starting at or after it.
      const since = body.fiveMinutes.at(-2).t;
      const later = await call(`${base}${path}?since=${since}`);
      expect(later.status).toBe(200);
      expect(later.body.fiveMinutes.map((p: Point) => p.t)).toEqual(
        body.fiveMinutes.filter((p: Point) => p.t >= since).map((p: Point) => p.t),
      );
      expect(later.body.hours.every((p: Point) => p.t >= since)).toBe(true);
    }
    const bad = await call(`${base}/v1/chains/${CHAIN}/hashrate/history?since=yesterday`);
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ field: 'since', in: 'query' });
    const unknown = await call(`${base}/v1/chains/${CHAIN}/hashrate/history?from=1`);
    expect(unknown.status).toBe(400);
    expect(unknown.body.error).toMatchObject({ field: 'from', in: 'query' });
    const openapi = (await call(`${base}/v1/openapi.json`)).body;
    const historyRoute = openapi.paths['/v1/chains/{chain}/accounts/{account}/hashrate/history'].get;
    expect(historyRoute.parameters.find((p: { name: string }) => p.name === 'since')).toMatchObject({
      in: 'query',
      required: false,
    });
    const poolSchema =
      openapi.paths['/v1/chains/{chain}'].get.responses['200'].content['application/json'].schema;
    expect(Object.keys(poolSchema.properties.shares.properties).sort()).toEqual([
      'accepted',
      'duplicate',
      'invalid',
      'lowdiff',
      'stale',
    ]);
  });

  it('serves an account: hashrate, credited difficulty this round, workers with their counts', async () => {
    const { status, body } = await call(`${base}/v1/chains/${CHAIN}/accounts/acctA`);
    expect(status).toBe(200);
    expect(body.roundDiff).toBe(60);
    expect(body.workers).toBe(3);
    near(body.hashrate['5m'], (60 / 300) * SCRYPT);

    const workers = await call(`${base}/v1/chains/${CHAIN}/accounts/acctA/workers`);
    expect(workers.status).toBe(200);
    expect(workers.body.total).toBe(3);
    expect(workers.body.next).toBeNull();
    const byName = Object.fromEntries(workers.body.items.map((w: { name: string }) => [w.name, w]));
    expect(Object.keys(byName).sort()).toEqual(['', 'rig1', 'rig2']);
    expect(byName.rig1).toMatchObject({ accepted: 3, stale: 1, rejected: 0, acceptedDiff: 24 });
    expect(byName.rig2).toMatchObject({
      accepted: 2,
      stale: 0,
      rejected: 2,
      invalid: 1,
      duplicate: 1,
      acceptedDiff: 32,
    });
    expect(byName['']).toMatchObject({ accepted: 1, acceptedDiff: 4 });
    expect(byName.rig1.lastShareMs).toBeGreaterThan(Date.now() - 600_000);
    near(byName.rig2.hashrate['5m'], (32 / 300) * SCRYPT);

    // One per page: every worker once, in name order, with a cursor to the next.
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const url: string = `${base}/v1/chains/${CHAIN}/accounts/acctA/workers?limit=1${cursor ? `&cursor=${cursor}` : ''}`;
      const pageBody: { items: { name: string }[]; next: string | null } = (await call(url)).body;
      seen.push(...pageBody.items.map((w: { name: string }) => w.name));
      cursor = pageBody.next;
    } while (cursor);
    expect(seen).toEqual(['', 'rig1', 'rig2']);

    const unknown = await call(`${base}/v1/chains/${CHAIN}/accounts/nobody`);
    expect(unknown.body).toMatchObject({ roundDiff: 0, workers: 0, recentBlocks: [] });
  });

  it('serves blocks with state, finder and the round they closed; pages are stable', async () => {
    const store = new JobStore(redis, keys, CHAIN, 60_000);
    const record = (hash: string, height: number, state: 'accepted' | 'rejected') => ({
      hash,
      chain: CHAIN,
      height,
      jobId: '1a',
      jmId: 'jm1',
      shareId: 's',
      state,
      submittedAt: Date.now(),
      updatedAt: Date.now(),
      ...(state === 'rejected' && { reason: 'bad-txns' }),
    });
    await store.recordBlock(record(BLOCK_A, 100, 'accepted'));
    await store.recordBlock(record('cd'.repeat(32), 101, 'rejected'));
    await store.recordBlock(record('ce'.repeat(32), 101, 'rejected'));
    await reporter.pollBlocks(); // closes the round on the accepted block found by acctB

    const one = await call(`${base}/v1/chains/${CHAIN}/blocks/${BLOCK_A.toUpperCase()}`);
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({
      hash: BLOCK_A,
      height: 100,
      state: 'accepted',
      finder: { account: 'acctB', worker: 'rig1' },
      round: { accounts: 2, totalDiff: 124, returned: false },
    });
    const rejected = await call(`${base}/v1/chains/${CHAIN}/blocks/${'cd'.repeat(32)}`);
    expect(rejected.body).toMatchObject({ state: 'rejected', reason: 'bad-txns', finder: null, round: null });

    const first = await call(`${base}/v1/chains/${CHAIN}/blocks?limit=2`);
    expect(first.body.items.map((b: { hash: string }) => b.hash)).toEqual(['ce'.repeat(32), 'cd'.repeat(32)]);
    expect(first.body.next).toEqual(expect.any(String));
    // A block arriving between two pages does not shift the next one.
    await store.recordBlock(record('ef'.repeat(32), 102, 'rejected'));
    const second = await call(`${base}/v1/chains/${CHAIN}/blocks?limit=2&cursor=${first.body.next}`);
    expect(second.body.items.map((b: { hash: string }) => b.hash)).toEqual([BLOCK_A]);
    expect(second.body.next).toBeNull();

    const rounds = await call(`${base}/v1/chains/${CHAIN}/rounds`);
    expect(rounds.body.items.map((b: { hash: string }) => b.hash)).toEqual([BLOCK_A]);
    const current = await call(`${base}/v1/chains/${CHAIN}/rounds/current`);
    expect(current.body).toEqual({ chain: CHAIN, totalDiff: 0, accounts: {} });
    const pool = await call(`${base}/v1/chains/${CHAIN}`);
    expect(pool.body.round).toEqual({ accounts: 0, totalDiff: 0 });
    const account = await call(`${base}/v1/chains/${CHAIN}/accounts/acctB`);
    expect(account.body.recentBlocks.map((b: { hash: string }) => b.hash)).toEqual([BLOCK_A]);
    expect(account.body.roundDiff).toBe(0);
  });

  it('lists the services in discovery, itself included with its api URL; internal ports only with a token', async () => {
    const { body } = await call(`${base}/v1/services`);
    const kinds = body.services.map((s: { kind: string; id: string }) => `${s.kind}/${s.id}`).sort();
    expect(kinds).toEqual(['api/api-1', 'reporter/r1']);
    const self = body.services.find((s: { kind: string }) => s.kind === 'api');
    expect(self.endpoints.api).toBe(base);
    // Public: where clients connect, never the RPC or status ports.
    expect(self.endpoints.http).toBeUndefined();
    const reporterEntry = body.services.find((s: { kind: string }) => s.kind === 'reporter');
    expect(reporterEntry.endpoints.rpc).toBeUndefined();
    const withToken = await call(`${base}/v1/services`, { headers: { authorization: `Bearer ${ADMIN}` } });
    const selfSeen = withToken.body.services.find((s: { kind: string }) => s.kind === 'api');
    expect(selfSeen.endpoints.http).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const reporterSeen = withToken.body.services.find((s: { kind: string }) => s.kind === 'reporter');
    expect(reporterSeen.endpoints.rpc).toMatch(/^tcp:\/\//);
  });

  it('serves an OpenAPI document made from the schemas that validate', async () => {
    const { status, body } = await call(`${base}/v1/openapi.json`);
    expect(status).toBe(200);
    expect(body.openapi).toBe('3.1.0');
    const workers = body.paths['/v1/chains/{chain}/accounts/{account}/workers'].get;
    const limit = workers.parameters.find((p: { name: string }) => p.name === 'limit');
    expect(limit).toMatchObject({ in: 'query', required: false, schema: { minimum: 1, maximum: 500 } });
    expect(Object.keys(body.paths)).toEqual(
      expect.arrayContaining(['/v1/groups/{group}/{member}', '/v1/groups/{group}/config', '/v1/services']),
    );
    expect(Object.keys(body.paths['/v1/groups/{group}/{member}']).sort()).toEqual([
      'delete',
      'get',
      'head',
      'put',
    ]);
  });
});
