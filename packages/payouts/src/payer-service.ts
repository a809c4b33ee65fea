import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { DaemonClient, type DaemonClientOptions, getChainParams } from '@hashwire/chain';
import { type Logger, createLogger } from '@hashwire/core';
import { type KeyBuilder, createKeyBuilder } from '@hashwire/protocol';
import { type Leadership, type RedisClient, leaseLeadership } from '@hashwire/registry';
import { WEIGHT_PER_DIFF } from './amounts.js';
import { type PayoutKeys, payoutKeys } from './keys.js';
import { type DaemonCall, FencedError, type MaturityResult, shareOutMatured } from './maturity.js';
import { type FaultPoint, NotPayerError, type PayResult, payOnce } from './payer.js';
import type { PaymentSettings } from './settings.js';
import { pplnsWindowWeight } from './window.js';

/** A found block with no record after this is not waited for (see updateWindowKeep). */
const ORPHAN_CANDIDATE_MS = 86_400_000;

export interface PayerOptions {
  redis: RedisClient;
  /** @defaultValue createKeyBuilder() */
  keys?: KeyBuilder;
  chain: string;
  coin: string;
  network: string;
  /** The daemon whose wallet pays (and which the payer asks about blocks). */
  wallet: DaemonClient | DaemonClientOptions;
  settings: PaymentSettings;
  /** Coinbase outputs to these addresses are a block's reward. @defaultValue every coinbase output */
  rewardAddresses?: readonly string[];
  /** @defaultValue `payer-<random>` */
  id?: string;
  /** Lease of the one payer of a chain. @defaultValue 10_000 */
  leaseTtlMs?: number;
  /** How often matured blocks are shared out. @defaultValue 10_000 */
  maturityPollMs?: number;
  /** @defaultValue 100_000 */
  eventsMaxLen?: number;
  /** @defaultValue createLogger({ name: 'payouts' }) */
  logger?: Logger;
  /** Run on the schedule (and on pay-now); false: only `runOnce` acts. @defaultValue true */
  schedule?: boolean;
  /** Called after each scheduled run (share-out only, or share-out and payment), or its error. */
  onRun?: (run: NonNullable<PayerStats['lastRun']>) => void;
  /** Called when this process takes the lease (`true`, its epoch) or loses it (`false`, 0). */
  onLeadership?: (leading: boolean, epoch: number) => void;
  /** Test hook: called at the points a crash test kills the process. */
  faults?: (point: FaultPoint) => void | Promise<void>;
}

export interface PayerStats {
  leader: boolean;
  epoch: number | null;
  runs: number;
  errors: number;
  lastRun: { at: number; maturity?: MaturityResult; pay?: PayResult; error?: string } | null;
}

export interface Payer {
  readonly id: string;
  readonly keys: PayoutKeys;
  /** Campaigns for the payer lease and runs on its schedule. */
  start(): Promise<void>;
  /** One run now: share out matured blocks, then (with `pay`) pay. Needs the lease. */
  runOnce(options?: { pay?: boolean }): Promise<{ maturity: MaturityResult; pay?: PayResult }>;
  /** Resolves once this process holds the lease (or rejects after `timeoutMs`). */
  elected(timeoutMs: number): Promise<number>;
  stats(): PayerStats;
  close(): Promise<void>;
}

/**
 * The payer of one chain: one process at a time holds its lease (`lease:{payouts:<chain>}`,
 * fencing epoch on every write). It shares out each block once mature and pays on a schedule,
 * or at once when `hashwire payouts pay-now` asks.
 */
