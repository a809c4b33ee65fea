import { type RedisClient, connectRedis } from '@hashwire/registry';
import {
  type LitecoinRegtest,
  type RedisServer,
  startLitecoinRegtest,
  startRedis,
  waitFor,
} from '@hashwire/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { coinToSat } from '../src/amounts.js';
import { auditPayouts } from '../src/audit.js';
import { payoutKeys } from '../src/keys.js';
import { coinbaseReward } from '../src/maturity.js';
import { type Payer, createPayer } from '../src/payer-service.js';
import type { PaymentSettings } from '../src/settings.js';
import { CHAIN, blockState, credit, findBlock, quiet, share, startReporter, testKeys } from './helpers.js';

let ltc: LitecoinRegtest;
let server: RedisServer;
let redis: RedisClient;
const cleanups: (() => Promise<unknown> | unknown)[] = [];

beforeAll(async () => {
  [ltc, server] = await Promise.all([startLitecoinRegtest({ nodes: 2 }), startRedis()]);
  redis = connectRedis(server.url, 'test');
}, 120_000);
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
afterAll(async () => {
  redis?.disconnect();
  await Promise.all([ltc?.stop(), server?.stop()]);
});

/** Fresh addresses of the second node's wallet: the miners' wallets, apart from the pool's. */
async function minerAddresses(n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(await ltc.rpc[1]!.call<string>('getnewaddress'));
  return out;
}

/** What the miners' wallet received at `address` (in a block), in satoshis. */
async function received(address: string): Promise<bigint> {
  return coinToSat(await ltc.rpc[1]!.call<number>('getreceivedbyaddress', [address, 1]));
}

async function startPayer(
  keys: ReturnType<typeof testKeys>,
  settings: PaymentSettings,
  rewardAddress: string,
): Promise<Payer> {
  const node = ltc.nodes[0]!;
  const payer = createPayer({
    redis,
    keys,
    chain: CHAIN,
    coin: 'litecoin',
    network: 'regtest',
    wallet: { url: node.rpcUrl, cookieFile: node.cookieFile },
    settings,
    rewardAddresses: [rewardAddress],
    logger: quiet,
    schedule: false,
  });
  cleanups.push(() => payer.close());
  await payer.start();
  await payer.elected(10_000);
  return payer;
}

async function reward(hash: string): Promise<bigint> {
  const block = await ltc.rpc[0]!.call<Parameters<typeof coinbaseReward>[0]>('getblock', [hash, 2]);
  return coinbaseReward(block, new Set());
}

/** ⌊pot × w / W⌋ for each account, computed here from the weights the test expects. */
function expectedCredits(pot: bigint, weights: Record<string, bigint>): Map<string, bigint> {
  let total = 0n;
  for (const w of Object.values(weights)) total += w;
  return new Map(Object.entries(weights).map(([a, w]) => [a, (pot * w) / total]));
}

