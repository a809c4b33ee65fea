import {
  BITCOIN_MAIN,
  LITECOIN_MAIN,
  blockHashHex,
  difficultyFromBits,
  difficultyFromHash,
  headerFieldHex,
  scryptHash,
} from '@hashwire/chain';
import { ShareResult, StratumErrorCode } from '@hashwire/protocol';
import {
  JobBook,
  type PreparedJob,
  type ShareContext,
  ShareRejectReason,
  type ShareSubmission,
  ShareValidator,
  createJobDifficulties,
  difficultyForJob,
  parseHexWord,
  prepareJob,
  recordJobSent,
} from '@hashwire/stratum';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EASY_TARGET, bitcoinBlock, litecoinBlock, makeJob, realBlockJob } from './share-fixtures.js';

const EN1 = Buffer.from('0a0b0c0d', 'hex');
/** Difficulty so low its target is the largest possible: every hash meets it. */
const ANY = 1e-12;
/** Difficulty no test hash meets by chance. */
const HUGE = 1e15;
const MASK = 0x1fffe000;
const prepare = { params: BITCOIN_MAIN, extranonce1Size: 4, extranonce2Size: 8 };

const ctx = (diff: number, extra: Partial<ShareContext> = {}): ShareContext => ({
  extranonce1: EN1,
  diff,
  versionMask: 0,
  ...extra,
});

function fresh(options: Parameters<typeof makeJob>[0] = {}, prepareOptions: object = {}): PreparedJob {
  return prepareJob(makeJob(options), { ...prepare, ...prepareOptions });
}

let counter = 0;
/** A distinct, well-formed submission for `job` (extranonce2 counts up). */
function submission(job: PreparedJob, extra: Partial<ShareSubmission> = {}): ShareSubmission {
  counter++;
  return {
    extranonce2: counter.toString(16).padStart(16, '0'),
    ntime: headerFieldHex(job.ntime),
    nonce: '00000000',
    ...extra,
  };
}

describe('real bitcoin mainnet block 766390 (segwit), submitted the way the miner did', () => {
  const block = bitcoinBlock();
  // The miner rolled the version (BIP310) from 0x20000000 within the usual mask.
  const real = realBlockJob(block, 'btc-main', 0x20000000);
  const job = prepareJob(real.job, {
    params: BITCOIN_MAIN,
    extranonce1Size: 4,
    extranonce2Size: real.extranonce2Size,
  });
  const context = ctx(65536, { extranonce1: real.extranonce1, versionMask: MASK });
  const submit = (nonce: number): ShareSubmission => ({
    extranonce2: real.extranonce2Hex,
    ntime: headerFieldHex(block.time),
    nonce: headerFieldHex(nonce),
    versionBits: headerFieldHex((block.version & MASK) >>> 0),
  });
  const validator = new ShareValidator();

  it('finds the block hash and flags a block candidate', () => {
    const verdict = validator.validate(job, context, submit(block.nonce));
    expect(verdict).toMatchObject({ result: ShareResult.Accepted, code: null, blockCandidate: true });
    expect(verdict.blockHash).toBe(block.hash);
    expect(verdict.version).toBe(block.version);
    expect(blockHashHex(verdict.header!)).toBe(block.hash);
    expect(verdict.diff).toBe(65536);
    // The share's worth is the block's: at least the network difficulty of its bits.
    expect(verdict.actualDiff).toBeGreaterThanOrEqual(difficultyFromBits(block.bits));
  });

  it('with nonce+1 it is no block, and far below the session difficulty', () => {
    const verdict = validator.validate(job, context, submit(block.nonce + 1));
    expect(verdict).toMatchObject({
      result: ShareResult.LowDiff,
      code: 23,
      blockCandidate: false,
      blockHash: null,
    });
    const low = validator.validate(job, { ...context, diff: ANY }, submit(block.nonce + 1));
    expect(low).toMatchObject({ result: ShareResult.Accepted, blockCandidate: false, blockHash: null });
  });

  it('gives the same verdicts through the batch path; the winning share a second time is a duplicate', async () => {
    const verdicts = await validator.validateBatch([
      { job, context: { ...context, diff: ANY }, submission: submit(block.nonce + 2) },
      { job, context, submission: submit(block.nonce) },
    ]);
    expect(verdicts[0]).toMatchObject({ result: ShareResult.Accepted, blockCandidate: false });
    // The sync test above already credited the block share on this job.
    expect(verdicts[1]).toMatchObject({ result: ShareResult.Duplicate, code: 22 });
    const other = prepareJob(real.job, { params: BITCOIN_MAIN, extranonce1Size: 4, extranonce2Size: 8 });
    const [again] = await validator.validateBatch([{ job: other, context, submission: submit(block.nonce) }]);
    expect(again).toMatchObject({
      result: ShareResult.Accepted,
      blockCandidate: true,
      blockHash: block.hash,
    });
  });
});

