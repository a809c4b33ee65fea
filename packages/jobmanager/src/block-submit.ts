import {
  AddressError,
  type ChainParams,
  type CoinbasePayout,
  type DaemonPool,
  addressToScript,
  assembleTemplateBlock,
  soloPayouts,
} from '@hashwire/chain';
import type { Logger, Metrics } from '@hashwire/core';
import { RpcErrorCode, type RpcMethods } from '@hashwire/protocol';
import { RpcError } from '@hashwire/rpc';
import type { BlockLog } from './block-log.js';
import type { JobStore, StoredJob } from './job-store.js';

type SubmitRequest = RpcMethods['jm.submitBlock']['req'];
type SubmitReply = RpcMethods['jm.submitBlock']['rep'];

/** At most this many issued jobs are kept in memory (besides the two-heights rule). */
const LOCAL_JOBS_MAX = 256;

export interface BlockSubmitterOptions {
  id: string;
  chain: string;
  params: ChainParams;
  daemons: DaemonPool;
  store: JobStore;
  metrics: Metrics;
  /** Each block sent to the daemons and their verdict (with the reason) is logged here. */
  log: Logger;
  /** Where the block records go, after the submission. */
  blockLog: BlockLog;
  /** How long a job this process did not issue may take to load from Redis. @defaultValue 3000 */
  loadTimeoutMs?: number;
  /** The daemons took a block (they have a new tip). */
  onAccepted?: () => void;
}

export interface BlockSubmitter {
  /** Keeps a job this process issued, so a block on it needs nothing from Redis. */
  remember(stored: StoredJob): void;
  submit(req: SubmitRequest): Promise<SubmitReply>;
  stats(): { blocksSubmitted: number; blocksAccepted: number; localJobs: number };
}

/** Hex of a 32-bit header field as miners send it (big-endian digits of the value). */
function uint32Hex(field: string, hex: string): number {
  if (typeof hex !== 'string' || !/^[0-9a-fA-F]{8}$/.test(hex)) {
    throw new RpcError(RpcErrorCode.BadRequest, `${field} must be 8 hex digits`);
  }
  return Number.parseInt(hex, 16);
}

function hexBytes(field: string, hex: string, size: number): Buffer {
  if (typeof hex !== 'string' || hex.length !== size * 2 || !/^[0-9a-fA-F]*$/.test(hex)) {
    throw new RpcError(RpcErrorCode.BadRequest, `${field} must be ${size * 2} hex digits`);
  }
  return Buffer.from(hex, 'hex');
}

/**
 * The finder a stratum server named, for the block record: kept only when it looks like one (a
 * bad label must never cost a block, so it is dropped rather than refused).
 */
function finderOf(req: SubmitRequest): { account?: string; worker?: string } {
  const label = (value: unknown): value is string => typeof value === 'string' && value.length <= 256;
  if (!label(req.account) || req.account === '') return {};
  return { account: req.account, ...(label(req.worker) && { worker: req.worker }) };
}

/**
 * The coinbase outputs of a block on `stored`: the pool's `payouts`, or on a SOLO job the
 * finder's address the stratum server names (the coinbase its miner hashed), less the fee.
 * A stratum server that does not know SOLO names none, and sent the pool's coinbase.
 */
function coinbasePayouts(
  stored: StoredJob,
  req: SubmitRequest,
  params: ChainParams,
): { payouts: readonly CoinbasePayout[]; payoutAddress?: string } {
  if (!stored.solo || req.payoutAddress === undefined) return { payouts: stored.payouts };
  const address = req.payoutAddress;
  if (typeof address !== 'string' || address.length === 0 || address.length > 128) {
    throw new RpcError(RpcErrorCode.BadRequest, 'payoutAddress must be an address of this chain');
  }
  try {
    addressToScript(address, params);
  } catch (error) {
    if (error instanceof AddressError)
      throw new RpcError(RpcErrorCode.BadRequest, `payoutAddress: ${error.message}`);
    throw error;
  }
  return {
    payouts: soloPayouts({ address }, stored.template.coinbasevalue, stored.solo),
    payoutAddress: address,
  };
}

/**
 * Turns a block candidate into a block at the daemons. Jobs this process issued are in memory,
 * so the block reaches the daemons without a Redis round trip; its records (`submitted`, then
 * the verdict) are queued to Redis after it went out and written whenever Redis answers.
 */
