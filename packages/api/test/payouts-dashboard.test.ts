import { randomBytes } from 'node:crypto';
import { createLogger } from '@hashwire/core';
import { indexLedger, payoutKeys } from '@hashwire/payouts';
import { createKeyBuilder } from '@hashwire/protocol';
import { type RedisClient, connectRedis } from '@hashwire/registry';
import { type HeadlessChromium, type RedisServer, launchChromium, startRedis } from '@hashwire/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiService, createApiService } from '../src/index.js';

// The miner page's Payouts part in real Chromium, on the built dashboard an api instance
// serves, over a real Redis holding a ledger as the payer's scripts write it.

const CHAIN = 'ltc';
const ACCOUNT = 'acctP';
const TXID = 'bb'.repeat(32);
const hash = (n: number) => n.toString(16).padStart(64, '0');

let server: RedisServer;
let redis: RedisClient;
let api: ApiService;
let browser: HeadlessChromium;

beforeAll(async () => {
  server = await startRedis();
  redis = connectRedis(server.url, 'payouts-dashboard-test');
  const keys = createKeyBuilder({ prefix: `t${randomBytes(4).toString('hex')}:` });
  const k = payoutKeys(keys, CHAIN);
  let ts = 1_760_000_000_000;
  const ledger = async (type: string, sat: number, ref: string, txid?: string) => {
    ts += 60_000;
    const fields = ['type', type, 'account', ACCOUNT, 'sat', String(sat), 'ref', ref];
    if (txid) fields.push('txid', txid);
    await redis.xadd(k.ledger, '*', ...fields, 'ts', String(ts));
    await redis.hincrby(k.balances, ACCOUNT, sat);
  };
  for (const n of [1, 2]) {
    await redis.hset(k.blocks, hash(n), JSON.stringify({ hash: hash(n), chain: CHAIN, height: 700 + n }));
    await ledger('credit', 150_000_000 * n, hash(n));
  }
  await ledger('debit', -450_000_000, 'batch-1', TXID);
  await redis.hset(k.blocks, hash(3), JSON.stringify({ hash: hash(3), chain: CHAIN, height: 703 }));
  await ledger('credit', 12_345, hash(3));
  await indexLedger(redis, k);
  api = await createApiService({
    id: 'api-1',
    redis,
    keys,
    chains: [
      { chain: CHAIN, algorithm: 'scrypt', payments: { scheme: 'pplns', minimumPayoutSat: 10_000_000 } },
    ],
    port: 0,
    httpPortRange: [0, 0],
    logger: createLogger({ name: 'api-test', level: 'silent' }),
  });
  await api.start();
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await api?.close();
  redis?.disconnect();
  await server?.stop();
});

describe('dashboard miner page: Payouts', () => {
  it('shows the balance, what was paid with its txid and the earnings per block, to the satoshi', async () => {
    const page = await browser.context.newPage();
    const errors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${api.url}/account/${ACCOUNT}`);
    await page.waitForFunction(() => document.body.dataset.ready !== undefined);
    expect(await page.evaluate(() => document.body.dataset.ready)).not.toBe('error');
    await page.locator('[data-testid="payout-balance"]').waitFor({ timeout: 30_000 });
    const text = (id: string) => page.locator(`[data-testid="${id}"]`).innerText();
    expect(await text('payout-balance')).toBe('0.00012345');
    expect(await text('payout-paid')).toBe('4.50000000');
    expect(await text('payout-paying')).toBe('0.00000000');
    expect(await page.locator('[data-testid="payout-held"]').count()).toBe(0);
    expect(await page.locator(`[data-payment="${TXID}"]`).count()).toBe(1);
    expect(await page.locator(`[data-payment="${TXID}"] td`).nth(1).innerText()).toBe('4.50000000');
    expect(
      await page
        .locator('[data-earning]')
        .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-earning'))),
    ).toEqual([hash(3), hash(2), hash(1)]);
    expect(
      await page
        .locator(`[data-earning="${hash(2)}"] td`)
        .nth(1)
        .innerText(),
    ).toBe('702');
    expect(errors).toEqual([]);
    await page.close();
  }, 60_000);
});