describe('real litecoin mainnet block 2383209 (scrypt, MWEB) through the scrypt batch path', () => {
  const block = litecoinBlock();
  const real = realBlockJob(block, 'ltc-main');
  const options = { params: LITECOIN_MAIN, extranonce1Size: 4, extranonce2Size: real.extranonce2Size };
  const context = ctx(1000, { extranonce1: real.extranonce1 });
  const submit = (nonce: number): ShareSubmission => ({
    extranonce2: real.extranonce2Hex,
    ntime: headerFieldHex(block.time),
    nonce: headerFieldHex(nonce),
  });
  const validator = new ShareValidator({ scryptParallelism: 2 });

  it('hashes several shares in one scryptHeaders call and finds the block', async () => {
    const job = prepareJob(real.job, options);
    const verdicts = await validator.validateBatch([
      { job, context, submission: submit(block.nonce + 1) },
      { job, context, submission: submit(block.nonce) },
      { job, context: { ...context, diff: ANY }, submission: submit(block.nonce + 2) },
      { job: undefined, context, submission: submit(block.nonce) },
    ]);
    expect(verdicts[0]).toMatchObject({ result: ShareResult.LowDiff, blockCandidate: false });
    expect(verdicts[1]).toMatchObject({ result: ShareResult.Accepted, blockCandidate: true });
    // The block hash is sha256d of the header, not the scrypt PoW hash.
    expect(verdicts[1]!.blockHash).toBe(block.hash);
    expect(verdicts[2]).toMatchObject({ result: ShareResult.Accepted, blockCandidate: false });
    expect(verdicts[3]).toMatchObject({ result: ShareResult.Stale, reason: ShareRejectReason.JobNotFound });
  });

  it('judges with the scrypt convention: target = diff1 × 65536 / D', () => {
    const job = prepareJob(real.job, options);
    const win = validator.validate(job, context, submit(block.nonce));
    expect(win.blockHash).toBe(block.hash);
    const header = Buffer.from(win.header!);
    header.writeUInt32LE(7, 76);
    const pow = scryptHash(header);
    const probe = validator.validate(job, ctx(ANY, { extranonce1: real.extranonce1 }), submit(7));
    expect(probe.actualDiff).toBe(difficultyFromHash(pow, 65536));
    expect(probe.actualDiff / difficultyFromHash(pow, 1)).toBeCloseTo(65536, 6);
    // The same share just above and just below the difficulty its hash met.
    const again = prepareJob(real.job, options);
    const at = (diff: number) =>
      validator.validate(again, ctx(diff, { extranonce1: real.extranonce1 }), submit(7)).result;
    expect(at(probe.actualDiff * 1.000001)).toBe(ShareResult.LowDiff);
    expect(at(probe.actualDiff * 0.999999)).toBe(ShareResult.Accepted);
  });
});

