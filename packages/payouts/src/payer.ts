import { randomBytes } from 'node:crypto';
import { DaemonError } from '@hashwire/chain';
import type { Logger } from '@hashwire/core';
import { EventType } from '@hashwire/protocol';
import type { RedisClient } from '@hashwire/registry';
import { coinToSat, satToCoin } from './amounts.js';
import type { PayoutKeys } from './keys.js';
import { type DaemonCall, FencedError } from './maturity.js';
import { runScript } from './scripts.js';
import { POOL_ACCOUNT, type PaymentSettings } from './settings.js';

/** Every payment transaction's wallet comment: this and the batch id. */
export const COMMENT_PREFIX = 'hashwire-payout ';

/** Points where a test kills the payer process (SIGKILL) to prove a restart pays exactly once. */
export type FaultPoint = 'before-send' | 'after-send' | 'during-record';

/** A payment batch as `payout:{chain}:batches` holds it (satoshis as decimal strings). */
export interface PaymentBatch {
  id: string;
  chain: string;
  state: 'intent' | 'sent' | 'failed';
  /** [account (its payout address), satoshis] */
  payments: [string, string][];
  totalSat: string;
  createdAt: number;
  /** The payer's fencing epoch, as text (it exceeds a double's integer precision in JSON). */
  epoch: string;
  txid?: string;
  sentAt?: number;
  error?: string;
  failedAt?: number;
}

export interface PayerContext {
  redis: RedisClient;
  keys: PayoutKeys;
  chain: string;
  /** Calls the paying wallet's daemon. */
  wallet: DaemonCall;
  settings: PaymentSettings;
  /** The fencing epoch while this process holds the payer lease; null once it does not. */
  epoch: () => number | null;
  eventsMaxLen: number;
  logger: Logger;
  /** Kept in the wallet above what a batch sends, for the transaction fee (satoshis). @defaultValue 1_000_000 */
  feeReserveSat?: bigint;
  faults?: (point: FaultPoint) => void | Promise<void>;
}

export interface PayResult {
  /** `sent`: a new batch paid; `reconciled`: an open batch found paid in the wallet and recorded;
   * `failed`: the daemon refused the batch (nothing sent); `ambiguous`: no answer from the daemon,
   * the batch stays open until the wallet shows what happened; `held`: accounts are due but none
   * could be paid (see `held`, `error`); `nothing`: no account to pay. */
  outcome: 'sent' | 'reconciled' | 'failed' | 'ambiguous' | 'held' | 'nothing';
  batchId?: string;
  txid?: string;
  paidSat?: string;
  accounts?: number;
  error?: string;
  /** Accounts over the minimum left out of this run, and why. */
  held: { account: string; reason: string }[];
}

/** The payer lost its lease (or was fenced) while acting; whatever it left open is reconciled by the next. */
export class NotPayerError extends Error {
  override readonly name = 'NotPayerError';
}

interface WalletTx {
  txid: string;
  category: string;
  comment?: string;
  abandoned?: boolean;
  time?: number;
}

/**
 * The wallet transaction of a batch, found by its comment among the wallet's own
 * transactions (newest first, back to an hour before the batch was made); null when the wallet
 * never sent it. A conflicted transaction (double-spent, never to confirm) does not count.
 */
export async function findBatchInWallet(
  wallet: DaemonCall,
  batchId: string,
  sinceMs: number,
): Promise<string | null> {
  const comment = COMMENT_PREFIX + batchId;
  const oldest = Math.floor(sinceMs / 1000) - 3600;
  const page = 200;
  for (let skip = 0; ; skip += page) {
    const txs = await wallet<WalletTx[]>('listtransactions', ['*', page, skip, true]);
    for (const tx of txs) {
      if (tx.category !== 'send' || tx.comment !== comment || tx.abandoned) continue;
      const detail = await wallet<{ confirmations: number }>('gettransaction', [tx.txid, true]);
      if (detail.confirmations >= 0) return tx.txid;
    }
    if (txs.length < page || txs.every((tx) => (tx.time ?? 0) < oldest)) return null;
  }
}

