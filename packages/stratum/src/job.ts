import {
  type ChainParams,
  HEADER_SIZE,
  type PowAlgorithm,
  type SoloCoinbaseEnd,
  prevHashFromStratum,
  soloCoinb2,
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
  /**
   * The output script of a payout address (canonical, as sessions hold it), for SOLO jobs.
   * @defaultValue none: a job carrying `solo` is refused
   */
  readonly payoutScript?: (address: string) => Buffer;
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
  /** A SOLO job (`Job.solo`): each payout address's coinbase end, built once per address. */
  readonly solo: SoloJob | null;
  /** Set when a job on a new prevhash superseded this one: its shares are stale. */
  stale: boolean;
}

/** What one payout address gets of a SOLO job. */
export interface SoloWork {
  /** coinb1 ‖ extranonce1 ‖ extranonce2 ‖ this address's coinb2: validation scratch, like `PreparedJob.coinbase`. */
  readonly coinbase: Buffer;
  /** This address's coinb2 as hex (what its `mining.notify` carries). */
  readonly coinb2Hex: string;
  /** The `mining.notify` lines, built when first sent ([job's flag, clean]); dropped with {@link SoloJob.dropLines}. */
  lines: [Buffer | null, Buffer | null];
}

/**
 * The coinbases of a SOLO job, one per payout address, built on first use and kept with the
 * job: ten sessions of one address share one coinb2, one coinbase scratch and one notify line
 * per job, so a job costs one serialisation per address, not per session.
 */
export class SoloJob {
  readonly #byAddress = new Map<string, SoloWork>();
  /** The notify line cut around coinb2: [job's own clean_jobs flag, clean_jobs=true]. */
  readonly #cut: readonly [readonly [string, string], readonly [string, string]];

  constructor(
    readonly end: SoloCoinbaseEnd,
    readonly coinb1: Buffer,
    readonly extranonceSize: number,
    readonly payoutScript: (address: string) => Buffer,
    job: Job,
  ) {
    this.#cut = [cutNotify(job, job.cleanJobs), cutNotify(job, true)];
  }

  /** Addresses with a coinbase end built for this job. */
  get addresses(): number {
    return this.#byAddress.size;
  }

  /**
   * The work of one payout address (canonical spelling).
   * @throws AddressError when it is no address of the chain (sessions only hold checked ones)
   */
  work(address: string): SoloWork {
    let work = this.#byAddress.get(address);
    if (work === undefined) {
      const coinb2 = soloCoinb2(this.end, this.payoutScript(address));
      const coinbase = Buffer.alloc(this.coinb1.length + this.extranonceSize + coinb2.length);
      this.coinb1.copy(coinbase, 0);
      coinb2.copy(coinbase, this.coinb1.length + this.extranonceSize);
      work = { coinbase, coinb2Hex: coinb2.toString('hex'), lines: [null, null] };
      this.#byAddress.set(address, work);
    }
    return work;
  }

  /** The `mining.notify` line for one payout address; `clean` forces clean_jobs=true. */
  notifyLine(address: string, clean: boolean): Buffer {
    const work = this.work(address);
    const i = clean ? 1 : 0;
    let line = work.lines[i];
    if (line === null) {
      const [before, after] = this.#cut[i]!;
      line = Buffer.from(before + work.coinb2Hex + after, 'latin1');
      work.lines[i] = line;
    }
    return line;
  }

  /** Frees the notify lines (the job is no longer sent); the coinbases stay for its shares. */
  dropLines(): void {
    for (const work of this.#byAddress.values()) work.lines = [null, null];
  }
}

/** Marks coinb2 in a notify line: `#` is in no hex field and no job id. */
const COINB2_MARK = '#coinb2#';

function cutNotify(job: Job, cleanJobs: boolean): [string, string] {
  const text = notifyLine({ ...job, coinb2: COINB2_MARK }, cleanJobs).toString('latin1');
  const at = text.indexOf(COINB2_MARK);
  return [text.slice(0, at), text.slice(at + COINB2_MARK.length)];
}

const HEX_RE = /^(?:[0-9a-f]{2})*$/i;

function hexField(job: Job, field: string, value: unknown): Buffer {
  if (typeof value !== 'string' || !HEX_RE.test(value)) {
    throw new JobError('bad-job', `job ${job.jobId}: ${field} must be an even-length hex string`);
  }
  return Buffer.from(value, 'hex');
}

function soloEnd(job: Job): SoloCoinbaseEnd {
  const solo = job.solo as Partial<NonNullable<Job['solo']>> | null;
  if (typeof solo !== 'object' || solo === null) {
    throw new JobError('bad-job', `job ${job.jobId}: solo must be an object`);
  }
  const value = solo.finderValueSat;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new JobError('bad-job', `job ${job.jobId}: solo.finderValueSat must be a non-negative integer`);
  }
  const head = hexField(job, 'solo.coinb2Head', solo.coinb2Head);
  const tail = hexField(job, 'solo.coinb2Tail', solo.coinb2Tail);
  return { head, finderValueSat: value, tail };
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
  const coinb1 = hexField(job, 'coinb1', job.coinb1);
  const coinb2 = hexField(job, 'coinb2', job.coinb2);
  const version = word(job, 'version');
  const nbits = word(job, 'nbits');
  const ntime = word(job, 'ntime');
  const branch = packBranch(job);
  let solo: SoloJob | null = null;
  if (job.solo !== undefined) {
    if (options.payoutScript === undefined) {
      throw new JobError('bad-job', `job ${job.jobId}: a SOLO job, and this server has no payout addresses`);
    }
    solo = new SoloJob(soloEnd(job), coinb1, extranonce1Size + extranonce2Size, options.payoutScript, {
      ...job,
      cleanJobs,
    });
  }

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
    solo,
    stale: false,
  };
}
