// Issue 19's acceptance, PPLNS and PROP: five sim miners of different hash rates mine through HAProxy
// (real jobmanagers, stratum servers and reporters writing the share window), their blocks are
// matured, and the payer pays from the pool's wallet. Each miner's own wallet (the second node)
// must receive exactly what the scheme gives, computed here from the reporters' share log (PPLNS)
// or the blocks' closed rounds (PROP) and the blocks themselves, to the satoshi; the audit balances.
import { createLogger } from '@hashwire/core';
import { auditPayouts, createPayer, payoutKeys } from '@hashwire/payouts';
import { waitFor } from '@hashwire/testkit';
import { describe, expect, it } from 'vitest';
import { CHAIN, startTestPool } from './pool-harness.js';

/** Share difficulty: dyadic, so every sum is exact. On regtest every share is also a block. */
const DIFF = 2 ** -6;
const RATES = [200, 400, 600, 800, 1000];
const FACTOR = 1000;
const FEE_BP = 100n;
const DIFF1 = 0xffffn << 208n;

/** An amount as the daemon gives it (a double with 8 decimals) in satoshis, by its decimal text. */
function sat(value: number): bigint {
  const [whole, fraction = ''] = value.toFixed(8).split('.');
  return BigInt(whole!) * 100_000_000n + BigInt(fraction.padEnd(8, '0'));
}

/** N in 10^-8 difficulty: factor × diff1 × 65536 / target, as docs/payouts.md gives it. */
function windowWeight(bits: string): bigint {
  const compact = Number.parseInt(bits, 16);
  const target = BigInt(compact & 0xffffff) * 256n ** BigInt((compact >>> 24) - 3);
  return (BigInt(FACTOR * 10_000) * DIFF1 * 65536n * 100_000_000n) / (target * 10_000n);
}

interface LogEntry {
  shares: { shareId: string; account: string; weight: bigint }[];
}

