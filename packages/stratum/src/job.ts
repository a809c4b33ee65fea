import {
  type ChainParams,
  HEADER_SIZE,
  type PowAlgorithm,
  prevHashFromStratum,
  targetFromHex,
  targetToBuffer,
} from '@hashwire/chain';
import { type Job, type NotifyParams, ServerMethod, formatNotification, isJobId } from '@hashwire/protocol';
import { ShareDedupe } from './dedupe.js';
import { ShareTargetCache } from './difficulty.js';

/** A job pushed by a jobmanager that this server cannot use; the message names the field. */
export class JobError extends Error {
  override readonly name = 'JobError';
  constructor(
    readonly code: 'bad-job' | 'wrong-chain',
    message: string,
  ) {
    super(message);
  }
}

export interface PrepareJobOptions {
  /** The chain the jobs are for: PoW algorithm and share-difficulty convention. */
  readonly params: Pick<ChainParams, 'algorithm' | 'shareDiffMultiplier'>;
  /** Size of the extranonce1 this server gives sessions (bytes). */
  readonly extranonce1Size: number;
  /** Size of the extranonce2 miners roll (bytes), as told in `mining.subscribe`. */
  readonly extranonce2Size: number;
  /**
   * Most distinct shares remembered per job for duplicate detection; past it the job's
   * shares are refused as stale until the next job.
   * @defaultValue 1_000_000
   */
  readonly maxSharesPerJob?: number;
  /** Share targets by difficulty; one cache per chain is enough. @defaultValue a new cache */
  readonly targets?: ShareTargetCache;
}

/**
 * A job turned, once, into everything share validation and notification need: byte buffers
 * instead of hex, a coinbase and a header with every constant byte already in place (a share
 * only writes its extranonces, time, nonce, version and merkle root), the network target as
 * bytes, and the `mining.notify` line serialized once for every session.
 *
 * The coinbase, header and key buffers are scratch space for synchronous validation: a share
 * is finished with them before the next one starts.
 */
export interface PreparedJob {
  readonly job: Job;
  readonly jobId: string;
  readonly epoch: number;
  /** Stratum wire order, as in `Job.prevhash`. */
  readonly prevhash: string;
  readonly algorithm: PowAlgorithm;
  readonly targets: ShareTargetCache;
  /** coinb1 ‖ extranonce1 ‖ extranonce2 ‖ coinb2. */
  readonly coinbase: Buffer;
  readonly extranonce1Offset: number;
  readonly extranonce1Size: number;
  readonly extranonce2Offset: number;
  readonly extranonce2Size: number;
  /** Merkle branch packed as k×32 bytes, internal order. */
  readonly branch: Buffer;
  /** 80-byte header: prevhash and nbits fixed, the rest written per share. */
  readonly header: Buffer;
  readonly version: number;
  readonly nbits: number;
  readonly ntime: number;
  /** Network target, 32 bytes little-endian (hash byte order). */
  readonly networkTarget: Buffer;
  /** `mining.notify` line (newline included) with the job's own clean_jobs flag. */
  readonly notifyLine: Buffer;
  /** The same line with clean_jobs=true: a session's first job, or after a new extranonce. */
  readonly notifyLineClean: Buffer;
  readonly dedupe: ShareDedupe;
  /** Scratch for the duplicate key: extranonce1 ‖ extranonce2 ‖ ntime ‖ nonce ‖ version. */
  readonly keyScratch: Buffer;
  /** Set when a job on a new prevhash superseded this one: its shares are stale. */
  stale: boolean;
}

const HEX_RE = /^(?:[0-9a-f]{2})*$/i;

function hexField(job: Job, field: 'coinb1' | 'coinb2'): Buffer {
  const value = job[field];
  if (typeof value !== 'string' || !HEX_RE.test(value)) {
    throw new JobError('bad-job', `job ${job.jobId}: ${field} must be an even-length hex string`);
  }
  return Buffer.from(value, 'hex');
}

function fixedHex(job: Job, field: 'prevhash' | 'target', digits: number): void {
  const value = job[field];
  if (typeof value !== 'string' || value.length !== digits || !HEX_RE.test(value)) {
    throw new JobError('bad-job', `job ${job.jobId}: ${field} must be ${digits} hex digits`);
  }
}

