import type { Logger } from '@hashwire/core';
import type { RedisClient } from '@hashwire/registry';
import { coinToSat } from './amounts.js';
import type { PayoutKeys } from './keys.js';
import { runScript } from './scripts.js';
import { POOL_ACCOUNT, type PaymentSettings } from './settings.js';
import { computeShareOut, feePercentToBasisPoints } from './share-out.js';
import { pplnsWindowWeight, readPplnsWindow, roundWeights } from './window.js';

/** What the payouts read of a block record in `blocks:{chain}` (written by jobmanagers and reporters). */
interface BlockRecordView {
  hash: string;
  height: number;
  state: string;
  round?: { key: string; returned?: boolean };
  /** A SOLO block: the finder's address its coinbase paid (the jobmanager records it). */
  payoutAddress?: string;
}

/** Calls one daemon (the wallet's): `DaemonClient.call`'s shape. */
export type DaemonCall = <T>(method: string, params?: unknown[]) => Promise<T>;

export interface MaturityContext {
  redis: RedisClient;
  keys: PayoutKeys;
  chain: string;
  daemon: DaemonCall;
  settings: PaymentSettings;
  /** The chain's share-difficulty multiplier (65536 for scrypt coins). */
  shareDiffMultiplier: number;
  /** Coinbase outputs to these addresses are the reward; empty: every coinbase output with an address. */
  rewardAddresses: ReadonlySet<string>;
  /** The payer's fencing epoch. */
  epoch: number;
  eventsMaxLen: number;
  logger: Logger;
}

/** The record of a block's share-out in `payout:{chain}:blocks` (satoshis as decimal strings). */
export interface BlockShareOut {
  hash: string;
  height: number;
  /** `credited`: shared out; `void`: nothing to share (orphaned, rejected, stale, solo). */
  state: 'credited' | 'void';
  blockState: string;
  scheme: 'pplns' | 'prop' | 'solo';
  rewardSat: string;
  feeSat: string;
  remainderSat: string;
  feeAccount: string;
  accounts: number;
  creditedSat: string;
  /** Σ weight (10^-8 difficulty) the reward was divided by. */
  totalWeight: string;
  /** PPLNS: the window's N, and the weight the window held (less for a young pool). */
  wantedWeight?: string;
  coveredWeight?: string;
  confirmations?: number;
  at: number;
}

export interface MaturityResult {
  credited: string[];
  voided: string[];
  /** Blocks not mature yet (or waiting for their round to close). */
  waiting: number;
}

interface CoinbaseView {
  confirmations: number;
  bits: string;
  tx: { vout: { value: number; scriptPubKey: { address?: string; addresses?: string[] } }[] }[];
}

/**
 * One pass over the chain's blocks: every block not shared out yet that is mature (`maturity`
 * confirmations in the daemon's main chain) is shared out by the scheme, and every block that
 * ended rejected, stale or orphaned is recorded void. Each block is written once, keyed by its hash.
 */
export async function shareOutMatured(ctx: MaturityContext): Promise<MaturityResult> {
  const { redis, keys } = ctx;
  const result: MaturityResult = { credited: [], voided: [], waiting: 0 };
  const hashes = await redis.hkeys(keys.blocks);
  if (hashes.length === 0) return result;
  const done = await redis.hmget(keys.shared, ...hashes);
  const open = hashes.filter((_, i) => done[i] === null);
  if (open.length === 0) return result;
  const texts = await redis.hmget(keys.blocks, ...open);
  for (const text of texts) {
    if (!text) continue;
    const record = JSON.parse(text) as BlockRecordView;
    let outcome: 'credited' | 'void' | 'wait';
    try {
      outcome = await settleBlock(ctx, record);
    } catch (error) {
      if (error instanceof FencedError) throw error;
      // One block the daemon cannot tell about (not known to it yet) holds up no other.
      ctx.logger.warn(
        { chain: ctx.chain, hash: record.hash, err: error },
        'payouts: block not settled this pass',
      );
      outcome = 'wait';
    }
    if (outcome === 'credited') result.credited.push(record.hash);
    else if (outcome === 'void') result.voided.push(record.hash);
    else result.waiting++;
  }
  return result;
}

