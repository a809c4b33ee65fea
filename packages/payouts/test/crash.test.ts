import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type RedisClient, connectRedis } from '@hashwire/registry';
import {
  type LitecoinRegtest,
  type ManagedProcess,
  type RedisServer,
  makeTempDir,
  spawnManaged,
  startLitecoinRegtest,
  startRedis,
  waitFor,
} from '@hashwire/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { coinToSat } from '../src/amounts.js';
import { auditPayouts } from '../src/audit.js';
import { payoutKeys } from '../src/keys.js';
import { COMMENT_PREFIX, type FaultPoint, type PaymentBatch } from '../src/payer.js';
import { CHAIN, credit, findBlock, share, startReporter, testKeys } from './helpers.js';

const BIN = fileURLToPath(new URL('../dist/bin.js', import.meta.url));

let ltc: LitecoinRegtest;
let server: RedisServer;
let redis: RedisClient;
let logDir: string;
const cleanups: (() => Promise<unknown> | unknown)[] = [];

beforeAll(async () => {
  [ltc, server] = await Promise.all([startLitecoinRegtest({ nodes: 2 }), startRedis()]);
  redis = connectRedis(server.url, 'test');
  logDir = await makeTempDir('payouts-crash');
}, 120_000);
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
afterAll(async () => {
  redis?.disconnect();
  await Promise.all([ltc?.stop(), server?.stop()]);
});

/** A matured PROP block whose reward is shared among `miners` (addresses of the second wallet). */
async function maturedBalances(
  keys: ReturnType<typeof testKeys>,
  miners: string[],
  pool: string,
): Promise<void> {
  const reporter = await startReporter(redis, keys, ltc);
  try {
    await credit(
      reporter,
      miners.map((m, i) => share(m, i + 1)),
    );
    const found = await findBlock(redis, keys, ltc, pool);
    await credit(reporter, [share(miners[0]!, 1, found.hash)]);
    await reporter.pollBlocks();
    await ltc.mine(0, 99);
    await ltc.sync();
    await reporter.pollBlocks();
  } finally {
    await reporter.close();
  }
}

/** The payer bin, as an operator runs it; `killAt`: it SIGKILLs itself there. */
async function startPayerProcess(
  keys: ReturnType<typeof testKeys>,
  pool: string,
  name: string,
  killAt?: FaultPoint,
): Promise<ManagedProcess & { http: string }> {
  const node = ltc.nodes[0]!;
  const config = {
    id: name,
    chain: CHAIN,
    coin: 'litecoin',
    network: 'regtest',
    redisUrl: server.url,
    keyPrefix: keys.prefix,
    wallet: { url: node.rpcUrl, cookieFile: node.cookieFile },
    payments: { scheme: 'prop', feePercent: 2, minimumPayoutSat: 1, intervalS: 86_400, maturity: 100 },
    rewardAddresses: [pool],
    leaseTtlMs: 2000,
    maturityPollMs: 200,
    httpPortRange: [0, 0],
  };
  let ready: (http: string) => void = () => {};
  const readyLine = new Promise<string>((resolve) => {
    ready = resolve;
  });
  const proc = await spawnManaged(name, process.execPath, [BIN], {
    env: {
      ...process.env,
      HASHWIRE_PAYOUTS_CONFIG: JSON.stringify(config),
      ...(killAt ? { HASHWIRE_PAYOUTS_KILL_AT: killAt } : {}),
    },
    logFile: path.join(logDir, `${name}.log`),
    onLine: (line) => {
      if (line.includes('"ready":true')) ready((JSON.parse(line) as { http: string }).http);
    },
  });
  cleanups.push(() => proc.stop());
  const http = await Promise.race([
    readyLine,
    proc.exited.then(async (exit): Promise<string> => {
      throw new Error(`${name} exited ${JSON.stringify(exit)} before ready: ${await proc.logTail()}`);
    }),
  ]);
  return Object.assign(proc, { http });
}

/** Wallet transactions of node 0 carrying a payout comment of one of `batchIds`. */
async function walletPayments(batchIds: string[]): Promise<Set<string>> {
  const txs = await ltc.rpc[0]!.call<{ txid: string; category: string; comment?: string }[]>(
    'listtransactions',
    ['*', 1000, 0, true],
  );
  const comments = new Set(batchIds.map((id) => COMMENT_PREFIX + id));
  return new Set(
    txs.filter((t) => t.category === 'send' && t.comment && comments.has(t.comment)).map((t) => t.txid),
  );
}

