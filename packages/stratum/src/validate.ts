import {
  type PowAlgorithm,
  difficultyFromHash,
  hashMeetsTarget,
  hashToDisplayHex,
  scryptHeaders,
  scryptHeadersSync,
  sha256d,
  sha256dHeaders,
  sha256dMerkleRoot,
} from '@hashwire/chain';
import { ShareResult, StratumErrorCode } from '@hashwire/protocol';
import type { PreparedJob } from './job.js';

/** The `mining.submit` fields validation looks at, as the miner sent them (any JSON value). */
export interface ShareSubmission {
  readonly extranonce2: unknown;
  readonly ntime: unknown;
  readonly nonce: unknown;
  /** BIP310 version bits; absent when the miner does not roll the version. */
  readonly versionBits?: unknown;
}

/** What the session knows about the share. */
export interface ShareContext {
  readonly extranonce1: Buffer;
  /** The session's difficulty when this job was sent to it (see `difficultyForJob`). */
  readonly diff: number;
  /** Negotiated BIP310 version-rolling mask; 0 when none. */
  readonly versionMask: number;
  /**
   * The session's own coinbase scratch on a SOLO job (`SoloJob.work(address).coinbase`, same
   * layout as `job.coinbase`): the merkle root is computed from the coinbase this miner was sent.
   * @defaultValue `job.coinbase`
   */
  readonly coinbase?: Buffer;
}

export interface ShareVerdict {
  readonly result: ShareResult;
  /** Stratum error code for the reply; null when accepted. */
  readonly code: StratumErrorCode | null;
  /** Why it was refused, safe to show the miner; null when accepted. */
  readonly reason: string | null;
  /** The difficulty the share was judged (and, when accepted, credited) at. */
  readonly diff: number;
  /** The difficulty its hash met; 0 when it was refused before hashing. */
  readonly actualDiff: number;
  /** The header's nVersion after applying the version bits; 0 when refused before that. */
  readonly version: number;
  /** The hash meets the network target: submit the block. */
  readonly blockCandidate: boolean;
  /** Block hash, display hex, for block candidates; null otherwise. */
  readonly blockHash: string | null;
  /** The 80-byte header (a copy) for block candidates; null otherwise. */
  readonly header: Buffer | null;
}

export interface ShareValidatorOptions {
  /**
   * How far ntime may be before the job's ntime, in seconds. The job does not carry the
   * template's mintime, and on a fast chain curtime may equal it, so the default is none.
   * @defaultValue 0
   */
  readonly ntimeSlackBeforeSec?: number;
  /**
   * How far ntime may be after the job's ntime, in seconds. The job's ntime is at most "now",
   * so 7200 keeps every accepted time inside consensus' two hours.
   * @defaultValue 7200
   */
  readonly ntimeMaxAheadSec?: number;
  /**
   * Threadpool jobs one scrypt batch may use at once.
   * @defaultValue `os.availableParallelism()`, at most 4
   */
  readonly scryptParallelism?: number;
}

/** One share of a batch. */
export interface ShareCheck {
  readonly job: PreparedJob | undefined;
  readonly context: ShareContext;
  readonly submission: ShareSubmission;
}

export const ShareRejectReason = {
  JobNotFound: 'job not found',
  Stale: 'stale job',
  JobFull: 'too many shares on this job, wait for the next one',
  Duplicate: 'duplicate share',
  LowDifficulty: 'low difficulty share',
  Extranonce2: 'extranonce2 must be hex of the size given in mining.subscribe',
  Ntime: 'ntime must be 8 hex digits',
  NtimeOld: 'ntime is before the job ntime',
  NtimeFuture: 'ntime is too far in the future',
  Nonce: 'nonce must be 8 hex digits',
  VersionBits: 'version bits must be 8 hex digits',
  VersionMask: 'version bits outside the negotiated mask',
  Extranonce1: 'session extranonce1 does not fit the job',
} as const;