/**
 * One payment run: first an open batch (intent recorded, outcome unknown: the payer died or
 * the daemon did not answer) is settled from the wallet: recorded when the wallet has its
 * transaction, sent again under the same id when it does not. Then, if none was open, one new
 * batch pays every account over the minimum. An address the daemon refuses is held and the
 * run goes on without it.
 */
export async function payOnce(ctx: PayerContext): Promise<PayResult> {
  const held: PayResult['held'] = [];
  for (let attempt = 0; attempt < 3; attempt++) {
    const openId = await ctx.redis.get(ctx.keys.open);
    if (openId) {
      const batch = await readBatch(ctx, openId);
      const txid = await findBatchInWallet(ctx.wallet, batch.id, batch.createdAt);
      if (txid) {
        await record(ctx, batch, txid);
        return {
          outcome: 'reconciled',
          batchId: batch.id,
          txid,
          paidSat: batch.totalSat,
          accounts: batch.payments.length,
          held,
        };
      }
      ctx.logger.warn(
        { chain: ctx.chain, batchId: batch.id },
        'payouts: open batch not in the wallet; sending it now',
      );
      const result = await send(ctx, batch, held);
      if (result.outcome !== 'failed' || !result.retry) return result.result;
      continue;
    }
    const planned = await planBatch(ctx, held);
    if (!planned.batch) {
      return held.length > 0
        ? { outcome: 'held', held, ...(planned.error ? { error: planned.error } : {}) }
        : { outcome: 'nothing', held };
    }
    const batch = planned.batch;
    const result = await send(ctx, batch, held);
    if (result.outcome !== 'failed' || !result.retry) return result.result;
  }
  return { outcome: 'failed', error: 'addresses refused three times in one run', held };
}

async function readBatch(ctx: PayerContext, id: string): Promise<PaymentBatch> {
  const text = await ctx.redis.hget(ctx.keys.batches, id);
  if (!text) throw new Error(`payouts: open batch ${id} has no record in ${ctx.keys.batches}`);
  return JSON.parse(text) as PaymentBatch;
}

function currentEpoch(ctx: PayerContext): number {
  const epoch = ctx.epoch();
  if (epoch === null) throw new NotPayerError(`payouts: not the payer of ${ctx.chain} (lease lost)`);
  return epoch;
}