describe('the payer killed at any point pays each account exactly once after a restart', () => {
  for (const point of ['before-send', 'after-send', 'during-record'] as const) {
    it(`SIGKILL ${point}`, async () => {
      const keys = testKeys();
      const k = payoutKeys(keys, CHAIN);
      const miners: string[] = [];
      for (let i = 0; i < 3; i++) miners.push(await ltc.rpc[1]!.call<string>('getnewaddress'));
      const pool = await ltc.rpc[0]!.call<string>('getnewaddress');
      await maturedBalances(keys, miners, pool);

      const first = await startPayerProcess(keys, pool, `payer-a-${point}`, point);
      await redis.set(k.payNow, '1', 'PX', 60_000);
      const exit = await first.exited;
      expect(exit.signal).toBe('SIGKILL');
      // What each miner is owed: the block's credits (the share-out ran before the payment).
      const [blockHash] = await redis.hkeys(k.shared);
      const credits = await redis.hgetall(k.blockCredits(blockHash!));
      const owed = new Map(miners.map((m) => [m, BigInt(credits[m] ?? '0')] as const));
      for (const sat of owed.values()) expect(sat > 0n).toBe(true);
      // Killed while recording: the script ran whole or not at all (it is atomic).
      const recorded = (await redis.get(k.open)) === null;
      if (point !== 'during-record') expect(recorded).toBe(false);
      for (const [miner, sat] of owed) {
        expect(BigInt((await redis.hget(k.balances, miner)) ?? '-1')).toBe(recorded ? 0n : sat);
      }
      const batchIds = await redis.zrange(k.batchIndex, 0, -1);
      expect(batchIds).toHaveLength(1);
      const sentBefore = await walletPayments(batchIds);
      if (point === 'before-send') expect(sentBefore.size).toBe(0);
      if (point === 'after-send') {
        expect(sentBefore.size).toBe(1);
        expect(await redis.get(k.open)).toBe(batchIds[0]); // sent, not recorded
      }

      const second = await startPayerProcess(keys, pool, `payer-b-${point}`);
      await redis.set(k.payNow, '1', 'PX', 60_000);
      type Stats = { leader: boolean; errors: number };
      const secondStats = async () => (await (await fetch(`${second.http}/stats`)).json()) as Stats;
      // Its paying runs (failed ones included), from its /metrics counter. Not /stats' lastRun:
      // the next maturity-only run (every maturityPollMs) replaces it within a second, and a
      // poll slower than that never saw the paying run (one run in five at load 30-45).
      const payingRuns = async () =>
        (await (await fetch(`${second.http}/metrics`)).text())
          .split('\n')
          .filter((line) => line.startsWith('hashwire_payout_runs_total{'))
          .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
      // Killed while recording, the batch is often recorded already: wait for the second payer
      // itself to have led and made the paying run it was asked for (pay-now consumed), so what
      // follows checks what it did, not what it had no chance to do yet.
      const batch = await waitFor(
        async () => {
          const text = await redis.hget(k.batches, batchIds[0]!);
          const b = text ? (JSON.parse(text) as PaymentBatch) : undefined;
          if (b?.state !== 'sent' || (await redis.get(k.open)) !== null) return undefined;
          const ran = (await payingRuns()) > 0;
          return (await secondStats()).leader && ran && (await redis.get(k.payNow)) === null ? b : undefined;
        },
        { timeoutMs: 60_000, what: 'the batch recorded as sent and the second payer’s paying run' },
      );
      expect(await redis.zrange(k.batchIndex, 0, -1)).toEqual(batchIds); // no second batch
      expect(await secondStats()).toMatchObject({ leader: true, errors: 0 });
      const sent = await walletPayments(batchIds);
      expect([...sent]).toEqual([batch.txid]); // one transaction, the recorded one

      await ltc.mine(0, 1);
      await ltc.sync();
      for (const [miner, sat] of owed) {
        expect(coinToSat(await ltc.rpc[1]!.call<number>('getreceivedbyaddress', [miner, 1])), miner).toBe(
          sat,
        );
        expect(await redis.hget(k.balances, miner)).toBe('0');
      }
      const audit = await auditPayouts(redis, k, (method, params) => ltc.rpc[0]!.call(method, params ?? []));
      expect(audit.problems).toEqual([]);
      expect(audit).toMatchObject({
        ok: true,
        batches: { sent: 1, failed: 0, open: null },
        walletChecked: 1,
      });
    }, 180_000);
  }
});