describe.each(['pplns', 'prop'] as const)('payouts end to end (issue 19): %s', (scheme) => {
  it('5 sim miners through HAProxy; each wallet receives exactly its share minus the fee; the audit balances', async () => {
    const pool = await startTestPool({ diff: DIFF, reporterExtra: { shareWindow: scheme === 'pplns' } });
    const { ltc, redis, keys } = pool;
    const k = payoutKeys(keys, CHAIN);
    const miners: string[] = [];
    for (let i = 0; i < RATES.length; i++)
      miners.push(await ltc.rpc[1]!.call<string>('getnewaddress', ['', 'bech32']));
    const feeAddress = await ltc.rpc[1]!.call<string>('getnewaddress', ['', 'bech32']);
    const groups = [];
    for (let i = 0; i < RATES.length; i++) {
      groups.push(
        await pool.startMiners({
          tag: `m${i}`,
          workers: 1,
          firstAddress: 20 + i,
          hashesPerSecond: RATES[i]!,
          username: () => `${miners[i]}.rig`,
        }),
      );
    }
    // Mine until the pool found a dozen blocks and every miner found one of them: each miner then
    // has a share (its block's) in a block's window, whatever the window's size, so each is paid.
    // (A dozen blocks alone left the slowest miner, 1/15 of the hashrate, out of every window in
    // one CI run under load.)
    await waitFor(
      async () => {
        const accepted = Object.values(await redis.hgetall(k.blocks))
          .map((t) => JSON.parse(t) as { state: string; account?: string })
          .filter((r) => r.state === 'accepted');
        const finders = new Set(accepted.map((r) => r.account));
        return accepted.length >= 12 && miners.every((m) => finders.has(m));
      },
      { timeoutMs: 180_000, what: 'a dozen blocks, one at least found by every miner' },
    );
    await Promise.all(groups.map((g) => g.miners.stop()));
    // Everything spooled is credited and every accepted block's round is closed.
    await waitFor(
      async () => {
        const records = Object.values(await redis.hgetall(k.blocks)).map(
          (t) => JSON.parse(t) as { hash: string; state: string; round?: unknown },
        );
        if (records.some((r) => r.state === 'submitted')) return false;
        const accepted = records.filter((r) => r.state === 'accepted');
        if (accepted.some((r) => !r.round)) return false;
        if (scheme === 'prop') return (await redis.hlen(keys.candidates(CHAIN))) === 0;
        const found =
          accepted.length > 0 ? await redis.hmget(k.windowFound, ...accepted.map((r) => r.hash)) : [];
        return found.every((f) => f !== null) && (await redis.hlen(keys.candidates(CHAIN))) === 0;
      },
      { timeoutMs: 60_000, what: 'every block settled' },
    );
    await ltc.mine(0, 100);
    await ltc.sync();

    const node = ltc.nodes[0]!;
    const payer = createPayer({
      redis,
      keys,
      chain: CHAIN,
      coin: 'litecoin',
      network: 'regtest',
      wallet: { url: node.rpcUrl, cookieFile: node.cookieFile },
      settings: {
        scheme: 'pplns',
        pplnsFactor: FACTOR,
        feePercent: 1,
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
      const shared = await payer.runOnce({ pay: false });
      const records = Object.values(await redis.hgetall(k.blocks)).map(
        (t) => JSON.parse(t) as { hash: string; state: string; round: { shareId: string } },
      );
      const accepted = records.filter((r) => r.state === 'accepted' || r.state === 'confirmed');
      expect(shared.maturity.credited.sort()).toEqual(accepted.map((r) => r.hash).sort());
      expect(shared.maturity.waiting).toBe(0);

      // The expectation, from the reporters' share log (one entry per credited request, in
      // the window's order) and the blocks, with the formulas of docs/payouts.md.
      const log: LogEntry[] = (
        (await redis.xrange(keys.shareLog(CHAIN), '-', '+')) as [string, string[]][]
      ).map(([, fields]) => {
        const text = fields[fields.indexOf('shares') + 1] ?? '';
        return {
          shares: text
            .split('\n')
            .filter((line) => line !== '')
            .map((line) => {
              const [shareId, account, , diff] = line.split('\t');
              return { shareId: shareId!, account: account!, weight: BigInt(Math.round(Number(diff) * 1e8)) };
            }),
        };
      });
      const expected = new Map<string, bigint>();
      let rewards = 0n;
      let credited = 0n;
      for (const record of accepted) {
        const block = await ltc.rpc[0]!.call<{
          bits: string;
          tx: { vout: { value: number; scriptPubKey: { address?: string; addresses?: string[] } }[] }[];
        }>('getblock', [record.hash, 2]);
        let reward = 0n;
        for (const out of block.tx[0]!.vout) {
          const address = out.scriptPubKey.address ?? out.scriptPubKey.addresses?.[0];
          if (address === pool.payout) reward += sat(out.value);
        }
        rewards += reward;
        const weights = new Map<string, bigint>();
        if (scheme === 'prop') {
          for (const [account, diff] of Object.entries(
            await redis.hgetall(keys.closedRound(CHAIN, record.hash)),
          )) {
            weights.set(account, BigInt(Math.round(Number(diff) * 1e8)));
          }
        }
        const at = log.findIndex((e) => e.shares.some((s) => s.shareId === record.round.shareId));
        expect(at, `share log entry of block ${record.hash}`).toBeGreaterThanOrEqual(0);
        let remaining = scheme === 'pplns' ? windowWeight(block.bits) : 0n;
        for (let i = at; i >= 0 && remaining > 0n; i--) {
          const perAccount = new Map<string, bigint>();
          let entryWeight = 0n;
          for (const s of log[i]!.shares) {
            perAccount.set(s.account, (perAccount.get(s.account) ?? 0n) + s.weight);
            entryWeight += s.weight;
          }
          if (entryWeight === 0n) continue;
          const whole = entryWeight <= remaining;
          for (const [account, w] of perAccount) {
            const counted = whole ? w : (w * remaining) / entryWeight;
            weights.set(account, (weights.get(account) ?? 0n) + counted);
          }
          remaining = whole ? remaining - entryWeight : 0n;
        }
        let total = 0n;
        for (const w of weights.values()) total += w;
        const pot = reward - (reward * FEE_BP) / 10_000n;
        for (const [account, w] of weights) {
          const c = (pot * w) / total;
          expected.set(account, (expected.get(account) ?? 0n) + c);
          credited += c;
        }
      }
      const balances = await redis.hgetall(k.balances);
      for (const miner of miners) {
        expect(expected.get(miner) ?? 0n, `${miner} has blocks in its windows`).toBeGreaterThan(0n);
        expect(BigInt(balances[miner] ?? '0'), miner).toBe(expected.get(miner));
      }
      expect(BigInt(balances[feeAddress] ?? '0')).toBe(rewards - credited);

      const paid = await payer.runOnce({ pay: true });
      expect(paid.pay).toMatchObject({ outcome: 'sent', accounts: miners.length + 1 });
      await ltc.mine(0, 1);
      await ltc.sync();
      for (const miner of miners) {
        expect(sat(await ltc.rpc[1]!.call<number>('getreceivedbyaddress', [miner, 1])), miner).toBe(
          expected.get(miner),
        );
      }
      expect(sat(await ltc.rpc[1]!.call<number>('getreceivedbyaddress', [feeAddress, 1]))).toBe(
        rewards - credited,
      );
      const audit = await auditPayouts(redis, k, (method, params) => ltc.rpc[0]!.call(method, params ?? []));
      expect(audit.problems).toEqual([]);
      expect(audit).toMatchObject({
        ok: true,
        rewardsSat: rewards.toString(),
        balancesSat: '0',
        walletChecked: 1,
      });
    } finally {
      await payer.close();
    }
  }, 400_000);
});