/** Picks the accounts to pay, holds what cannot be paid, records the intent. Null: nobody to pay. */
async function planBatch(
  ctx: PayerContext,
  held: PayResult['held'],
): Promise<{ batch: PaymentBatch | null; error?: string }> {
  const { redis, keys, settings } = ctx;
  const [balances, heldNow] = await Promise.all([redis.hgetall(keys.balances), redis.hgetall(keys.held)]);
  const minimum = BigInt(settings.minimumPayoutSat);
  const due: [string, bigint][] = [];
  for (const account of Object.keys(balances).sort()) {
    const sat = BigInt(balances[account] as string);
    if (account === POOL_ACCOUNT || sat < minimum || sat <= 0n) continue;
    const valid = await ctx.wallet<{ isvalid: boolean }>('validateaddress', [account]);
    if (!valid.isvalid) {
      const reason = 'the daemon refuses this address (validateaddress: invalid)';
      if (heldNow[account] !== reason) {
        await redis.hset(keys.held, account, reason);
        await emit(ctx, EventType.PayoutHeld, { account, reason, balanceSat: sat.toString() });
        ctx.logger.warn(
          { chain: ctx.chain, account },
          'payouts: address refused by the daemon; payments held',
        );
      }
      held.push({ account, reason });
      continue;
    }
    if (heldNow[account]) await redis.hdel(keys.held, account);
    due.push([account, sat]);
  }
  if (due.length === 0) return { batch: null };
  // Pay what the wallet can: the largest balances first, the rest waits for the next run.
  const spendable =
    coinToSat(await ctx.wallet<number>('getbalance', ['*', 1])) - (ctx.feeReserveSat ?? 1_000_000n);
  due.sort((a, b) => (a[1] === b[1] ? (a[0] < b[0] ? -1 : 1) : a[1] > b[1] ? -1 : 1));
  const payments: [string, string][] = [];
  let total = 0n;
  for (const [account, sat] of due) {
    if (total + sat > spendable) {
      held.push({ account, reason: 'insufficient funds in the wallet for this run' });
      continue;
    }
    payments.push([account, sat.toString()]);
    total += sat;
  }
  if (payments.length === 0) {
    const error = `wallet short of funds: spendable ${satToCoin(spendable < 0n ? 0n : spendable)}, smallest payment due ${satToCoin(due[due.length - 1]?.[1] ?? 0n)}`;
    await emit(ctx, EventType.PayoutHeld, { reason: error, accounts: due.map(([account]) => account) });
    ctx.logger.error({ chain: ctx.chain, accounts: due.length }, `payouts: ${error}`);
    return { batch: null, error };
  }
  if (held.some((h) => h.reason.startsWith('insufficient'))) {
    await emit(ctx, EventType.PayoutHeld, {
      reason: 'insufficient funds in the wallet for this run',
      accounts: held.filter((h) => h.reason.startsWith('insufficient')).map((h) => h.account),
    });
  }
  const epoch = currentEpoch(ctx);
  const batch: PaymentBatch = {
    id: `${Date.now().toString(36)}-${randomBytes(6).toString('hex')}`,
    chain: ctx.chain,
    state: 'intent',
    payments,
    totalSat: total.toString(),
    createdAt: Date.now(),
    epoch: String(epoch),
  };
  const args: (string | number)[] = [
    epoch,
    batch.id,
    JSON.stringify(batch),
    batch.createdAt,
    payments.length,
  ];
  for (const [account, sat] of payments) args.push(account, sat);
  const reply = (await runScript(
    redis,
    'pay-intent',
    [keys.open, keys.batches, keys.batchIndex, keys.balances, keys.fence],
    args,
  )) as [number, string?];
  if (reply[0] === -1) throw new FencedError(epoch);
  if (reply[0] === 0) throw new Error(`payouts: batch ${reply[1]} is open (another payer run?)`);
  if (reply[0] === -2) throw new Error(`payouts: balance of ${reply[1]} changed under the plan`);
  ctx.logger.info(
    { chain: ctx.chain, batchId: batch.id, accounts: payments.length, totalSat: batch.totalSat },
    'payouts: batch intent recorded',
  );
  return { batch };
}

type SendOutcome =
  | { outcome: 'done'; result: PayResult }
  | { outcome: 'failed'; retry: boolean; result: PayResult };

/** Sends an intent's batch (after checking the wallet has not already) and records it. */
async function send(ctx: PayerContext, batch: PaymentBatch, held: PayResult['held']): Promise<SendOutcome> {
  currentEpoch(ctx);
  await ctx.faults?.('before-send');
  const already = await findBatchInWallet(ctx.wallet, batch.id, batch.createdAt);
  if (already) {
    await record(ctx, batch, already);
    return {
      outcome: 'done',
      result: {
        outcome: 'reconciled',
        batchId: batch.id,
        txid: already,
        paidSat: batch.totalSat,
        accounts: batch.payments.length,
        held,
      },
    };
  }
  const amounts: Record<string, string> = {};
  for (const [account, sat] of batch.payments) amounts[account] = satToCoin(BigInt(sat));
  // The last check before money moves: a payer that lost its lease stops here.
  currentEpoch(ctx);
  let txid: string;
  try {
    txid = await ctx.wallet<string>('sendmany', ['', amounts, 1, COMMENT_PREFIX + batch.id]);
  } catch (error) {
    if (!(error instanceof DaemonError)) {
      // No answer: the wallet may or may not have sent it. The batch stays open; the next run
      // looks for it in the wallet before anything is sent again.
      ctx.logger.error(
        { chain: ctx.chain, batchId: batch.id, err: error },
        'payouts: sendmany got no answer; batch left open',
      );
      return {
        outcome: 'done',
        result: { outcome: 'ambiguous', batchId: batch.id, error: (error as Error).message, held },
      };
    }
    return { outcome: 'failed', ...(await refused(ctx, batch, error, held)) };
  }
  await ctx.faults?.('after-send');
  await record(ctx, batch, txid);
  ctx.logger.info(
    { chain: ctx.chain, batchId: batch.id, txid, accounts: batch.payments.length, totalSat: batch.totalSat },
    'payouts: batch sent',
  );
  return {
    outcome: 'done',
    result: {
      outcome: 'sent',
      batchId: batch.id,
      txid,
      paidSat: batch.totalSat,
      accounts: batch.payments.length,
      held,
    },
  };
}

