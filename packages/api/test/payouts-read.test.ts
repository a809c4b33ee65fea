import { randomBytes } from 'node:crypto';
import { createRestClient } from '@hashwire/client';
import { createLogger } from '@hashwire/core';
import { indexLedger, payoutKeys } from '@hashwire/payouts';
import { type KeyBuilder, createKeyBuilder } from '@hashwire/protocol';
import { type RedisClient, connectRedis } from '@hashwire/registry';
import { type RedisServer, startRedis } from '@hashwire/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiService, createApiService } from '../src/index.js';
import { call } from './helpers.js';

// An account's balance, payments and earnings per block, read from a real Redis holding a
// ledger as the payer's scripts write it; the indexes the api reads are filled from that
// ledger by the payouts package's own `indexLedger` (what a payer does at start). The Lua
// scripts write the same members themselves (packages/payouts/test/window.test.ts).

const CHAIN = 'ltc';
const OTHER = 'doge';
const quiet = createLogger({ name: 'api-test', level: 'silent' });
const hash = (n: number) => n.toString(16).padStart(64, '0');
const TXID = 'aa'.repeat(32);

let server: RedisServer;
let redis: RedisClient;
let keys: KeyBuilder;
let api: ApiService;
let base: string;
let k: ReturnType<typeof payoutKeys>;
let ts = 1_760_000_000_000;

/** One ledger entry as share-out.lua / pay-record.lua write it, and the balance it moves. */
async function ledger(type: string, account: string, sat: number, ref: string, txid?: string) {
  ts += 1000;
  await redis.xadd(
    k.ledger,
    '*',
    'type',
    type,
    'account',
    account,
    'sat',
    String(sat),
    'ref',
    ref,
    ...(txid ? ['txid', txid] : []),
    'ts',
    String(ts),
  );
  await redis.hincrby(k.balances, account, sat);
}

async function shareOut(n: number, credits: [string, number][]) {
  await redis.hset(k.blocks, hash(n), JSON.stringify({ hash: hash(n), chain: CHAIN, height: 100 + n }));
  for (const [account, sat] of credits) await ledger('credit', account, sat, hash(n));
  await ledger('fee', 'feeAcct', 10, hash(n));
}

beforeAll(async () => {
  server = await startRedis();
  redis = connectRedis(server.url, 'api-payouts-test');
  keys = createKeyBuilder({ prefix: `t${randomBytes(4).toString('hex')}:` });
  k = payoutKeys(keys, CHAIN);
  // acctA earns from blocks 1-3 and is paid once; acctAB (acctA's name and more) from block 2.
  await shareOut(1, [['acctA', 1000]]);
  await shareOut(2, [
    ['acctA', 2000],
    ['acctAB', 7000],
  ]);
  await ledger('debit', 'acctA', -3000, 'batch-1', TXID);
  await shareOut(3, [['acctA', 500]]);
  // acctAB is in the batch being paid; acctC's address is refused.
  await redis.hset(
    k.batches,
    'batch-2',
    JSON.stringify({ id: 'batch-2', state: 'intent', payments: [['acctAB', '7000']], totalSat: '7000' }),
  );
  await redis.set(k.open, 'batch-2');
  await redis.hset(k.held, 'acctC', 'address refused by the daemon: Invalid address');
  expect(await indexLedger(redis, k)).toBe(8);

  api = await createApiService({
    id: 'api-1',
    redis,
    keys,
    chains: [
      { chain: CHAIN, algorithm: 'scrypt', payments: { scheme: 'pplns', minimumPayoutSat: 1000 } },
      { chain: OTHER, algorithm: 'scrypt' },
    ],
    port: 0,
    httpPortRange: [0, 0],
    logger: quiet,
  });
  await api.start();
  base = `${api.url}/v1/chains`;
});

afterAll(async () => {
  await api?.close();
  redis?.disconnect();
  await server?.stop();
});