describe('classification', () => {
  const validator = new ShareValidator();

  it('accepts a well-formed share and credits the session difficulty for the job', () => {
    const job = fresh();
    const verdict = validator.validate(job, ctx(ANY), submission(job));
    expect(verdict).toMatchObject({ result: ShareResult.Accepted, code: null, reason: null, diff: ANY });
    expect(verdict.actualDiff).toBeGreaterThan(0);
    expect(verdict.blockCandidate).toBe(false);
  });

  it('lowdiff (23) exactly at the boundary of the share target', () => {
    const job = fresh();
    const share = submission(job);
    const probe = validator.validate(fresh(), ctx(ANY), share);
    const above = validator.validate(job, ctx(probe.actualDiff * 1.000001), share);
    expect(above).toMatchObject({ result: ShareResult.LowDiff, code: StratumErrorCode.LowDifficulty });
    expect(above.actualDiff).toBe(probe.actualDiff);
    // lowdiff shares are not remembered: the same share at a lower difficulty is judged anew
    expect(validator.validate(job, ctx(probe.actualDiff * 0.999999), share).result).toBe(
      ShareResult.Accepted,
    );
    expect(validator.validate(fresh(), ctx(HUGE), submission(job)).result).toBe(ShareResult.LowDiff);
  });

  it('duplicate (22) on the same (job, extranonce1, extranonce2, ntime, nonce, version)', () => {
    const job = fresh();
    const share = submission(job, { extranonce2: 'aabbccddeeff0011' });
    expect(validator.validate(job, ctx(ANY), share).result).toBe(ShareResult.Accepted);
    expect(validator.validate(job, ctx(ANY), share)).toMatchObject({
      result: ShareResult.Duplicate,
      code: 22,
    });
    // Hex case does not make a new share.
    expect(validator.validate(job, ctx(ANY), { ...share, extranonce2: 'AABBCCDDEEFF0011' }).result).toBe(
      ShareResult.Duplicate,
    );
    // Any one field different is a different share.
    expect(validator.validate(job, ctx(ANY), { ...share, nonce: '00000001' }).result).toBe(
      ShareResult.Accepted,
    );
    expect(
      validator.validate(job, ctx(ANY, { extranonce1: Buffer.from('01020304', 'hex') }), share).result,
    ).toBe(ShareResult.Accepted);
    const rolled = { ...share, versionBits: '00002000' };
    expect(validator.validate(job, ctx(ANY, { versionMask: MASK }), rolled).result).toBe(
      ShareResult.Accepted,
    );
    expect(validator.validate(job, ctx(ANY, { versionMask: MASK }), rolled).result).toBe(
      ShareResult.Duplicate,
    );
    // The same share on another job is not a duplicate.
    expect(validator.validate(fresh({ jobId: '2' }), ctx(ANY), share).result).toBe(ShareResult.Accepted);
  });

  it('counts two copies of one share in the same batch once', async () => {
    const job = fresh();
    const share = submission(job);
    const verdicts = await validator.validateBatch([
      { job, context: ctx(ANY), submission: share },
      { job, context: ctx(ANY), submission: share },
    ]);
    expect(verdicts.map((v) => v.result)).toEqual([ShareResult.Accepted, ShareResult.Duplicate]);
  });

  it('batches shares of one job without mixing their headers', async () => {
    const job = fresh();
    const shares = Array.from({ length: 6 }, () => submission(job));
    const batch = await validator.validateBatch(
      shares.map((s) => ({ job, context: ctx(ANY), submission: s })),
    );
    const one = fresh();
    const single = shares.map((s) => validator.validate(one, ctx(ANY), s).actualDiff);
    expect(batch.map((v) => v.actualDiff)).toEqual(single);
  });

  it('validates a job with no other transaction (empty branch: the coinbase txid is the root)', async () => {
    const job = fresh({ txCount: 0 });
    expect(job.branch.length).toBe(0);
    const share = submission(job);
    const [batched] = await validator.validateBatch([
      { job: fresh({ txCount: 0 }), context: ctx(ANY), submission: share },
    ]);
    const single = validator.validate(job, ctx(ANY), share);
    expect(single.result).toBe(ShareResult.Accepted);
    expect(batched!.actualDiff).toBe(single.actualDiff);
  });

  it('stale (21) for a job superseded by a new prevhash or unknown', () => {
    const jobs = new JobBook({ ...prepare, chain: 'btc-main' });
    jobs.add(makeJob({ jobId: 'old' }));
    const old = jobs.get('old')!;
    const share = submission(old);
    jobs.add(makeJob({ jobId: 'new', template: { previousblockhash: 'ab'.repeat(32) } }));
    expect(validator.validate(jobs.get('old'), ctx(ANY), share)).toMatchObject({
      result: ShareResult.Stale,
      code: StratumErrorCode.JobNotFound,
      reason: ShareRejectReason.Stale,
    });
    expect(validator.validate(jobs.get('nope'), ctx(ANY), share)).toMatchObject({
      result: ShareResult.Stale,
      code: 21,
      reason: ShareRejectReason.JobNotFound,
    });
    expect(validator.validate(jobs.get('new'), ctx(ANY), share).result).toBe(ShareResult.Accepted);
  });

  it('stops remembering at the per-job bound by refusing, never by forgetting', () => {
    const job = fresh({}, { maxSharesPerJob: 2 });
    const shares = [submission(job), submission(job), submission(job)];
    expect(shares.map((s) => validator.validate(job, ctx(ANY), s).result)).toEqual([
      ShareResult.Accepted,
      ShareResult.Accepted,
      ShareResult.Stale,
    ]);
    expect(validator.validate(job, ctx(ANY), shares[0]!).result).toBe(ShareResult.Duplicate);
    expect(job.dedupe.size).toBe(2);
  });

  it('throws on a difficulty that is no number (a caller bug), before remembering anything', async () => {
    const job = fresh();
    const share = submission(job);
    expect(() => validator.validate(job, ctx(0), share)).toThrow(/difficulty/);
    await expect(
      validator.validateBatch([
        { job, context: ctx(ANY), submission: share },
        { job, context: ctx(Number.NaN), submission: submission(job) },
      ]),
    ).rejects.toThrow(/difficulty/);
    expect(job.dedupe.size).toBe(0);
    expect(validator.validate(job, ctx(ANY), share).result).toBe(ShareResult.Accepted);
  });

  it('flags a block candidate even when the share target is harder than the network (regtest)', () => {
    const job = fresh({ template: { target: EASY_TARGET, bits: '207fffff' } });
    // Probability 1/2 per hash of meeting 7fff…: find one that does.
    let verdict = validator.validate(job, ctx(HUGE), submission(job));
    while (!verdict.blockCandidate) verdict = validator.validate(job, ctx(HUGE), submission(job));
    expect(verdict).toMatchObject({ result: ShareResult.Accepted, diff: HUGE });
    expect(blockHashHex(verdict.header!)).toBe(verdict.blockHash);
  });
});