/** The daemon refused `sendmany` (nothing was sent): close the batch, say why, hold bad addresses. */
async function refused(
  ctx: PayerContext,
  batch: PaymentBatch,
  error: DaemonError,
  held: PayResult['held'],
): Promise<{ retry: boolean; result: PayResult }> {
  const reason = describeRefusal(error);
  const epoch = currentEpoch(ctx);
  const reply = (await runScript(
    ctx.redis,
    'pay-fail',
    [ctx.keys.open, ctx.keys.batches, ctx.keys.fence, ctx.keys.events],
    [epoch, batch.id, reason, Date.now(), ctx.eventsMaxLen],
  )) as number;
  if (reply === -1) throw new FencedError(epoch);
  ctx.logger.error(
    { chain: ctx.chain, batchId: batch.id, code: error.code },
    `payouts: batch refused: ${reason}`,
  );
  let retry = false;
  if (error.code === -5) {
    // Which address: the ones validateaddress refuses are held; the others go in the next batch.
    for (const [account] of batch.payments) {
      const valid = await ctx.wallet<{ isvalid: boolean }>('validateaddress', [account]);
      if (valid.isvalid) continue;
      const why = `the daemon refuses this address: ${error.message}`;
      await ctx.redis.hset(ctx.keys.held, account, why);
      await emit(ctx, EventType.PayoutHeld, { account, reason: why });
      held.push({ account, reason: why });
      retry = true;
    }
  }
  return { retry, result: { outcome: 'failed', batchId: batch.id, error: reason, held } };
}

function describeRefusal(error: DaemonError): string {
  switch (error.code) {
    case -13:
      return `wallet locked: unlock it (walletpassphrase) to pay (${error.message})`;
    case -6:
      return `wallet short of funds (${error.message})`;
    case -5:
      return `an address was refused (${error.message})`;
    default:
      return `sendmany refused, code ${error.code}: ${error.message}`;
  }
}

async function record(ctx: PayerContext, batch: PaymentBatch, txid: string): Promise<void> {
  const epoch = currentEpoch(ctx);
  const recording = runScript(
    ctx.redis,
    'pay-record',
    [
      ctx.keys.open,
      ctx.keys.batches,
      ctx.keys.balances,
      ctx.keys.ledger,
      ctx.keys.fence,
      ctx.keys.events,
      ctx.keys.paymentsIndex,
    ],
    [epoch, batch.id, txid, Date.now(), ctx.eventsMaxLen],
  );
  await ctx.faults?.('during-record');
  const reply = (await recording) as number;
  if (reply === -1) throw new FencedError(epoch);
  if (reply === -2)
    throw new Error(`payouts: batch ${batch.id} vanished before its txid ${txid} was recorded`);
}

async function emit(ctx: PayerContext, type: string, data: Record<string, unknown>): Promise<void> {
  await ctx.redis.xadd(
    ctx.keys.events,
    'MAXLEN',
    '~',
    String(ctx.eventsMaxLen),
    '*',
    'type',
    type,
    'ts',
    String(Date.now()),
    'data',
    JSON.stringify({ chain: ctx.chain, ...data }),
  );
}