describe('read API: an account’s money', () => {
  it('balance: what is owed, what was paid, what is being paid, why payments are held, how the chain pays', async () => {
    const a = await call(`${base}/${CHAIN}/accounts/acctA/balance`);
    expect(a.status).toBe(200);
    expect(a.body).toEqual({
      chain: CHAIN,
      account: 'acctA',
      balanceSat: '500',
      paidSat: '3000',
      payingSat: '0',
      held: null,
      payments: { scheme: 'pplns', minimumPayoutSat: 1000 },
    });
    const ab = await call(`${base}/${CHAIN}/accounts/acctAB/balance`);
    expect(ab.body).toMatchObject({ balanceSat: '7000', paidSat: '0', payingSat: '7000' });
    const c = await call(`${base}/${CHAIN}/accounts/acctC/balance`);
    expect(c.body).toMatchObject({ balanceSat: '0', held: 'address refused by the daemon: Invalid address' });
    const other = await call(`${base}/${OTHER}/accounts/acctA/balance`);
    expect(other.body).toMatchObject({ balanceSat: '0', paidSat: '0', payments: null });
  });

  it('payments: each with its batch, txid and amount, newest first; only that account’s', async () => {
    const a = await call(`${base}/${CHAIN}/accounts/acctA/payments`);
    expect(a.status).toBe(200);
    expect(a.body).toEqual({
      items: [{ batchId: 'batch-1', txid: TXID, sat: '3000', at: expect.any(Number) }],
      next: null,
    });
    expect((await call(`${base}/${CHAIN}/accounts/acctAB/payments`)).body).toEqual({ items: [], next: null });
  });

  it('earnings: per block, newest first, with height; pages are stable while new blocks are shared out', async () => {
    const first = await call(`${base}/${CHAIN}/accounts/acctA/earnings?limit=2`);
    expect(first.status).toBe(200);
    expect(first.body.items).toEqual([
      { blockHash: hash(3), height: 103, type: 'credit', sat: '500', at: expect.any(Number) },
      { blockHash: hash(2), height: 102, type: 'credit', sat: '2000', at: expect.any(Number) },
    ]);
    expect(first.body.next).toEqual(expect.any(String));
    // A block shared out between two pages does not shift the next one.
    await shareOut(4, [['acctA', 42]]);
    expect(await indexLedger(redis, k)).toBe(2);
    const second = await call(`${base}/${CHAIN}/accounts/acctA/earnings?limit=2&cursor=${first.body.next}`);
    expect(second.body).toEqual({
      items: [{ blockHash: hash(1), height: 101, type: 'credit', sat: '1000', at: expect.any(Number) }],
      next: null,
    });
    const again = await call(`${base}/${CHAIN}/accounts/acctA/earnings`);
    expect(again.body.items.map((e: { blockHash: string }) => e.blockHash)).toEqual([
      hash(4),
      hash(3),
      hash(2),
      hash(1),
    ]);
    const fee = await call(`${base}/${CHAIN}/accounts/feeAcct/earnings?limit=1`);
    expect(fee.body.items).toEqual([
      { blockHash: hash(4), height: 104, type: 'fee', sat: '10', at: expect.any(Number) },
    ]);
    // Indexing again changes nothing: every member comes from its ledger entry alone.
    const before = await redis.zcard(k.earningsIndex);
    await redis.del(k.indexed);
    expect(await indexLedger(redis, k)).toBe(10);
    expect(await redis.zcard(k.earningsIndex)).toBe(before);
  });

  it('refuses bad input with a 4xx naming the field', async () => {
    const cases: [string, number, string][] = [
      [`${base}/${CHAIN}/accounts/acctA/earnings?limit=0`, 400, 'limit'],
      [`${base}/${CHAIN}/accounts/acctA/payments?limit=501`, 400, 'limit'],
      [`${base}/${CHAIN}/accounts/acctA/earnings?cursor=bm9wZQ`, 400, 'cursor'],
      [`${base}/${CHAIN}/accounts/acctA/payments?since=1`, 400, 'since'],
      [`${base}/${CHAIN}/accounts/a%20b/balance`, 400, 'account'],
      [`${base}/${CHAIN}/accounts/a%7Cb/earnings`, 400, 'account'],
      [`${base}/nochain/accounts/acctA/balance`, 404, 'chain'],
    ];
    for (const [url, status, field] of cases) {
      const res = await call(url);
      expect({ url, status: res.status, field: res.body.error.field }).toEqual({ url, status, field });
      expect(res.body.error.message).toContain(field);
    }
  });

  it('is read the same through @hashwire/client, page by page', async () => {
    const client = createRestClient({ url: api.url! });
    expect(await client.balance(CHAIN, 'acctA')).toMatchObject({ balanceSat: '542', paidSat: '3000' });
    expect((await client.payments(CHAIN, 'acctA')).items.map((p) => p.txid)).toEqual([TXID]);
    const sats: bigint[] = [];
    for await (const e of client.all((page) => client.earnings(CHAIN, 'acctA', page), 1))
      sats.push(BigInt(e.sat));
    expect(sats).toEqual([42n, 500n, 2000n, 1000n]);
  });

  it('is in the OpenAPI document', async () => {
    const { body } = await call(`${api.url}/v1/openapi.json`);
    for (const path of ['balance', 'payments', 'earnings'])
      expect(body.paths[`/v1/chains/{chain}/accounts/{account}/${path}`]?.get, path).toBeDefined();
    const earnings = body.paths['/v1/chains/{chain}/accounts/{account}/earnings'].get;
    expect(earnings.parameters.map((p: { name: string }) => p.name).sort()).toEqual([
      'account',
      'chain',
      'cursor',
      'limit',
    ]);
  });
});