/** A share that passed every check but PoW, its header written into the job's scratch. */
interface Pending {
  readonly job: PreparedJob;
  readonly diff: number;
  readonly shareTarget: Buffer;
  readonly version: number;
  readonly key: string;
}

const NO_VERDICT = {
  actualDiff: 0,
  version: 0,
  blockCandidate: false,
  blockHash: null,
  header: null,
} as const;

function reject(
  result: ShareResult,
  code: StratumErrorCode,
  reason: string,
  diff: number,
  version = 0,
  actualDiff = 0,
): ShareVerdict {
  return { ...NO_VERDICT, result, code, reason, diff, version, actualDiff };
}

/** Value of a hex digit, or -1. */
function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  const lower = c | 0x20;
  if (lower >= 97 && lower <= 102) return lower - 87;
  return -1;
}

/** Eight hex digits (big-endian, as stratum sends 32-bit fields) as a uint32; -1 if not exactly that. */
export function parseHexWord(value: unknown): number {
  if (typeof value !== 'string' || value.length !== 8) return -1;
  let word = 0;
  for (let i = 0; i < 8; i++) {
    const d = hexDigit(value.charCodeAt(i));
    if (d < 0) return -1;
    word = word * 16 + d;
  }
  return word;
}

/** Decodes exactly `size` bytes of hex into `out` at `offset`; false (out partly written) if not exactly that. */
function writeHexExact(out: Buffer, offset: number, value: unknown, size: number): boolean {
  if (typeof value !== 'string' || value.length !== 2 * size) return false;
  for (let i = 0; i < size; i++) {
    const hi = hexDigit(value.charCodeAt(2 * i));
    const lo = hexDigit(value.charCodeAt(2 * i + 1));
    if (hi < 0 || lo < 0) return false;
    out[offset + i] = (hi << 4) | lo;
  }
  return true;
}

/**
 * Judges stratum shares: strict parsing of the submit fields, ntime window, version mask,
 * duplicate detection, then coinbase → txid → merkle root (native) → header → PoW against
 * the share target of the session's difficulty for that job and the network target.
 *
 * Allocation-light: the job's coinbase, header and key buffers are reused; no hex leaves
 * this class except the block hash of a block candidate; no bigint per share.
 */
export class ShareValidator {
  readonly ntimeSlackBeforeSec: number;
  readonly ntimeMaxAheadSec: number;
  readonly scryptParallelism: number | undefined;

  constructor(options: ShareValidatorOptions = {}) {
    this.ntimeSlackBeforeSec = options.ntimeSlackBeforeSec ?? 0;
    this.ntimeMaxAheadSec = options.ntimeMaxAheadSec ?? 7200;
    this.scryptParallelism = options.scryptParallelism;
    for (const [field, value] of [
      ['ntimeSlackBeforeSec', this.ntimeSlackBeforeSec],
      ['ntimeMaxAheadSec', this.ntimeMaxAheadSec],
    ] as const) {
      if (!Number.isInteger(value) || value < 0) {
        throw new RangeError(`${field} must be a non-negative integer, got ${value}`);
      }
    }
  }

  /**
   * Validates one share on the calling thread. Meant for sha256d chains; on a scrypt chain it
   * blocks the event loop for one scrypt (~0.1 ms natively): prefer {@link validateBatch}.
   *
   * @throws ChainError only when `context.diff` is not a positive finite number (a caller bug);
   *   anything a miner sends ends in a verdict.
   */
  validate(job: PreparedJob | undefined, context: ShareContext, submission: ShareSubmission): ShareVerdict {
    const checked = this.#check(job, context, submission);
    if (!isPending(checked)) return checked;
    const header = checked.job.header;
    const pow = checked.job.algorithm === 'scrypt' ? scryptHeadersSync(header) : sha256dHeaders(header);
    return this.#finish(checked, pow, header);
  }