describe('invalid (20) submissions, each with a clear reason', () => {
  const validator = new ShareValidator();
  const job = fresh();
  const invalid = (s: Partial<ShareSubmission>, c: Partial<ShareContext> = {}) =>
    validator.validate(job, ctx(ANY, c), submission(job, s));

  it.each([
    ['extranonce2 too short', { extranonce2: '00000000' }, ShareRejectReason.Extranonce2],
    ['extranonce2 too long', { extranonce2: '000000000000000000' }, ShareRejectReason.Extranonce2],
    ['extranonce2 odd', { extranonce2: '000000000000000' }, ShareRejectReason.Extranonce2],
    ['extranonce2 not hex', { extranonce2: '00000000000000zz' }, ShareRejectReason.Extranonce2],
    ['extranonce2 a number', { extranonce2: 12 }, ShareRejectReason.Extranonce2],
    ['ntime 7 digits', { ntime: '1234567' }, ShareRejectReason.Ntime],
    ['ntime not hex', { ntime: 'g0000000' }, ShareRejectReason.Ntime],
    ['ntime a number', { ntime: 1670462000 }, ShareRejectReason.Ntime],
    ['nonce 9 digits', { nonce: '000000000' }, ShareRejectReason.Nonce],
    ['nonce with a sign', { nonce: '-0000001' }, ShareRejectReason.Nonce],
    ['nonce null', { nonce: null }, ShareRejectReason.Nonce],
    ['version bits not hex', { versionBits: 'xyz' }, ShareRejectReason.VersionBits],
    ['version bits not a string', { versionBits: 5 }, ShareRejectReason.VersionBits],
  ])('%s', (_, patch, reason) => {
    expect(invalid(patch)).toMatchObject({
      result: ShareResult.Invalid,
      code: StratumErrorCode.Other,
      reason,
    });
  });

  it('refuses a session extranonce1 of the wrong size', () => {
    expect(invalid({}, { extranonce1: Buffer.alloc(5) }).reason).toBe(ShareRejectReason.Extranonce1);
  });

  it('keeps ntime inside the window: not before the job, at most 7200 s after (configurable)', () => {
    const at = (delta: number, v = validator) =>
      v.validate(job, ctx(ANY), submission(job, { ntime: headerFieldHex(job.ntime + delta) }));
    expect(at(-1).reason).toBe(ShareRejectReason.NtimeOld);
    expect(at(0).result).toBe(ShareResult.Accepted);
    expect(at(7200).result).toBe(ShareResult.Accepted);
    expect(at(7201).reason).toBe(ShareRejectReason.NtimeFuture);
    const lenient = new ShareValidator({ ntimeSlackBeforeSec: 60, ntimeMaxAheadSec: 600 });
    expect(at(-60, lenient).result).toBe(ShareResult.Accepted);
    expect(at(-61, lenient).reason).toBe(ShareRejectReason.NtimeOld);
    expect(at(601, lenient).reason).toBe(ShareRejectReason.NtimeFuture);
    expect(() => new ShareValidator({ ntimeMaxAheadSec: -1 })).toThrow(/ntimeMaxAheadSec/);
  });

  it('takes version bits only inside the negotiated mask and applies them', () => {
    const rolled = (bits: string, versionMask: number) =>
      validator.validate(job, ctx(ANY, { versionMask }), submission(job, { versionBits: bits }));
    const ok = rolled('1fffe000', MASK);
    expect(ok.result).toBe(ShareResult.Accepted);
    expect(ok.version).toBe(0x3fffe000);
    expect(rolled('00004000', MASK).version).toBe(0x20004000);
    expect(rolled('20000000', MASK).reason).toBe(ShareRejectReason.VersionMask);
    expect(rolled('00001000', MASK).reason).toBe(ShareRejectReason.VersionMask);
    // No mask negotiated: only zero bits (or none at all) are fine.
    expect(rolled('00002000', 0).reason).toBe(ShareRejectReason.VersionMask);
    expect(rolled('00000000', 0)).toMatchObject({ result: ShareResult.Accepted, version: 0x20000000 });
    expect(invalid({ versionBits: undefined }).version).toBe(0x20000000);
  });
});

