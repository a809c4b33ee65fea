import type { Job } from '@hashwire/protocol';
import { type CoinbasePayout, type CoinbaseTemplate, buildCoinbaseForTemplate } from './coinbase.js';
import { ChainError } from './errors.js';
import { stratumPrevhashFromDisplay } from './header.js';
import type { ChainParams } from './params.js';
import { type SoloFee, buildSoloCoinbaseEnd } from './solo.js';
import { type BlockTemplate, templateMerkleBranch } from './template.js';

export interface JobBuildOptions {
  /** The daemon's `getblocktemplate` result (see `parseBlockTemplate`). */
  readonly template: BlockTemplate;
  readonly params: ChainParams;
  /** Pool chain id carried in `Job.chain` (the one Redis keys use), e.g. `ltc-main`. */
  readonly chain: string;
  readonly payouts: readonly CoinbasePayout[];
  /** @defaultValue `"/hashwire/"` (see `buildCoinbase`) */
  readonly poolTag?: string | Uint8Array;
  readonly extranonce1Size: number;
  readonly extranonce2Size: number;
  /** Leadership epoch of the jobmanager that issues the job (fencing). */
  readonly epoch: number;
  readonly jobId: string;
  readonly jmId: string;
  readonly cleanJobs: boolean;
  /** Header time the job starts from. @defaultValue `template.curtime` */
  readonly ntime?: number;
  /** @defaultValue `Date.now()` */
  readonly createdAt?: number;
  /** The chain pays SOLO: the job also carries the coinbase end cut around the finder's output (`Job.solo`). */
  readonly solo?: SoloFee;
}

/** A job plus the binary parts it was made of, which block assembly needs again. */
export interface BuiltJob {
  readonly job: Job;
  readonly coinbase: CoinbaseTemplate;
  /** Internal-order branch hashes, coinbase side first. */
  readonly branch: readonly Buffer[];
}

/** A 32-bit header field as `mining.notify` sends it: 8 hex digits, big-endian. */
export function headerFieldHex(value: number): string {
  return (value >>> 0).toString(16).padStart(8, '0');
}

function checkUint32(value: number, field: string): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new ChainError('bad-value', `${field} must be an integer from 0 to 4294967295, got ${value}`);
  }
}

/**
 * Builds the stratum job for a block template: coinbase split around the extranonce slot,
 * merkle branch (little-endian hex), prevhash with its 4-byte words swapped, version, nbits
 * and ntime as 8-digit big-endian hex, and the network target as 64 hex digits.
 *
 * @throws ChainError on a template or payout the coinbase builder refuses, or a bad ntime/epoch.
 */
export function buildJob(options: JobBuildOptions): BuiltJob {
  const { template } = options;
  const ntime = options.ntime ?? template.curtime;
  checkUint32(ntime, 'ntime');
  if (!Number.isSafeInteger(options.epoch) || options.epoch < 0) {
    throw new ChainError('bad-value', `epoch must be a non-negative integer, got ${options.epoch}`);
  }
  if (options.jobId.length === 0) throw new ChainError('bad-value', 'jobId must not be empty');
  const coinbase = buildCoinbaseForTemplate(template, {
    params: options.params,
    payouts: options.payouts,
    extranonce1Size: options.extranonce1Size,
    extranonce2Size: options.extranonce2Size,
    ...(options.poolTag !== undefined && { poolTag: options.poolTag }),
  });
  const branch = templateMerkleBranch(template);
  const solo =
    options.solo === undefined
      ? undefined
      : buildSoloCoinbaseEnd(template, {
          params: options.params,
          extranonce1Size: options.extranonce1Size,
          extranonce2Size: options.extranonce2Size,
          fee: options.solo,
          ...(options.poolTag !== undefined && { poolTag: options.poolTag }),
        });
  const job: Job = {
    chain: options.chain,
    epoch: options.epoch,
    jobId: options.jobId,
    jmId: options.jmId,
    height: template.height,
    prevhash: stratumPrevhashFromDisplay(template.previousblockhash),
    coinb1: coinbase.coinb1.toString('hex'),
    coinb2: coinbase.coinb2.toString('hex'),
    merkleBranch: branch.map((hash) => hash.toString('hex')),
    version: headerFieldHex(template.version),
    nbits: template.bits.toLowerCase(),
    ntime: headerFieldHex(ntime),
    cleanJobs: options.cleanJobs,
    target: template.target.toLowerCase(),
    createdAt: options.createdAt ?? Date.now(),
    ...(solo && {
      solo: {
        coinb2Head: solo.head.toString('hex'),
        finderValueSat: solo.finderValueSat,
        coinb2Tail: solo.tail.toString('hex'),
      },
    }),
  };
  return { job, coinbase, branch };
}
