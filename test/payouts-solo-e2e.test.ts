// Issue 19's acceptance, SOLO: sim miners mine through HAProxy (real jobmanagers and stratum
// servers) on a chain paying SOLO. Every block a miner finds must pay that miner's own address in
// its coinbase (an address of the second node's wallet: bech32 or legacy base58), less the pool
// fee, which goes to the fee address in a second output; litecoind accepted it, the finder's wallet
// sees the immature coinbase and, after maturity, can spend it. The payer shares none of it out
// (the reward never reached the pool's wallet) and the audit balances.
import { createLogger } from '@hashwire/core';
import { auditPayouts, createPayer, payoutKeys } from '@hashwire/payouts';
import { waitFor } from '@hashwire/testkit';
import { describe, expect, it } from 'vitest';
import { CHAIN, startTestPool } from './pool-harness.js';

/** On regtest every share is also a block. */
const DIFF = 2 ** -6;
const FEE_PERCENT = 1.5;
const FEE_BP = 150n;
const RATES = [300, 600, 900];

/** An amount as the daemon gives it (a double with 8 decimals) in satoshis, by its decimal text. */
function sat(value: number): bigint {
  const [whole, fraction = ''] = value.toFixed(8).split('.');
  return BigInt(whole!) * 100_000_000n + BigInt(fraction.padEnd(8, '0'));
}

interface BlockRecord {
  hash: string;
  state: string;
  account?: string;
  worker?: string;
  payoutAddress?: string;
}

interface Vout {
  value: number;
  scriptPubKey: { type: string; address?: string; addresses?: string[] };
}

describe('payouts end to end (issue 19): solo', () => {
  it('each found block pays its finder in the coinbase, the fee to the fee address; litecoind accepts it', async () => {
    const pool = await startTestPool({ diff: DIFF, solo: { feePercent: FEE_PERCENT } });
    const { ltc, redis, keys } = pool;
    const feeAddress = pool.feeAddress!;
    const k = payoutKeys(keys, CHAIN);
    const wallet = ltc.rpc[1]!;
    // One legacy (base58) address among the bech32 ones.
    const miners = [
      await wallet.call<string>('getnewaddress', ['', 'bech32']),
      await wallet.call<string>('getnewaddress', ['', 'legacy']),
      await wallet.call<string>('getnewaddress', ['', 'bech32']),
    ];
    const groups = [];
    for (let i = 0; i < miners.length; i++) {
      groups.push(
        await pool.startMiners({
          tag: `s${i}`,
          workers: 1,
          firstAddress: 30 + i,
          hashesPerSecond: RATES[i]!,
          username: () => `${miners[i]}.rig${i}`,
        }),
      );
    }
    const records = async () =>
      Object.values(await redis.hgetall(k.blocks)).map((t) => JSON.parse(t) as BlockRecord);
    await waitFor(
      async () => {
        const accepted = (await records()).filter((r) => r.state === 'accepted');
        return miners.every((m) => accepted.filter((r) => r.account === m).length >= 2);
      },
      { timeoutMs: 120_000, what: 'two accepted blocks from every miner' },
    );
    await Promise.all(groups.map((g) => g.miners.stop()));
    await waitFor(async () => (await records()).every((r) => r.state !== 'submitted'), {
      timeoutMs: 60_000,
      what: 'every block record settled',
    });
    await ltc.sync();

    const accepted = (await records()).filter((r) => r.state === 'accepted');
    const expectedByMiner = new Map<string, bigint>();
    let fees = 0n;
    for (const record of accepted) {
      // Recorded with its finder, and the address its coinbase paid.
      expect(miners).toContain(record.account);
      expect(record.payoutAddress).toBe(record.account);
      const block = await ltc.rpc[0]!.call<{ confirmations: number; tx: { vout: Vout[] }[] }>('getblock', [
        record.hash,
        2,
      ]);
      expect(block.confirmations, `${record.hash} is in the main chain`).toBeGreaterThan(0);
      const outs = block.tx[0]!.vout;
      const paying = outs.filter((o) => o.scriptPubKey.type !== 'nulldata');
      const addressOf = (o: Vout) => o.scriptPubKey.address ?? o.scriptPubKey.addresses?.[0];
      // The finder first, then the fee output; nothing to the pool's own address.
      expect(paying.map(addressOf)).toEqual([record.account, feeAddress]);
      const finderSat = sat(paying[0]!.value);
      const feeSat = sat(paying[1]!.value);
      const total = finderSat + feeSat;
      expect(feeSat).toBe((total * FEE_BP) / 10_000n);
      expect(finderSat).toBe(total - feeSat);
      expectedByMiner.set(record.account!, (expectedByMiner.get(record.account!) ?? 0n) + finderSat);
      fees += feeSat;
    }

    // The finder's wallet sees each of its coinbases, immature.
    const immature = async (address: string) => {
      const txs = await wallet.call<
        { address?: string; category: string; amount: number; confirmations: number }[]
      >('listtransactions', ['*', 100_000, 0, true]);
      return txs
        .filter((t) => t.address === address && t.category === 'immature' && t.confirmations > 0)
        .reduce((n, t) => n + sat(t.amount), 0n);
    };
    for (const miner of miners) {
      expect(expectedByMiner.get(miner) ?? 0n, miner).toBeGreaterThan(0n);
      expect(await immature(miner), `${miner} immature`).toBe(expectedByMiner.get(miner));
    }

    // Matured, the coinbases are the miners' to spend; the fee outputs the fee address's.
    await ltc.mine(0, 100);
    await ltc.sync();
    const spendable = async (address: string) =>
      (await wallet.call<{ amount: number }[]>('listunspent', [1, 9_999_999, [address]])).reduce(
        (n, u) => n + sat(u.amount),
        0n,
      );
    for (const miner of miners) expect(await spendable(miner), miner).toBe(expectedByMiner.get(miner));
    expect(await spendable(feeAddress)).toBe(fees);

    // The ledger shares none of it out: each block is void as SOLO, and the audit balances.
    const node = ltc.nodes[0]!;
    const payer = createPayer({
      redis,
      keys,
      chain: CHAIN,
      coin: 'litecoin',
      network: 'regtest',
      wallet: { url: node.rpcUrl, cookieFile: node.cookieFile },
      settings: {
        scheme: 'solo',
        pplnsFactor: 2,
        feePercent: FEE_PERCENT,
        feeAddress,
        minimumPayoutSat: 1,
        intervalS: 3600,
        maturity: 100,
      },
      rewardAddresses: [pool.payout],
      logger: createLogger({ name: 'payouts', level: 'warn' }),
      schedule: false,
    });
    try {
      await payer.start();
      await payer.elected(10_000);
      const run = await payer.runOnce({ pay: true });
      // Blocks that lost a race (stale, orphaned) are void too, as under any scheme.
      const all = await records();
      expect(run.maturity.voided.sort()).toEqual(all.map((r) => r.hash).sort());
      expect(run.maturity.credited).toEqual([]);
      expect(await redis.hgetall(k.balances)).toEqual({});
      const shareOuts = await redis.hgetall(k.shared);
      for (const record of accepted) {
        expect(JSON.parse(shareOuts[record.hash]!)).toMatchObject({
          scheme: 'solo',
          state: 'void',
          rewardSat: '0',
        });
      }
      const audit = await auditPayouts(redis, k, (method, params) => ltc.rpc[0]!.call(method, params ?? []));
      expect(audit.problems).toEqual([]);
      expect(audit).toMatchObject({ ok: true, rewardsSat: '0', balancesSat: '0' });
    } finally {
      await payer.close();
    }
  }, 400_000);
});