export function createPayer(options: PayerOptions): Payer {
  const keyBuilder = options.keys ?? createKeyBuilder();
  const keys = payoutKeys(keyBuilder, options.chain);
  const id = options.id ?? `payer-${randomBytes(4).toString('hex')}`;
  const logger = options.logger ?? createLogger({ name: 'payouts' });
  const params = getChainParams(options.coin, options.network);
  const client = options.wallet instanceof DaemonClient ? options.wallet : new DaemonClient(options.wallet);
  const wallet: DaemonCall = (method, params) => client.call(method, params ?? []);
  const eventsMaxLen = options.eventsMaxLen ?? 100_000;
  const maturityPollMs = options.maturityPollMs ?? 10_000;
  const { settings, redis, chain } = options;
  const lease: Leadership = leaseLeadership({
    redis,
    keys: keyBuilder,
    group: `payouts:${chain}`,
    // The holder is this process, not only its id: a second process started under the same id
    // (`hashwire payouts run` beside `hashwire up`'s payer) must not take the lease as its own
    // and pay beside the first. A restarted payer waits for its old lease to lapse (leaseTtlMs).
    holder: `${id}#${process.pid}.${randomBytes(3).toString('hex')}`,
    ttlMs: options.leaseTtlMs ?? 10_000,
  });
  lease.on('error', (err) => logger.warn({ err, chain }, 'payouts: lease error'));
  lease.on('elected', (epoch: number) => {
    logger.info({ chain, id, epoch }, 'payouts: this process is the payer of the chain');
    options.onLeadership?.(true, epoch);
  });
  lease.on('deposed', (_epoch: number, reason: string) => {
    logger.info({ chain, id, reason }, 'payouts: no longer the payer of the chain');
    options.onLeadership?.(false, 0);
  });
  const stats: PayerStats = { leader: false, epoch: null, runs: 0, errors: 0, lastRun: null };
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<unknown> | null = null;
  let lastMaturityAt = 0;
  // The schedule runs from the last batch in Redis, so a payer restarted more often than
  // intervalS still pays (null: not read yet).
  let lastPayAt: number | null = null;

  const epochOf = () => lease.epoch;

  /** The trim keeps twice the largest window in sight: the tip's and every pending block's. */
  const updateWindowKeep = async () => {
    if (settings.scheme !== 'pplns') return;
    const best = await wallet<string>('getbestblockhash');
    const bits = [(await wallet<{ bits: string }>('getblockheader', [best])).bits];
    const pending = await redis.zrange(keys.windowPending, 0, -1);
    // A candidate whose block never got a record (its jobmanager died before writing it, and
    // the reporters gave the candidate up) would hold the trim back for ever: let it go after a day.
    if (pending.length > 0) {
      const [records, found] = await Promise.all([
        redis.hmget(keys.blocks, ...pending),
        redis.hmget(keys.windowFound, ...pending),
      ]);
      for (let i = 0; i < pending.length; i++) {
        const foundAtMs = Number((found[i] ?? '').split('-')[0]);
        if (records[i] === null && Date.now() - foundAtMs > ORPHAN_CANDIDATE_MS) {
          await redis.zrem(keys.windowPending, pending[i] as string);
          logger.warn(
            { chain, hash: pending[i] },
            'payouts: a block candidate without a record for a day; its window is no longer kept',
          );
        }
      }
    }
    for (const hash of pending) {
      try {
        bits.push((await wallet<{ bits: string }>('getblockheader', [hash])).bits);
      } catch {
        // a block the daemon does not know: nothing to size
      }
    }
    let largest = 0n;
    for (const b of bits) {
      const n = pplnsWindowWeight(b, settings.pplnsFactor, params.shareDiffMultiplier);
      if (n > largest) largest = n;
    }
    const keep = (2n * largest) / WEIGHT_PER_DIFF + 1n;
    await redis.set(keys.windowKeep, keep.toString());
  };

  const runOnce: Payer['runOnce'] = async ({ pay = true } = {}) => {
    const epoch = lease.epoch;
    if (epoch === null) throw new NotPayerError(`payouts: ${id} does not hold the payer lease of ${chain}`);
    await updateWindowKeep();
    const maturity = await shareOutMatured({
      redis,
      keys,
      chain,
      daemon: wallet,
      settings,
      shareDiffMultiplier: params.shareDiffMultiplier,
      rewardAddresses: new Set(options.rewardAddresses ?? []),
      epoch,
      eventsMaxLen,
      logger,
    });
    lastMaturityAt = Date.now();
    if (!pay) return { maturity };
    const result = await payOnce({
      redis,
      keys,
      chain,
      wallet,
      settings,
      epoch: epochOf,
      eventsMaxLen,
      logger,
      ...(options.faults ? { faults: options.faults } : {}),
    });
    lastPayAt = Date.now();
    return { maturity, pay: result };
  };

  const tick = async () => {
    if (!lease.isLeader()) return;
    const now = Date.now();
    if (lastPayAt === null) {
      const last = await redis.zrevrange(keys.batchIndex, 0, 0, 'WITHSCORES');
      lastPayAt = last.length === 2 ? Number(last[1]) : 0;
    }
    const askedNow = (await redis.get(keys.payNow)) !== null;
    const payDue = askedNow || now - lastPayAt >= settings.intervalS * 1000;
    if (!payDue && now - lastMaturityAt < maturityPollMs) return;
    stats.runs++;
    try {
      const result = await runOnce({ pay: payDue });
      stats.lastRun = { at: now, ...result };
      options.onRun?.(stats.lastRun);
    } catch (error) {
      stats.errors++;
      stats.lastRun = { at: now, error: (error as Error).message };
      options.onRun?.(stats.lastRun);
      if (error instanceof FencedError || error instanceof NotPayerError) {
        logger.warn({ chain, err: error }, 'payouts: no longer the payer');
      } else {
        logger.error({ chain, err: error }, 'payouts: run failed');
      }
    } finally {
      // Answered once the run is over, so `pay-now` reads the batch this run made.
      if (askedNow) await redis.del(keys.payNow);
    }
  };

  return {
    id,
    keys,
    async start() {
      await lease.start();
      if (options.schedule === false) return;
      timer = setInterval(() => {
        if (running) return;
        // A failed Redis read before the run (Redis away) is logged; the next second tries again.
        running = tick()
          .catch((error: unknown) => logger.warn({ chain, err: error }, 'payouts: schedule check failed'))
          .finally(() => {
            running = null;
          });
      }, 1000);
    },
    runOnce,
    async elected(timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        await lease.tick();
        const epoch = lease.epoch;
        if (epoch !== null) return epoch;
        if (Date.now() >= deadline) {
          throw new NotPayerError(`payouts: payer lease of ${chain} not taken within ${timeoutMs} ms`);
        }
        await delay(Math.min(250, Math.max(1, deadline - Date.now())));
      }
    },
    stats() {
      return { ...stats, leader: lease.isLeader(), epoch: lease.epoch };
    },
    async close() {
      if (timer) clearInterval(timer);
      timer = null;
      await running;
      await lease.close();
      if (!(options.wallet instanceof DaemonClient)) client.close();
    },
  };
}
