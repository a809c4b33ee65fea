import {
  bitsToTarget,
  merkleRootFromBranch,
  prevHashFromStratum,
  sha256d,
  shareTarget,
  targetToBuffer,
  writeHeader,
} from '@hashwire/chain';

const HEADER_BYTES = 80;
const HASH_BYTES = 32;
const NONCE_SPACE = 2 ** 32;
const HEX8 = /^[0-9a-fA-F]{8}$/;
const HEX64 = /^[0-9a-fA-F]{64}$/;
const HEX = /^(?:[0-9a-fA-F]{2})*$/;

/** A `mining.notify` turned into bytes, with the session state it was received under. */
export interface MinerJob {
  readonly jobId: string;
  /** Stratum form, lower-case hex, as received. */
  readonly prevhash: string;
  readonly prevHash: Buffer;
  readonly coinb1: Buffer;
  readonly coinb2: Buffer;
  /** Merkle branch packed into k×32 bytes. */
  readonly branch: Buffer;
  readonly version: number;
  readonly bits: number;
  readonly ntime: number;
  readonly ntimeHex: string;
  readonly cleanJobs: boolean;
  /** Share difficulty in force when the job arrived: later set_difficulty messages do not change it. */
  readonly difficulty: number;
  readonly shareTarget: Buffer;
  readonly networkTarget: Buffer;
  readonly extranonce1: Buffer;
  readonly extranonce2Size: number;
}

export interface JobContext {
  difficulty: number;
  /** 1 for sha256d, 65536 for scrypt (diff1 × multiplier / D). */
  shareDiffMultiplier: number;
  extranonce1: Buffer;
  extranonce2Size: number;
}

/** Parses `mining.notify` params; throws an Error naming the bad field. */
export function parseNotify(params: unknown[], context: JobContext): MinerJob {
  const [jobId, prevhash, coinb1, coinb2, branch, version, nbits, ntime, cleanJobs] = params;
  if (typeof jobId !== 'string' || jobId.length === 0) throw new Error('notify: job id must be a string');
  if (typeof prevhash !== 'string' || !HEX64.test(prevhash))
    throw new Error('notify: prevhash must be 64 hex digits');
  if (typeof coinb1 !== 'string' || !HEX.test(coinb1)) throw new Error('notify: coinb1 must be hex');
  if (typeof coinb2 !== 'string' || !HEX.test(coinb2)) throw new Error('notify: coinb2 must be hex');
  if (!Array.isArray(branch) || !branch.every((h) => typeof h === 'string' && HEX64.test(h))) {
    throw new Error('notify: merkle branch must be a list of 64-hex-digit hashes');
  }
  for (const [name, value] of [
    ['version', version],
    ['nbits', nbits],
    ['ntime', ntime],
  ] as const) {
    if (typeof value !== 'string' || !HEX8.test(value))
      throw new Error(`notify: ${name} must be 8 hex digits`);
  }
  const bits = Number.parseInt(nbits as string, 16);
  return {
    jobId,
    prevhash: prevhash.toLowerCase(),
    prevHash: prevHashFromStratum(prevhash),
    coinb1: Buffer.from(coinb1, 'hex'),
    coinb2: Buffer.from(coinb2, 'hex'),
    branch: Buffer.concat(branch.map((h: string) => Buffer.from(h, 'hex'))),
    version: Number.parseInt(version as string, 16),
    bits,
    ntime: Number.parseInt(ntime as string, 16),
    ntimeHex: (ntime as string).toLowerCase(),
    cleanJobs: cleanJobs === true,
    difficulty: context.difficulty,
    shareTarget: targetToBuffer(
      shareTarget({ shareDiffMultiplier: context.shareDiffMultiplier }, context.difficulty),
    ),
    networkTarget: targetToBuffer(bitsToTarget(bits)),
    extranonce1: context.extranonce1,
    extranonce2Size: context.extranonce2Size,
  };
}

/** Puts the bits of `counter` into the set bits of `mask`, lowest first (a software PDEP). */
export function spreadIntoMask(counter: number, mask: number): number {
  let out = 0;
  let bit = 1;
  for (let m = mask >>> 0; m !== 0; m = (m & (m - 1)) >>> 0) {
    if (counter & bit) out |= m & -m;
    bit <<= 1;
  }
  return out >>> 0;
}

function popcount(value: number): number {
  let n = 0;
  for (let m = value >>> 0; m !== 0; m = (m & (m - 1)) >>> 0) n++;
  return n;
}

export function hex8(value: number): string {
  return (value >>> 0).toString(16).padStart(8, '0');
}

/** One run of headers that differ only in the nonce. */
export interface WorkBatch {
  readonly job: MinerJob;
  readonly extranonce2: Buffer;
  /** Rolled bits (inside the mask) or null without version rolling. */
  readonly versionBits: number | null;
  readonly version: number;
  readonly nonceStart: number;
  readonly count: number;
  /** count×80 bytes; a shared scratch buffer, valid only until the next batch is filled. */
  readonly headers: Buffer;
}