async function settleBlock(
  ctx: MaturityContext,
  record: BlockRecordView,
): Promise<'credited' | 'void' | 'wait'> {
  const { settings } = ctx;
  if (record.state === 'rejected' || record.state === 'stale' || record.state === 'orphaned') {
    return (await writeVoid(ctx, record, record.state)) ? 'void' : 'wait';
  }
  if (record.state !== 'accepted' && record.state !== 'confirmed') return 'wait';
  const block = await ctx.daemon<CoinbaseView>('getblock', [record.hash, 2]);
  // Orphaned (-1) is the reporter's call: it gives the round back in the same step.
  if (block.confirmations < settings.maturity) return 'wait';
  // A SOLO coinbase paid the finder (and the fee output) already: nothing to share, whatever the
  // scheme is now. A block of a SOLO chain whose coinbase paid the pool's addresses (mined
  // through a stratum server that did not know SOLO, or before the scheme changed) is shared
  // out by its round, as PROP: the pool's wallet holds that reward.
  if (record.payoutAddress !== undefined)
    return (await writeVoid(ctx, record, record.state, 'solo')) ? 'void' : 'wait';

  let weights: Map<string, bigint> | null = null;
  let scheme: BlockShareOut['scheme'] = settings.scheme;
  let wantedWeight: bigint | undefined;
  let coveredWeight: bigint | undefined;
  if (settings.scheme === 'pplns') {
    wantedWeight = pplnsWindowWeight(block.bits, settings.pplnsFactor, ctx.shareDiffMultiplier);
    const window = await readPplnsWindow(
      ctx.redis,
      { window: ctx.keys.window, found: ctx.keys.windowFound },
      record.hash,
      wantedWeight,
    );
    if (window) {
      weights = window.weights;
      coveredWeight = window.coveredWeight;
    }
  }
  if (!weights) {
    // PROP, or a PPLNS block found before the window existed: the block's round.
    if (!record.round || record.round.returned) return 'wait';
    weights = roundWeights(await ctx.redis.hgetall(ctx.keys.closedRound(record.hash)));
    scheme = 'prop';
    wantedWeight = undefined;
  }
  const rewardSat = coinbaseReward(block, ctx.rewardAddresses);
  const out = computeShareOut({
    rewardSat,
    feeBasisPoints: feePercentToBasisPoints(settings.feePercent),
    weights,
  });
  const feeAccount = settings.feeAddress ?? POOL_ACCOUNT;
  let creditedSat = 0n;
  for (const sat of out.credits.values()) creditedSat += sat;
  const summary: BlockShareOut = {
    hash: record.hash,
    height: record.height,
    state: 'credited',
    blockState: record.state,
    scheme,
    rewardSat: rewardSat.toString(),
    feeSat: out.feeSat.toString(),
    remainderSat: out.remainderSat.toString(),
    feeAccount,
    accounts: out.credits.size,
    creditedSat: creditedSat.toString(),
    totalWeight: out.totalWeight.toString(),
    ...(wantedWeight !== undefined ? { wantedWeight: wantedWeight.toString() } : {}),
    ...(coveredWeight !== undefined ? { coveredWeight: coveredWeight.toString() } : {}),
    confirmations: block.confirmations,
    at: Date.now(),
  };
  const args: (string | number)[] = [
    record.hash,
    JSON.stringify(summary),
    summary.at,
    ctx.epoch,
    ctx.eventsMaxLen,
    ctx.chain,
    feeAccount,
    out.feeSat.toString(),
    out.remainderSat.toString(),
    out.credits.size,
  ];
  for (const [account, sat] of out.credits) args.push(account, sat.toString());
  const written = await runShareOut(ctx, record.hash, args);
  if (written) {
    ctx.logger.info(
      {
        chain: ctx.chain,
        hash: record.hash,
        height: record.height,
        scheme,
        rewardSat: summary.rewardSat,
        accounts: summary.accounts,
      },
      'payouts: block shared out',
    );
  }
  return written ? 'credited' : 'wait';
}

async function writeVoid(
  ctx: MaturityContext,
  record: BlockRecordView,
  blockState: string,
  scheme?: 'solo',
): Promise<boolean> {
  const summary: BlockShareOut = {
    hash: record.hash,
    height: record.height,
    state: 'void',
    blockState,
    scheme: scheme ?? ctx.settings.scheme,
    rewardSat: '0',
    feeSat: '0',
    remainderSat: '0',
    feeAccount: ctx.settings.feeAddress ?? POOL_ACCOUNT,
    accounts: 0,
    creditedSat: '0',
    totalWeight: '0',
    at: Date.now(),
  };
  const written = await runShareOut(ctx, record.hash, [
    record.hash,
    JSON.stringify(summary),
    summary.at,
    ctx.epoch,
    ctx.eventsMaxLen,
    ctx.chain,
    summary.feeAccount,
    '0',
    '0',
    0,
  ]);
  if (written)
    ctx.logger.info({ chain: ctx.chain, hash: record.hash, blockState }, 'payouts: block shares nothing');
  return written;
}

async function runShareOut(ctx: MaturityContext, hash: string, args: (string | number)[]): Promise<boolean> {
  const { keys } = ctx;
  const reply = (await runScript(
    ctx.redis,
    'share-out',
    [
      keys.shared,
      keys.blockCredits(hash),
      keys.balances,
      keys.ledger,
      keys.windowPending,
      keys.events,
      keys.fence,
      keys.earningsIndex,
    ],
    args,
  )) as number;
  if (reply === -1) throw new FencedError(ctx.epoch);
  return reply === 1;
}

/** The reward of a block: its coinbase outputs to the pool's addresses, in satoshis. */
export function coinbaseReward(
  block: Pick<CoinbaseView, 'tx'>,
  rewardAddresses: ReadonlySet<string>,
): bigint {
  const coinbase = block.tx[0];
  if (!coinbase) throw new Error('block has no coinbase');
  let sat = 0n;
  for (const out of coinbase.vout) {
    const addresses = out.scriptPubKey.address
      ? [out.scriptPubKey.address]
      : (out.scriptPubKey.addresses ?? []);
    if (addresses.length !== 1) continue;
    if (rewardAddresses.size > 0 && !rewardAddresses.has(addresses[0] as string)) continue;
    sat += coinToSat(out.value);
  }
  return sat;
}

/** A payer with a higher fencing epoch wrote since: this one is no longer the payer. */
export class FencedError extends Error {
  override readonly name = 'FencedError';
  constructor(readonly epoch: number) {
    super(`payer epoch ${epoch} is fenced off: another payer took over`);
  }
}