export function createBlockSubmitter(options: BlockSubmitterOptions): BlockSubmitter {
  const { id, chain, params, daemons, store, metrics, blockLog, log } = options;
  const loadTimeoutMs = options.loadTimeoutMs ?? 3000;
  const localJobs = new Map<string, StoredJob>();
  let newestHeight = 0;
  let blocksSubmitted = 0;
  let blocksAccepted = 0;

  const remember = (stored: StoredJob) => {
    localJobs.set(stored.job.jobId, stored);
    newestHeight = Math.max(newestHeight, stored.job.height);
    // A job two blocks old can only make a stale block (Redis still has it for that): keeping
    // only the last two heights bounds memory to a few templates, whatever the job rate.
    for (const [jobId, kept] of localJobs) {
      if (localJobs.size <= LOCAL_JOBS_MAX && kept.job.height >= newestHeight - 1) break;
      localJobs.delete(jobId);
    }
  };

  /** A job another member issued: from Redis, with a deadline (Redis may be frozen). */
  const load = async (jobId: string): Promise<StoredJob | null> => {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        store.load(jobId),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () =>
              reject(
                new RpcError(
                  RpcErrorCode.Unavailable,
                  `job ${jobId} was issued by another jobmanager and Redis did not answer within ${loadTimeoutMs} ms`,
                ),
              ),
            loadTimeoutMs,
          );
        }),
      ]);
    } catch (error) {
      if (error instanceof RpcError) throw error;
      metrics.redisError();
      throw new RpcError(RpcErrorCode.Unavailable, `job ${jobId}: Redis: ${(error as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
  };

  const submit = async (req: SubmitRequest): Promise<SubmitReply> => {
    if (req.chain !== chain)
      throw new RpcError(RpcErrorCode.BadRequest, `this jobmanager serves ${chain}, not ${req.chain}`);
    const stored = localJobs.get(req.jobId) ?? (await load(req.jobId));
    if (!stored) throw new RpcError(RpcErrorCode.BadRequest, `job ${req.jobId} is unknown or expired`);
    const coinbase = coinbasePayouts(stored, req, params);
    const assembled = assembleTemplateBlock({
      template: stored.template,
      params,
      payouts: coinbase.payouts,
      poolTag: stored.poolTag,
      extranonce1: hexBytes('extranonce1', req.extranonce1, stored.extranonce1Size),
      extranonce2: hexBytes('extranonce2', req.extranonce2, stored.extranonce2Size),
      ntime: uint32Hex('ntime', req.ntime),
      nonce: uint32Hex('nonce', req.nonce),
      version: uint32Hex('version', req.version),
    });
    if (!assembled.meetsTarget) {
      return { accepted: false, hash: assembled.hashHex, reason: 'does not meet the network target' };
    }
    blocksSubmitted++;
    const base = {
      hash: assembled.hashHex,
      chain,
      height: stored.template.height,
      jobId: req.jobId,
      jmId: id,
      shareId: req.shareId,
      ...finderOf(req),
      ...(coinbase.payoutAddress !== undefined && { payoutAddress: coinbase.payoutAddress }),
      submittedAt: Date.now(),
    };
    metrics.blocks('submitted');
    log.info(
      { hash: base.hash, height: base.height, jobId: base.jobId, shareId: base.shareId },
      'jobmanager: block found, submitting to the daemons',
    );
    // Queued, not awaited: the block goes to the daemons whatever Redis does.
    blockLog.write({ ...base, state: 'submitted', updatedAt: Date.now() });
    // Transient daemon failures (restart, timeout) are retried; a verdict is final.
    // With its parent, the daemons tell a block on stale work (`stale`) from a lost race (`orphaned`).
    const submitOptions = { hash: assembled.hashHex, parent: stored.template.previousblockhash };
    let result = await daemons.submitBlock(assembled.blockHex, submitOptions);
    for (
      let attempt = 1;
      !result.accepted && attempt < 3 && result.results.every((r) => r.error);
      attempt++
    ) {
      await new Promise((resolve) => setTimeout(resolve, 250 * attempt));
      result = await daemons.submitBlock(assembled.blockHex, submitOptions);
    }
    if (result.accepted) blocksAccepted++;
    const state = result.accepted
      ? 'accepted'
      : result.stale
        ? 'stale'
        : result.orphaned
          ? 'orphaned'
          : 'rejected';
    metrics.blocks(state);
    // The daemons' verdict, with their reason and each daemon's answer: what an operator reads
    // after `hashwire_blocks_total{state="rejected"}` moves.
    const verdict = {
      hash: base.hash,
      height: base.height,
      jobId: base.jobId,
      state,
      ...(result.reason ? { reason: result.reason } : {}),
      daemons: result.results.map((r) => ({
        daemon: r.daemon,
        ...(r.error
          ? { error: r.error.message }
          : {
              accepted: r.result?.accepted ?? false,
              ...(r.result?.reason ? { reason: r.result.reason } : {}),
            }),
      })),
    };
    if (state === 'accepted') log.info(verdict, 'jobmanager: block accepted by the daemons');
    else if (state === 'rejected')
      log.error(verdict, `jobmanager: block rejected by the daemons: ${result.reason ?? 'no reason given'}`);
    else log.warn(verdict, `jobmanager: block ${state}: ${result.reason ?? 'no reason given'}`);
    blockLog.write({
      ...base,
      state,
      ...(result.reason ? { reason: result.reason } : {}),
      updatedAt: Date.now(),
    });
    if (result.accepted) options.onAccepted?.();
    return {
      accepted: result.accepted,
      hash: assembled.hashHex,
      ...(result.reason ? { reason: result.reason } : {}),
      ...(state === 'orphaned' ? { orphaned: true } : {}),
      ...(state === 'stale' ? { stale: true } : {}),
    };
  };

  return {
    remember,
    submit,
    stats: () => ({ blocksSubmitted, blocksAccepted, localJobs: localJobs.size }),
  };
}