describe('old-difficulty rule: a difficulty change applies to jobs sent after it', () => {
  it('judges a share on a job sent before the change at the old difficulty', () => {
    const validator = new ShareValidator();
    const jobs = new JobBook({ ...prepare, chain: 'btc-main' });
    const session = createJobDifficulties();
    jobs.add(makeJob({ jobId: 'before' }));
    recordJobSent(session, 'before', ANY);
    // vardiff raises the difficulty; the next job goes out with it
    jobs.add(makeJob({ jobId: 'after', cleanJobs: false }));
    recordJobSent(session, 'after', HUGE);

    const judge = (jobId: string) => {
      const job = jobs.get(jobId)!;
      return validator.validate(job, ctx(difficultyForJob(session, jobId)!), submission(job));
    };
    expect(judge('before')).toMatchObject({ result: ShareResult.Accepted, diff: ANY });
    expect(judge('after')).toMatchObject({ result: ShareResult.LowDiff, diff: HUGE });
  });
});

describe('hostile submit params (property)', () => {
  const validator = new ShareValidator();
  const job = fresh();
  const results = new Set<string>(Object.values(ShareResult));
  const hexish = fc.string({
    unit: fc.constantFrom(...'0123456789abcdefABCDEFxz-+ '.split('')),
    maxLength: 20,
  });
  const hex = (digits: number) =>
    fc.string({
      unit: fc.constantFrom(...'0123456789abcdefABCDEF'.split('')),
      minLength: digits,
      maxLength: digits,
    });
  const word = (min: number, max: number) => fc.integer({ min, max }).map(headerFieldHex);
  const field = (valid: fc.Arbitrary<string>) =>
    fc.oneof(valid, hexish, fc.anything(), fc.constant(undefined));

  it('never throws, always answers with a classified verdict', () => {
    const seen = new Set<string>();
    fc.assert(
      fc.property(
        field(hex(16)),
        field(word(job.ntime - 5, job.ntime + 7205)),
        field(hex(8)),
        field(word(0, 0xffffffff)),
        fc.constantFrom(0, MASK, 0xffffffff),
        (extranonce2, ntime, nonce, versionBits, versionMask) => {
          const verdict = validator.validate(job, ctx(ANY, { versionMask }), {
            extranonce2,
            ntime,
            nonce,
            versionBits,
          });
          seen.add(verdict.result);
          expect(results.has(verdict.result)).toBe(true);
          if (verdict.result === ShareResult.Accepted) expect(verdict.code).toBeNull();
          else expect(typeof verdict.reason).toBe('string');
          if (verdict.result === ShareResult.Invalid) expect(verdict.code).toBe(20);
        },
      ),
      { numRuns: 3000 },
    );
    // The generators reach past parsing, not only the first check.
    expect(seen).toContain(ShareResult.Accepted);
    expect(seen).toContain(ShareResult.Invalid);
  });

  it('parses a 32-bit hex word exactly like the strict reference', () => {
    fc.assert(
      fc.property(fc.oneof(hexish, fc.anything()), (value) => {
        const strict = typeof value === 'string' && /^[0-9a-fA-F]{8}$/.test(value);
        expect(parseHexWord(value)).toBe(strict ? Number.parseInt(value as string, 16) : -1);
      }),
      { numRuns: 5000 },
    );
  });
});
