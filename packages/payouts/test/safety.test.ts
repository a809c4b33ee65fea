import { DaemonClient } from '@hashwire/chain';
import { type RedisClient, connectRedis } from '@hashwire/registry';
import { type LitecoinRegtest, type RedisServer, startLitecoinRegtest, startRedis } from '@hashwire/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { coinToSat } from '../src/amounts.js';
import { auditPayouts } from '../src/audit.js';
import { payoutKeys } from '../src/keys.js';
import { type Payer, type PayerOptions, createPayer } from '../src/payer-service.js';
import type { PaymentBatch } from '../src/payer.js';
import { CHAIN, credit, findBlock, quiet, share, startReporter, testKeys } from './helpers.js';

// Node 0 gets more wallets here, so every wallet call names its wallet (`/wallet/<name>`).
let ltc: LitecoinRegtest;
let server: RedisServer;
let redis: RedisClient;
let poolWallet: DaemonClient;
let minerWallet: DaemonClient;
const cleanups: (() => Promise<unknown> | unknown)[] = [];

function walletClient(node: number, name: string): DaemonClient {
  const n = ltc.nodes[node]!;
  return new DaemonClient({ url: `${n.rpcUrl}wallet/${name}`, cookieFile: n.cookieFile });
}

beforeAll(async () => {
  [ltc, server] = await Promise.all([startLitecoinRegtest({ nodes: 2 }), startRedis()]);
  redis = connectRedis(server.url, 'test');
  poolWallet = walletClient(0, 'hw');
  minerWallet = walletClient(1, 'hw');
}, 120_000);
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
afterAll(async () => {
  redis?.disconnect();
  poolWallet?.close();
  minerWallet?.close();
  await Promise.all([ltc?.stop(), server?.stop()]);
});

/** A matured PROP block shared among `accounts` (difficulty i + 1 each). */
async function matured(keys: ReturnType<typeof testKeys>, accounts: string[], pool: string): Promise<void> {
  const reporter = await startReporter(redis, keys, ltc);
  try {
    await credit(
      reporter,
      accounts.map((a, i) => share(a, i + 1)),
    );
    const found = await findBlock(redis, keys, ltc, pool);
    await credit(reporter, [share(accounts[0]!, 1, found.hash)]);
    await reporter.pollBlocks();
    await ltc.mine(0, 99, pool);
    await ltc.sync();
    await reporter.pollBlocks();
  } finally {
    await reporter.close();
  }
}

/** A PROP payer's options, paying from `wallet` on node 0, run by hand (no schedule). */
function payerOptions(keys: ReturnType<typeof testKeys>, wallet: string, pool: string): PayerOptions {
  return {
    redis,
    keys,
    chain: CHAIN,
    coin: 'litecoin',
    network: 'regtest',
    wallet: { url: `${ltc.nodes[0]!.rpcUrl}wallet/${wallet}`, cookieFile: ltc.nodes[0]!.cookieFile },
    settings: {
      scheme: 'prop',
      pplnsFactor: 2,
      feePercent: 0,
      minimumPayoutSat: 1,
      intervalS: 3600,
      maturity: 100,
    },
    rewardAddresses: [pool],
    logger: quiet,
    schedule: false,
  };
}

async function payer(keys: ReturnType<typeof testKeys>, wallet: string, pool: string): Promise<Payer> {
  const p = createPayer(payerOptions(keys, wallet, pool));
  cleanups.push(() => p.close());
  await p.start();
  await p.elected(10_000);
  return p;
}

async function events(keys: ReturnType<typeof testKeys>, type: string): Promise<Record<string, unknown>[]> {
  const entries = (await redis.xrange(payoutKeys(keys, CHAIN).events, '-', '+')) as [string, string[]][];
  const out: Record<string, unknown>[] = [];
  for (const [, fields] of entries) {
    const f = new Map<string, string>();
    for (let i = 0; i + 1 < fields.length; i += 2) f.set(fields[i]!, fields[i + 1]!);
    if (f.get('type') === type) out.push(JSON.parse(f.get('data') ?? '{}') as Record<string, unknown>);
  }
  return out;
}

async function receivedSat(address: string): Promise<bigint> {
  return coinToSat(await minerWallet.call<number>('getreceivedbyaddress', [address, 1]));
}