function word(job: Job, field: 'version' | 'nbits' | 'ntime'): number {
  const value = job[field];
  if (typeof value !== 'string' || value.length !== 8 || !HEX_RE.test(value)) {
    throw new JobError('bad-job', `job ${job.jobId}: ${field} must be 8 hex digits (big-endian)`);
  }
  return Number.parseInt(value, 16);
}

function packBranch(job: Job): Buffer {
  if (!Array.isArray(job.merkleBranch)) {
    throw new JobError('bad-job', `job ${job.jobId}: merkleBranch must be an array of hashes`);
  }
  const packed = Buffer.allocUnsafe(32 * job.merkleBranch.length);
  job.merkleBranch.forEach((hash, i) => {
    if (typeof hash !== 'string' || hash.length !== 64 || !HEX_RE.test(hash)) {
      throw new JobError('bad-job', `job ${job.jobId}: merkleBranch[${i}] must be 64 hex digits`);
    }
    packed.write(hash, 32 * i, 32, 'hex');
  });
  return packed;
}

function notifyLine(job: Job, cleanJobs: boolean): Buffer {
  const params: NotifyParams = [
    job.jobId,
    job.prevhash,
    job.coinb1,
    job.coinb2,
    job.merkleBranch,
    job.version,
    job.nbits,
    job.ntime,
    cleanJobs,
  ];
  return Buffer.from(formatNotification(ServerMethod.Notify, params), 'utf8');
}

function checkSize(value: number, field: string, min: number): void {
  if (!Number.isInteger(value) || value < min || value > 32) {
    throw new RangeError(`${field} must be an integer from ${min} to 32, got ${value}`);
  }
}

/**
 * Prepares a protocol job for validation and notification (once per job, not per session).
 * `cleanJobs` overrides the job's flag in `notifyLine` (the book forces it on a new prevhash).
 *
 * @throws JobError `bad-job` when a field is not the hex the contract says
 */
export function prepareJob(job: Job, options: PrepareJobOptions, cleanJobs = job.cleanJobs): PreparedJob {
  const { extranonce1Size, extranonce2Size } = options;
  checkSize(extranonce1Size, 'extranonce1Size', 0);
  checkSize(extranonce2Size, 'extranonce2Size', 1);
  if (!isJobId(job.jobId)) {
    // Shares carry the job id, and the share schema allows only these.
    throw new JobError('bad-job', 'job id must be 1 to 64 characters of A-Z a-z 0-9 . _ : -');
  }
  if (!Number.isSafeInteger(job.epoch) || job.epoch < 0) {
    throw new JobError('bad-job', `job ${job.jobId}: epoch must be a non-negative integer`);
  }
  fixedHex(job, 'prevhash', 64);
  fixedHex(job, 'target', 64);
  const coinb1 = hexField(job, 'coinb1');
  const coinb2 = hexField(job, 'coinb2');
  const version = word(job, 'version');
  const nbits = word(job, 'nbits');
  const ntime = word(job, 'ntime');
  const branch = packBranch(job);

  const coinbase = Buffer.alloc(coinb1.length + extranonce1Size + extranonce2Size + coinb2.length);
  coinbase.set(coinb1, 0);
  coinbase.set(coinb2, coinb1.length + extranonce1Size + extranonce2Size);

  const header = Buffer.alloc(HEADER_SIZE);
  header.writeUInt32LE(version, 0);
  header.set(prevHashFromStratum(job.prevhash), 4);
  header.writeUInt32LE(ntime, 68);
  header.writeUInt32LE(nbits, 72);

  const line = notifyLine(job, cleanJobs);
  return {
    job: { ...job, cleanJobs },
    jobId: job.jobId,
    epoch: job.epoch,
    prevhash: job.prevhash.toLowerCase(),
    algorithm: options.params.algorithm,
    targets: options.targets ?? new ShareTargetCache(options.params),
    coinbase,
    extranonce1Offset: coinb1.length,
    extranonce1Size,
    extranonce2Offset: coinb1.length + extranonce1Size,
    extranonce2Size,
    branch,
    header,
    version,
    nbits,
    ntime,
    networkTarget: targetToBuffer(targetFromHex(job.target)),
    notifyLine: line,
    notifyLineClean: cleanJobs ? line : notifyLine(job, true),
    dedupe: new ShareDedupe(options.maxSharesPerJob ?? 1_000_000),
    keyScratch: Buffer.alloc(extranonce1Size + extranonce2Size + 12),
    stale: false,
  };
}