describe('share-out after maturity, paid from the wallet', () => {
  it('PPLNS: the last N of difficulty (N = 2 × network difficulty), exact to the satoshi, paid once mature', async () => {
    const keys = testKeys();
    const k = payoutKeys(keys, CHAIN);
    const reporter = await startReporter(redis, keys, ltc, { shareWindow: true });
    cleanups.push(() => reporter.close());
    const [a, b, c, d, e, old, fee] = await minerAddresses(7);
    const pool = await ltc.rpc[0]!.call<string>('getnewaddress');
    const settings: PaymentSettings = {
      scheme: 'pplns',
      pplnsFactor: 2,
      feePercent: 1.5,
      feeAddress: fee!,
      minimumPayoutSat: 1,
      intervalS: 3600,
      maturity: 100,
    };
    // Regtest difficulty in scrypt share units is 65535 / (8388607 × 256), so with factor 2 the
    // window is N = ⌊2 × 65535 × 10^8 / 2147483392⌋ = 6103 units of 10^-8 difficulty.
    await credit(reporter, [share(old!, 0.00005)]); // 5000 units, only partly in the window
    await credit(reporter, [share(a!, 0.000001), share(b!, 0.000002)]); // 100 + 200
    await credit(reporter, [share(c!, 0.000015), share(d!, 0.00001)]); // 1500 + 1000
    const found = await findBlock(redis, keys, ltc, pool);
    await credit(reporter, [
      share(e!, 0.00002),
      share(a!, 0.000005),
      share(b!, 0.000003),
      share(c!, 0.000001, found.hash),
    ]); // 2000 + 500 + 300 + 100: the block's request ends the window
    await credit(reporter, [share(a!, 0.00001)]); // after the block: not in its window
    await reporter.pollBlocks();
    expect(await blockState(redis, keys, found.hash)).toBe('accepted');

    // Newest first: 2900, 2500, 300 (5700 of 6103), then 403 of the old entry's 5000.
    const weights = { [a!]: 600n, [b!]: 500n, [c!]: 1600n, [d!]: 1000n, [e!]: 2000n, [old!]: 403n };
    const rewardSat = await reward(found.hash);
    const feeSat = (rewardSat * 150n) / 10_000n;
    const credits = expectedCredits(rewardSat - feeSat, weights);
    let credited = 0n;
    for (const sat of credits.values()) credited += sat;

    const payer = await startPayer(keys, settings, pool);
    // 99 confirmations: not mature, nothing shared out.
    await ltc.mine(0, 98);
    await ltc.sync();
    expect((await payer.runOnce({ pay: false })).maturity.credited).toEqual([]);
    expect(await redis.hlen(k.balances)).toBe(0);

    await ltc.mine(0, 1);
    await ltc.sync();
    await reporter.pollBlocks();
    expect(await blockState(redis, keys, found.hash)).toBe('confirmed');
    expect((await payer.runOnce({ pay: false })).maturity.credited).toEqual([found.hash]);
    const balances = await redis.hgetall(k.balances);
    for (const [account, sat] of credits) expect(BigInt(balances[account] ?? '-1'), account).toBe(sat);
    expect(BigInt(balances[fee!] ?? '0')).toBe(rewardSat - credited);
    // Shared out once: a second run changes nothing.
    expect((await payer.runOnce({ pay: false })).maturity.credited).toEqual([]);

    const paid = await payer.runOnce({ pay: true });
    expect(paid.pay).toMatchObject({ outcome: 'sent', accounts: 7 });
    await ltc.mine(0, 1);
    await ltc.sync();
    for (const [account, sat] of credits) expect(await received(account), account).toBe(sat);
    expect(await received(fee!)).toBe(rewardSat - credited);

    const audit = await auditPayouts(redis, k, (method, params) => ltc.rpc[0]!.call(method, params ?? []));
    expect(audit.problems).toEqual([]);
    expect(audit).toMatchObject({
      ok: true,
      rewardsSat: rewardSat.toString(),
      balancesSat: '0',
      paidSat: rewardSat.toString(),
      walletChecked: 1,
    });
    expect(audit.remaindersSat).toBe((rewardSat - feeSat - credited).toString());
  }, 180_000);

  it.each([
    ['PROP: the block round’s credited difficulty, exact to the satoshi', 'prop'],
    [
      'SOLO, a block whose coinbase paid the pool (no payoutAddress: mined through a server that does not know SOLO) is shared out by its round, as PROP',
      'solo',
    ],
  ] as const)(
    '%s',
    async (_name, scheme) => {
      const keys = testKeys();
      const k = payoutKeys(keys, CHAIN);
      const reporter = await startReporter(redis, keys, ltc);
      cleanups.push(() => reporter.close());
      const miners = await minerAddresses(5);
      const pool = await ltc.rpc[0]!.call<string>('getnewaddress');
      const diffs = [1, 3, 7, 64, 0.5];
      await credit(
        reporter,
        miners.map((m, i) => share(m, diffs[i]!)),
      );
      const found = await findBlock(redis, keys, ltc, pool);
      await credit(reporter, [share(miners[1]!, 2, found.hash)]);
      await reporter.pollBlocks();
      await ltc.mine(0, 99);
      await ltc.sync();
      await reporter.pollBlocks();

      const payer = await startPayer(
        keys,
        { scheme, pplnsFactor: 2, feePercent: 0, minimumPayoutSat: 1, intervalS: 3600, maturity: 100 },
        pool,
      );
      const rewardSat = await reward(found.hash);
      const weights = Object.fromEntries(
        miners.map((m, i) => [m, BigInt(Math.round((diffs[i]! + (i === 1 ? 2 : 0)) * 1e8))] as const),
      );
      const credits = expectedCredits(rewardSat, weights);
      expect((await payer.runOnce({ pay: false })).maturity.credited).toEqual([found.hash]);
      expect(JSON.parse((await redis.hget(k.shared, found.hash))!)).toMatchObject({ scheme: 'prop' });
      const balances = await redis.hgetall(k.balances);
      for (const [account, sat] of credits) expect(BigInt(balances[account] ?? '-1'), account).toBe(sat);
      const audit = await auditPayouts(redis, k);
      expect(audit.problems).toEqual([]);
      expect(audit.ok).toBe(true);
    },
    180_000,
  );

  it('an orphaned block (a longer competing chain on the second node) shares out nothing; its state shows and the audit balances', async () => {
    const keys = testKeys();
    const k = payoutKeys(keys, CHAIN);
    const reporter = await startReporter(redis, keys, ltc, { shareWindow: true });
    cleanups.push(() => reporter.close());
    const miners = await minerAddresses(2);
    const pool = await ltc.rpc[0]!.call<string>('getnewaddress');
    await credit(reporter, [share(miners[0]!, 0.00001)]);

    // Partition: the pool's node finds a block the other node never sees.
    await ltc.rpc[0]!.call('setnetworkactive', [false]);
    cleanups.push(async () => {
      await ltc.rpc[0]!.call('setnetworkactive', [true]);
      await ltc.connect();
      await ltc.sync();
    });
    await waitFor(async () => (await ltc.rpc[0]!.call<number>('getconnectioncount')) === 0, {
      what: 'node 0 offline',
    });
    const found = await findBlock(redis, keys, ltc, pool, { sync: false });
    await credit(reporter, [share(miners[1]!, 0.00002, found.hash)]);
    await reporter.pollBlocks();
    expect(await blockState(redis, keys, found.hash)).toBe('accepted');
    expect(await redis.zscore(k.windowPending, found.hash)).not.toBeNull();

    // The other node's chain grows longer; once joined, the pool's block leaves the main chain.
    await ltc.mine(1, 2);
    await ltc.rpc[0]!.call('setnetworkactive', [true]);
    await ltc.connect();
    await ltc.sync();
    await reporter.pollBlocks();
    expect(await blockState(redis, keys, found.hash)).toBe('orphaned');

    await ltc.mine(0, 100);
    await ltc.sync();
    const payer = await startPayer(
      keys,
      { scheme: 'pplns', pplnsFactor: 2, feePercent: 1, minimumPayoutSat: 1, intervalS: 3600, maturity: 100 },
      pool,
    );
    const run = await payer.runOnce({ pay: true });
    expect(run.maturity).toMatchObject({ credited: [], voided: [found.hash] });
    expect(run.pay?.outcome).toBe('nothing');
    expect(await redis.hlen(k.balances)).toBe(0);
    expect(await redis.zscore(k.windowPending, found.hash)).toBeNull();
    expect(JSON.parse((await redis.hget(k.shared, found.hash))!)).toMatchObject({
      state: 'void',
      blockState: 'orphaned',
      rewardSat: '0',
    });
    const audit = await auditPayouts(redis, k);
    expect(audit).toMatchObject({
      ok: true,
      blocks: { credited: 0, void: 1 },
      rewardsSat: '0',
      balancesSat: '0',
      paidSat: '0',
    });
  }, 180_000);
});
