import { createHash, randomBytes, scryptSync } from 'node:crypto';
import {
  BITCOIN_MAIN,
  type BlockTemplate,
  type ChainParams,
  LITECOIN_MAIN,
  buildJob,
  hashBackendInfo,
  headerFieldHex,
  shareTarget,
} from '@hashwire/chain';
import type { Job } from '@hashwire/protocol';
import {
  type PreparedJob,
  type ShareCheck,
  type ShareSubmission,
  ShareValidator,
  prepareJob,
} from '@hashwire/stratum';
import { opsPerSecond, opsPerSecondAsync } from '../measure.js';
import type { BenchResult, BenchSuite } from '../types.js';

/** Mainnet-sized template: 2,500 transactions → 12 merkle steps per share. */
const TEMPLATE_TXS = 2500;
const SESSIONS = 1000;
const EN1_SIZE = 4;
const EN2_SIZE = 8;
const SHARES_PER_ROUND = 256;
const SCRYPT_BATCH = 64;
const SHARES_TARGET = 20_000;
/** Every hash meets it: each share goes the whole way, dedupe insert included. */
const ANY_DIFF = 1e-12;

function template(txCount: number): BlockTemplate {
  return {
    version: 0x20000000,
    previousblockhash: randomBytes(32).toString('hex'),
    transactions: Array.from({ length: txCount }, () => {
      const txid = randomBytes(32).toString('hex');
      return { data: `0100000001${txid}`, txid, hash: txid };
    }),
    coinbaseaux: {},
    coinbasevalue: 625_000_000,
    target: `000000000000000000${'ff'.repeat(23)}`,
    mintime: 1_670_461_000,
    curtime: 1_670_462_000,
    bits: '17083830',
    height: 766390,
    default_witness_commitment: `6a24aa21a9ed${randomBytes(32).toString('hex')}`,
  };
}

function makeJob(params: ChainParams, jobId: string): Job {
  return buildJob({
    template: template(TEMPLATE_TXS),
    params,
    chain: 'bench',
    payouts: [{ script: Buffer.from(`0014${'35'.repeat(20)}`, 'hex') }],
    extranonce1Size: EN1_SIZE,
    extranonce2Size: EN2_SIZE,
    epoch: 1,
    jobId,
    jmId: 'bench',
    cleanJobs: true,
  }).job;
}

/** Shares from many sessions, as they arrive: distinct extranonce1, counting extranonce2 and nonce. */
class ShareStream {
  readonly extranonce1s = Array.from({ length: SESSIONS }, (_, i) => {
    const en1 = Buffer.alloc(EN1_SIZE);
    en1.writeUInt32BE(i + 1);
    return en1;
  });
  #n = 0;

  constructor(readonly ntimeHex: string) {}

  next(): { extranonce1: Buffer; submission: ShareSubmission } {
    const n = this.#n++;
    return {
      extranonce1: this.extranonce1s[n % SESSIONS]!,
      submission: {
        extranonce2: Math.floor(n / SESSIONS)
          .toString(16)
          .padStart(2 * EN2_SIZE, '0'),
        ntime: this.ntimeHex,
        nonce: headerFieldHex(n),
      },
    };
  }
}

function sha256dNaive(data: Buffer): Buffer {
  return createHash('sha256').update(createHash('sha256').update(data).digest()).digest();
}

/**
 * The same validation written the obvious way: hex decoded per share, coinbase concatenated,
 * every merkle step a Buffer.concat and two createHash calls, header built fresh, bigint compare.
 */
function naiveValidator(job: Job, params: ChainParams, diff: number) {
  const branch = job.merkleBranch;
  const prevHash = Buffer.from(job.prevhash, 'hex');
  for (let i = 0; i < 32; i += 4) prevHash.subarray(i, i + 4).reverse();
  const target = shareTarget(params, diff);
  const seen = new Set<string>();
  return (extranonce1: Buffer, s: ShareSubmission): boolean => {
    const extranonce2 = Buffer.from(s.extranonce2 as string, 'hex');
    if (extranonce2.length !== EN2_SIZE) return false;
    const coinbase = Buffer.concat([
      Buffer.from(job.coinb1, 'hex'),
      extranonce1,
      extranonce2,
      Buffer.from(job.coinb2, 'hex'),
    ]);
    let root = sha256dNaive(coinbase);
    for (const step of branch) root = sha256dNaive(Buffer.concat([root, Buffer.from(step, 'hex')]));
    const header = Buffer.alloc(80);
    header.writeUInt32LE(Number.parseInt(job.version, 16), 0);
    prevHash.copy(header, 4);
    root.copy(header, 36);
    header.writeUInt32LE(Number.parseInt(s.ntime as string, 16), 68);
    header.writeUInt32LE(Number.parseInt(job.nbits, 16), 72);
    header.writeUInt32LE(Number.parseInt(s.nonce as string, 16), 76);
    const pow = sha256dNaive(header);
    const ok = BigInt(`0x${Buffer.from(pow).reverse().toString('hex')}`) <= target;
    const key = `${extranonce1.toString('hex')}:${s.extranonce2}:${s.ntime}:${s.nonce}`;
    if (ok && !seen.has(key)) seen.add(key);
    return ok;
  };
}