  /**
   * Validates several shares (any jobs, any sessions) with one PoW call per algorithm: for
   * scrypt one `scryptHeaders` call off the main thread, for sha256d one `sha256dHeaders`.
   * Verdicts come back in input order. Duplicates are settled when the hashes are back, so two
   * copies of a share in flight at once still count once.
   */
  async validateBatch(checks: readonly ShareCheck[]): Promise<ShareVerdict[]> {
    const verdicts: (ShareVerdict | undefined)[] = new Array(checks.length);
    const pending: { index: number; share: Pending; algorithm: PowAlgorithm; slot: number }[] = [];
    // Each job has one header scratch and a later share of the same job overwrites it: copy
    // every header out as soon as it is written.
    let shaHeaders: Buffer | null = null;
    let scryptHeaderBuf: Buffer | null = null;
    let shaCount = 0;
    let scryptCount = 0;
    for (let i = 0; i < checks.length; i++) {
      const { job, context, submission } = checks[i]!;
      const checked = this.#check(job, context, submission);
      if (!isPending(checked)) {
        verdicts[i] = checked;
        continue;
      }
      const algorithm = checked.job.algorithm;
      let slot: number;
      if (algorithm === 'scrypt') {
        scryptHeaderBuf ??= Buffer.allocUnsafe(80 * checks.length);
        slot = scryptCount++;
        checked.job.header.copy(scryptHeaderBuf, 80 * slot);
      } else {
        shaHeaders ??= Buffer.allocUnsafe(80 * checks.length);
        slot = shaCount++;
        checked.job.header.copy(shaHeaders, 80 * slot);
      }
      pending.push({ index: i, share: checked, algorithm, slot });
    }
    const shaHashes = shaHeaders ? sha256dHeaders(shaHeaders.subarray(0, 80 * shaCount)) : null;
    const scryptHashes = scryptHeaderBuf
      ? await scryptHeaders(
          scryptHeaderBuf.subarray(0, 80 * scryptCount),
          this.scryptParallelism === undefined ? undefined : { parallelism: this.scryptParallelism },
        )
      : null;
    for (const p of pending) {
      const scrypt = p.algorithm === 'scrypt';
      const pow = (scrypt ? scryptHashes : shaHashes)!.subarray(32 * p.slot, 32 * p.slot + 32);
      const headers = (scrypt ? scryptHeaderBuf : shaHeaders)!;
      verdicts[p.index] = this.#finish(p.share, pow, headers.subarray(80 * p.slot, 80 * p.slot + 80));
    }
    return verdicts as ShareVerdict[];
  }