export interface ShareHit {
  readonly nonce: number;
  /** PoW hash, internal byte order (a copy). */
  readonly hash: Buffer;
  readonly blockCandidate: boolean;
}

// One scratch buffer for every worker in the process: headers are filled and handed to the
// hash function synchronously (the native scrypt copies its input before going off-thread).
let scratch: Buffer = Buffer.alloc(0);

function scratchFor(count: number): Buffer {
  if (scratch.length < count * HEADER_BYTES) scratch = Buffer.alloc(count * HEADER_BYTES);
  return scratch.subarray(0, count * HEADER_BYTES);
}

/** Whether the little-endian 32-byte number at `hashes[at..]` is ≤ `target`. */
function meets(hashes: Buffer, at: number, target: Buffer): boolean {
  for (let i = 31; i >= 0; i--) {
    const h = hashes[at + i]!;
    const t = target[i]!;
    if (h !== t) return h < t;
  }
  return true;
}

/**
 * Walks one worker's search space: extranonce2 (a counter kept across jobs, so a job sent
 * again never gives the same share twice), then version bits inside the mask (one value per
 * batch), then the nonce.
 */
export class WorkScanner {
  private job: MinerJob | null = null;
  private mask: number | null = null;
  private extranonce2Counter = 0;
  private extranonce2: Buffer = Buffer.alloc(0);
  private merkleRoot: Buffer = Buffer.alloc(32);
  private rollCounter = 0;
  private rollValues = 1;
  private nonce = 0;

  /** Switches to `job` / `mask` when either changed (starting a fresh extranonce2). */
  use(job: MinerJob, mask: number | null): void {
    if (job === this.job && mask === this.mask) return;
    this.job = job;
    this.mask = mask;
    this.rollValues = mask === null ? 1 : 2 ** Math.min(popcount(mask), 30);
    this.nextExtranonce2();
  }

  /** Fills the next `count` headers (fewer at the end of the nonce space). */
  fill(count: number): WorkBatch {
    const job = this.job;
    if (!job) throw new Error('WorkScanner.fill before use()');
    const n = Math.min(count, NONCE_SPACE - this.nonce);
    const versionBits = this.mask === null ? null : spreadIntoMask(this.rollCounter, this.mask);
    const version = versionBits === null ? job.version : ((job.version & ~this.mask!) | versionBits) >>> 0;
    const headers = scratchFor(n);
    writeHeader(headers, {
      version,
      prevHash: job.prevHash,
      merkleRoot: this.merkleRoot,
      time: job.ntime,
      bits: job.bits,
      nonce: 0,
    });
    // Copy the first header over the rest by doubling: log2(n) copies instead of n.
    for (let filled = HEADER_BYTES; filled < headers.length; filled *= 2) {
      headers.copyWithin(filled, 0, Math.min(filled, headers.length - filled));
    }
    const nonceStart = this.nonce;
    for (let i = 0; i < n; i++) headers.writeUInt32LE(nonceStart + i, i * HEADER_BYTES + 76);
    const batch: WorkBatch = {
      job,
      extranonce2: this.extranonce2,
      versionBits,
      version,
      nonceStart,
      count: n,
      headers,
    };
    this.advance(n);
    return batch;
  }

  /** The hashes of `batch` that meet its job's share target. */
  scan(batch: WorkBatch, hashes: Buffer): ShareHit[] {
    const hits: ShareHit[] = [];
    const target = batch.job.shareTarget;
    const top = target[31]!;
    for (let i = 0; i < batch.count; i++) {
      const at = i * HASH_BYTES;
      // Most hashes lose on their most significant byte.
      if (hashes[at + 31]! > top || !meets(hashes, at, target)) continue;
      hits.push({
        nonce: batch.nonceStart + i,
        hash: Buffer.from(hashes.subarray(at, at + HASH_BYTES)),
        blockCandidate: meets(hashes, at, batch.job.networkTarget),
      });
    }
    return hits;
  }

  private advance(n: number): void {
    this.rollCounter++;
    if (this.rollCounter < this.rollValues) return;
    this.rollCounter = 0;
    this.nonce += n;
    if (this.nonce >= NONCE_SPACE) this.nextExtranonce2();
  }

  private nextExtranonce2(): void {
    const job = this.job!;
    const en2 = Buffer.alloc(job.extranonce2Size);
    const counter = this.extranonce2Counter++;
    // Big-endian counter in the low bytes; a short extranonce2 wraps around.
    for (let i = en2.length - 1, rest = counter; i >= 0 && rest > 0; i--, rest = Math.floor(rest / 256)) {
      en2[i] = rest % 256;
    }
    this.extranonce2 = en2;
    const coinbase = Buffer.concat([job.coinb1, job.extranonce1, en2, job.coinb2]);
    this.merkleRoot = merkleRootFromBranch(sha256d(coinbase), job.branch);
    this.rollCounter = 0;
    this.nonce = 0;
  }
}