describe('payments that cannot be made are held with a clear error and an event; the others are paid', () => {
  it('an address the daemon refuses is held; the other accounts are paid', async () => {
    const keys = testKeys();
    const k = payoutKeys(keys, CHAIN);
    const good = [
      await minerWallet.call<string>('getnewaddress'),
      await minerWallet.call<string>('getnewaddress'),
    ];
    const pool = await poolWallet.call<string>('getnewaddress');
    await matured(keys, ['not-an-address', ...good], pool);
    const p = await payer(keys, 'hw', pool);
    const run = await p.runOnce();
    expect(run.maturity.credited).toHaveLength(1);
    expect(run.pay).toMatchObject({ outcome: 'sent', accounts: 2 });
    expect(run.pay?.held).toEqual([
      { account: 'not-an-address', reason: expect.stringMatching(/refuses this address/) },
    ]);
    expect(await redis.hget(k.held, 'not-an-address')).toMatch(/refuses this address/);
    expect(await events(keys, 'payout.held')).toEqual([
      expect.objectContaining({ account: 'not-an-address' }),
    ]);
    const credits = await redis.hgetall(k.blockCredits((await redis.hkeys(k.shared))[0]!));
    expect(await redis.hget(k.balances, 'not-an-address')).toBe(credits['not-an-address']);
    await ltc.mine(0, 1, pool);
    await ltc.sync();
    for (const address of good) expect(await receivedSat(address)).toBe(BigInt(credits[address]!));
    expect((await auditPayouts(redis, k)).problems).toEqual([]);
  }, 180_000);

  it('a locked wallet: the batch fails with the reason and an event, nothing moves; once unlocked it pays', async () => {
    const keys = testKeys();
    const k = payoutKeys(keys, CHAIN);
    await ltc.rpc[0]!.call('createwallet', [
      'locked',
      false,
      false,
      'secret passphrase',
      false,
      false,
      false,
    ]);
    cleanups.push(() => ltc.rpc[0]!.call('unloadwallet', ['locked']));
    const locked = walletClient(0, 'locked');
    cleanups.push(() => locked.close());
    const funding = await locked.call<string>('getnewaddress');
    await poolWallet.call('sendtoaddress', [funding, 20]);
    const miners = [
      await minerWallet.call<string>('getnewaddress'),
      await minerWallet.call<string>('getnewaddress'),
    ];
    const pool = await poolWallet.call<string>('getnewaddress');
    await matured(keys, miners, pool); // the funding confirms on the way
    const p = await payer(keys, 'locked', pool);
    expect((await p.runOnce({ pay: false })).maturity.credited).toHaveLength(1);
    const before = await redis.hgetall(k.balances);
    const run = await p.runOnce();
    expect(run.pay).toMatchObject({ outcome: 'failed', error: expect.stringMatching(/wallet locked/) });
    const failed = await events(keys, 'payout.failed');
    expect(failed).toEqual([
      expect.objectContaining({ state: 'failed', error: expect.stringMatching(/wallet locked/) }),
    ]);
    expect(await redis.hgetall(k.balances)).toEqual(before);
    expect(await redis.get(k.open)).toBeNull();

    await locked.call('walletpassphrase', ['secret passphrase', 60]);
    const again = await p.runOnce();
    expect(again.pay).toMatchObject({ outcome: 'sent', accounts: 2 });
    await ltc.mine(0, 1, pool);
    await ltc.sync();
    for (const m of miners) expect(await receivedSat(m)).toBe(BigInt(before[m]!));
    const batches = Object.values(await redis.hgetall(k.batches)).map(
      (t) => (JSON.parse(t) as PaymentBatch).state,
    );
    expect(batches.sort()).toEqual(['failed', 'sent']);
    expect((await auditPayouts(redis, k)).problems).toEqual([]);
  }, 180_000);

  it('a wallet short of funds: nothing is sent, the accounts are held for this run with the reason and an event', async () => {
    const keys = testKeys();
    const k = payoutKeys(keys, CHAIN);
    await ltc.rpc[0]!.call('createwallet', ['empty', false, false, '', false, false, false]);
    cleanups.push(() => ltc.rpc[0]!.call('unloadwallet', ['empty']));
    const miners = [await minerWallet.call<string>('getnewaddress')];
    const pool = await poolWallet.call<string>('getnewaddress');
    await matured(keys, miners, pool);
    const p = await payer(keys, 'empty', pool);
    expect((await p.runOnce({ pay: false })).maturity.credited).toHaveLength(1);
    const before = await redis.hgetall(k.balances);
    const run = await p.runOnce();
    expect(run.pay).toMatchObject({ outcome: 'held', error: expect.stringMatching(/short of funds/) });
    expect(run.pay?.held.map((h) => h.account)).toEqual(miners);
    expect(await events(keys, 'payout.held')).toEqual([
      expect.objectContaining({ reason: expect.stringMatching(/short of funds/) }),
    ]);
    expect(await redis.hgetall(k.balances)).toEqual(before);
    expect(await redis.hlen(k.batches)).toBe(0);
    expect((await auditPayouts(redis, k)).ok).toBe(true);
  }, 180_000);
});

describe('one payer at a time, whatever the ids', () => {
  it('a second process under the same payer id does not take the lease beside the first', async () => {
    const keys = testKeys();
    const pool = await poolWallet.call<string>('getnewaddress');
    const start = async () => {
      const p = createPayer({ ...payerOptions(keys, 'hw', pool), id: 'payer-1', leaseTtlMs: 2000 });
      cleanups.push(() => p.close());
      await p.start();
      return p;
    };
    const first = await start();
    await first.elected(10_000);
    const second = await start();
    // Several campaigns (one each 250 ms) while the first holds the lease: none wins it.
    await expect(second.elected(1500)).rejects.toThrow(/not taken/);
    await expect(second.runOnce()).rejects.toThrow(/does not hold the payer lease/);
    expect(first.stats().leader).toBe(true);
    // The first gone, the second takes over.
    await first.close();
    await second.elected(10_000);
    expect(second.stats().leader).toBe(true);
  }, 60_000);
});