/**
 * `stratum.shares_per_s`: sha256d shares validated per second in one process against a
 * 2,500-transaction template (12 merkle steps), baseline the naive node:crypto version in the
 * same run. Also scrypt shares per second through the batch path (one scryptHeaders call per
 * batch of 64), baseline crypto.scryptSync per share.
 */
export const stratumSharesSuite: BenchSuite = {
  name: 'stratum-shares',
  description: 'stratum share validation (sha256d sync path, scrypt batch path)',
  async run(ctx) {
    const seconds = ctx.quick ? 0.3 : 2;
    const info = hashBackendInfo();
    ctx.log(`stratum-shares: hash backend ${info.backend} (sha256d ${info.kernels.sha256d})`);
    const validator = new ShareValidator();
    const results: BenchResult[] = [];

    const shaJob = makeJob(BITCOIN_MAIN, 'sha');
    const prepareOptions = { params: BITCOIN_MAIN, extranonce1Size: EN1_SIZE, extranonce2Size: EN2_SIZE };
    // A fresh job per measurement keeps the duplicate set as big as one job's would be.
    let job: PreparedJob = prepareJob(shaJob, prepareOptions);
    const steps = job.branch.length / 32;
    let stream = new ShareStream(shaJob.ntime);
    let accepted = 0;
    ctx.log(
      `stratum-shares: sha256d, ${TEMPLATE_TXS} transactions (${steps} merkle steps), ${SESSIONS} sessions`,
    );
    const rate = opsPerSecond(() => {
      for (let i = 0; i < SHARES_PER_ROUND; i++) {
        const share = stream.next();
        const verdict = validator.validate(
          job,
          { extranonce1: share.extranonce1, diff: ANY_DIFF, versionMask: 0 },
          share.submission,
        );
        if (verdict.result === 'accepted') accepted++;
      }
      return SHARES_PER_ROUND;
    }, seconds);
    if (accepted === 0) throw new Error('stratum-shares: no share was accepted; the bench measures nothing');

    ctx.log('stratum-shares: sha256d baseline, node:crypto createHash per step');
    stream = new ShareStream(shaJob.ntime);
    const naive = naiveValidator(shaJob, BITCOIN_MAIN, ANY_DIFF);
    const baseline = opsPerSecond(() => {
      for (let i = 0; i < SHARES_PER_ROUND; i++) {
        const share = stream.next();
        naive(share.extranonce1, share.submission);
      }
      return SHARES_PER_ROUND;
    }, seconds);
    results.push({
      name: 'stratum.shares_per_s',
      value: Math.round(rate),
      unit: 'shares/s',
      higherIsBetter: true,
      baseline: { name: `naive createHash per merkle step (${steps} steps)`, value: Math.round(baseline) },
      target: `>= ${SHARES_TARGET}`,
      met: rate >= SHARES_TARGET,
    });

    ctx.log('stratum-shares: sha256d through validateBatch, batches of 64');
    job = prepareJob(shaJob, prepareOptions);
    stream = new ShareStream(shaJob.ntime);
    const batchRate = await opsPerSecondAsync(async () => {
      const checks: ShareCheck[] = [];
      for (let i = 0; i < SCRYPT_BATCH; i++) {
        const share = stream.next();
        checks.push({
          job,
          context: { extranonce1: share.extranonce1, diff: ANY_DIFF, versionMask: 0 },
          submission: share.submission,
        });
      }
      return (await validator.validateBatch(checks)).length;
    }, seconds);
    results.push({
      name: 'stratum.shares_per_s.batch',
      value: Math.round(batchRate),
      unit: 'shares/s',
      higherIsBetter: true,
      baseline: { name: `naive createHash per merkle step (${steps} steps)`, value: Math.round(baseline) },
    });

    const scryptJob = makeJob(LITECOIN_MAIN, 'scrypt');
    const scryptPrepared = prepareJob(scryptJob, { ...prepareOptions, params: LITECOIN_MAIN });
    stream = new ShareStream(scryptJob.ntime);
    ctx.log(`stratum-shares: scrypt through validateBatch, batches of ${SCRYPT_BATCH}, all cores`);
    const scryptRate = await opsPerSecondAsync(async () => {
      const checks: ShareCheck[] = [];
      for (let i = 0; i < SCRYPT_BATCH; i++) {
        const share = stream.next();
        checks.push({
          job: scryptPrepared,
          context: { extranonce1: share.extranonce1, diff: ANY_DIFF, versionMask: 0 },
          submission: share.submission,
        });
      }
      return (await validator.validateBatch(checks)).length;
    }, seconds);
    ctx.log('stratum-shares: scrypt baseline, crypto.scryptSync per share header (one core)');
    const header = randomBytes(80);
    const params = { N: 1024, r: 1, p: 1, maxmem: 4 * 1024 * 1024 };
    const scryptBaseline = opsPerSecond(() => {
      for (let i = 0; i < 8; i++) scryptSync(header, header, 32, params);
      return 8;
    }, seconds);
    results.push({
      name: 'stratum.scrypt_shares_per_s',
      value: Math.round(scryptRate),
      unit: 'shares/s',
      higherIsBetter: true,
      baseline: {
        name: 'crypto.scryptSync per share, PoW only, one core',
        value: Math.round(scryptBaseline),
      },
    });
    return results;
  },
};