  /** Every check before PoW; on success the header is in `job.header`. */
  #check(
    job: PreparedJob | undefined,
    context: ShareContext,
    submission: ShareSubmission,
  ): ShareVerdict | Pending {
    const { diff } = context;
    if (job === undefined) {
      return reject(ShareResult.Stale, StratumErrorCode.JobNotFound, ShareRejectReason.JobNotFound, diff);
    }
    if (job.stale)
      return reject(ShareResult.Stale, StratumErrorCode.JobNotFound, ShareRejectReason.Stale, diff);
    // Before anything else, so a bad difficulty (a caller bug) throws before any state changes.
    const shareTarget = job.targets.get(diff);
    const { header, extranonce1Offset, extranonce2Offset, extranonce2Size } = job;
    const coinbase = context.coinbase ?? job.coinbase;
    if (context.extranonce1.length !== job.extranonce1Size) {
      return reject(ShareResult.Invalid, StratumErrorCode.Other, ShareRejectReason.Extranonce1, diff);
    }
    if (!writeHexExact(coinbase, extranonce2Offset, submission.extranonce2, extranonce2Size)) {
      return reject(ShareResult.Invalid, StratumErrorCode.Other, ShareRejectReason.Extranonce2, diff);
    }
    const ntime = parseHexWord(submission.ntime);
    if (ntime < 0) return reject(ShareResult.Invalid, StratumErrorCode.Other, ShareRejectReason.Ntime, diff);
    if (ntime < job.ntime - this.ntimeSlackBeforeSec) {
      return reject(ShareResult.Invalid, StratumErrorCode.Other, ShareRejectReason.NtimeOld, diff);
    }
    if (ntime > job.ntime + this.ntimeMaxAheadSec) {
      return reject(ShareResult.Invalid, StratumErrorCode.Other, ShareRejectReason.NtimeFuture, diff);
    }
    const nonce = parseHexWord(submission.nonce);
    if (nonce < 0) return reject(ShareResult.Invalid, StratumErrorCode.Other, ShareRejectReason.Nonce, diff);
    let version = job.version;
    if (submission.versionBits !== undefined && submission.versionBits !== null) {
      const bits = parseHexWord(submission.versionBits);
      if (bits < 0)
        return reject(ShareResult.Invalid, StratumErrorCode.Other, ShareRejectReason.VersionBits, diff);
      const mask = context.versionMask;
      if ((bits & ~mask) !== 0) {
        return reject(ShareResult.Invalid, StratumErrorCode.Other, ShareRejectReason.VersionMask, diff);
      }
      version = ((version & ~mask) | (bits & mask)) >>> 0;
    }
    coinbase.set(context.extranonce1, extranonce1Offset);

    const key = job.keyScratch;
    const extranonceEnd = extranonce2Offset + extranonce2Size;
    coinbase.copy(key, 0, extranonce1Offset, extranonceEnd);
    let at = extranonceEnd - extranonce1Offset;
    at = key.writeUInt32LE(ntime, at);
    at = key.writeUInt32LE(nonce, at);
    key.writeUInt32LE(version, at);
    const keyString = key.toString('latin1');
    if (job.dedupe.has(keyString)) {
      return reject(
        ShareResult.Duplicate,
        StratumErrorCode.Duplicate,
        ShareRejectReason.Duplicate,
        diff,
        version,
      );
    }

    const root = sha256dMerkleRoot(sha256d(coinbase), job.branch);
    header.writeUInt32LE(version, 0);
    root.copy(header, 36);
    header.writeUInt32LE(ntime, 68);
    header.writeUInt32LE(nonce, 76);
    return { job, diff, shareTarget, version, key: keyString };
  }

  #finish(share: Pending, pow: Uint8Array, header: Buffer): ShareVerdict {
    const { job, diff, version } = share;
    const actualDiff = difficultyFromHash(pow, job.targets.params.shareDiffMultiplier);
    const blockCandidate = hashMeetsTarget(pow, job.networkTarget);
    // A block is worth more than any share: credit it even when the share target is higher
    // than the network's (regtest).
    if (!blockCandidate && !hashMeetsTarget(pow, share.shareTarget)) {
      return reject(
        ShareResult.LowDiff,
        StratumErrorCode.LowDifficulty,
        ShareRejectReason.LowDifficulty,
        diff,
        version,
        actualDiff,
      );
    }
    const added = job.dedupe.add(share.key);
    if (added === 'duplicate') {
      return reject(
        ShareResult.Duplicate,
        StratumErrorCode.Duplicate,
        ShareRejectReason.Duplicate,
        diff,
        version,
        actualDiff,
      );
    }
    if (added === 'full' && !blockCandidate) {
      return reject(
        ShareResult.Stale,
        StratumErrorCode.JobNotFound,
        ShareRejectReason.JobFull,
        diff,
        version,
        actualDiff,
      );
    }
    if (!blockCandidate) {
      return {
        ...NO_VERDICT,
        result: ShareResult.Accepted,
        code: null,
        reason: null,
        diff,
        version,
        actualDiff,
      };
    }
    const blockHash = job.algorithm === 'sha256d' ? pow : sha256dHeaders(header);
    return {
      result: ShareResult.Accepted,
      code: null,
      reason: null,
      diff,
      actualDiff,
      version,
      blockCandidate: true,
      blockHash: hashToDisplayHex(blockHash),
      header: Buffer.from(header),
    };
  }
}

function isPending(value: ShareVerdict | Pending): value is Pending {
  return 'key' in value;
}
