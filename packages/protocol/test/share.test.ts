import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  NO_JOB_ID,
  type Share,
  ShareSchemaError,
  assertShare,
  canonicalHex,
  isJobId,
  isShareName,
  shareProblem,
} from '../src/index.js';

const good: Share = {
  shareId: '3f2c9a4e-0000-4000-8000-000000000001',
  sessionId: '0123456789abcdef',
  account: 'ltc1qxhmdufsvnuaaaer4ynz88fspdsxq2h9e9cetdj',
  worker: 'rig1',
  jobId: '1a',
  extranonce1: 'f0000001',
  extranonce2: '00000000000000ff',
  ntime: '65a1b2c3',
  nonce: '0000abcd',
  version: '20000000',
  diff: 1,
  actualDiff: 1.5,
  result: 'accepted',
  ts: 1_700_000_000_000,
  ip: '10.0.0.1',
};

const withField = (change: Record<string, unknown>) => ({ ...good, ...change });

describe('the share schema', () => {
  it('accepts a share a stratum server builds, with and without a block hash', () => {
    expect(shareProblem(good)).toBeNull();
    expect(shareProblem(withField({ blockHash: 'ab'.repeat(32) }))).toBeNull();
    expect(
      shareProblem(withField({ worker: '', extranonce2: '', ntime: '', nonce: '', result: 'invalid' })),
    ).toBeNull();
    expect(shareProblem(withField({ extranonce2: 'ff'.repeat(16) }))).toBeNull();
    expect(() => assertShare(good)).not.toThrow();
  });

  it('lets only a rejected share carry NO_JOB_ID', () => {
    expect(shareProblem(withField({ jobId: NO_JOB_ID, result: 'stale' }))).toBeNull();
    expect(shareProblem(withField({ jobId: NO_JOB_ID }), 'shares[2]')).toMatch(
      /^shares\[2\]\.jobId must be 1–64/,
    );
  });

  const refused: [string, Record<string, unknown>, RegExp][] = [
    ['job id with a space', { jobId: 'a b' }, /^shares\[3\]\.jobId must be/],
    ['job id with a tab', { jobId: '1a\t2' }, /^shares\[3\]\.jobId/],
    ['job id of 65 characters', { jobId: 'a'.repeat(65) }, /^shares\[3\]\.jobId/],
    ['job id not a string', { jobId: 7 }, /^shares\[3\]\.jobId/],
    ['account empty', { account: '' }, /^shares\[3\]\.account/],
    ['account with a trailing space', { account: 'Laddr ' }, /^shares\[3\]\.account/],
    ['account with a no-break space', { account: 'L\u00a0addr' }, /^shares\[3\]\.account/],
    ['worker with |', { worker: 'a|b' }, /^shares\[3\]\.worker/],
    ['worker with an escape', { worker: 'a\u001b[31m' }, /^shares\[3\]\.worker/],
    ['worker with a line separator', { worker: 'a\u2028b' }, /^shares\[3\]\.worker/],
    ['worker with a lone surrogate', { worker: 'a\ud800' }, /^shares\[3\]\.worker/],
    ['worker of 129 characters', { worker: 'w'.repeat(129) }, /^shares\[3\]\.worker/],
    [
      'upper-case extranonce2',
      { extranonce2: '00FF' },
      /^shares\[3\]\.extranonce2 must be 0–32 lower-case hex/,
    ],
    ['extranonce2 of 17 bytes', { extranonce2: 'ff'.repeat(17) }, /^shares\[3\]\.extranonce2/],
    ['empty extranonce1', { extranonce1: '' }, /^shares\[3\]\.extranonce1/],
    ['ntime of 9 digits', { ntime: '123456789' }, /^shares\[3\]\.ntime/],
    ['nonce not hex', { nonce: 'zz' }, /^shares\[3\]\.nonce/],
    ['version of 7 digits', { version: '2000000' }, /^shares\[3\]\.version must be 8 lower-case hex/],
    ['negative difficulty', { diff: -1 }, /^shares\[3\]\.diff must be a number from 0 to 1000000000000000/],
    ['difficulty above 1e15', { diff: 2e15 }, /^shares\[3\]\.diff/],
    ['infinite actual difficulty', { actualDiff: Number.POSITIVE_INFINITY }, /^shares\[3\]\.actualDiff/],
    ['unknown result', { result: 'great' }, /^shares\[3\]\.result must be one of accepted, stale/],
    ['fractional ts', { ts: 1.5 }, /^shares\[3\]\.ts/],
    ['ip with a space', { ip: '1.2.3.4 x' }, /^shares\[3\]\.ip/],
    ['short block hash', { blockHash: 'ab' }, /^shares\[3\]\.blockHash .*\(when present\)$/],
  ];

  it.each(refused)('refuses %s with a message naming the field', (_what, change, message) => {
    expect(shareProblem(withField(change), 'shares[3]')).toMatch(message);
  });

  it('refuses what is not an object, and assertShare throws a ShareSchemaError', () => {
    for (const value of [null, 1, 'share', [good]])
      expect(shareProblem(value)).toBe('share must be an object');
    expect(() => assertShare(withField({ jobId: 'a b' }))).toThrow(ShareSchemaError);
  });

  it('never shows raw control characters or long text in a message', () => {
    const message = shareProblem(withField({ jobId: `\u001b[2J${'x'.repeat(500)}` }))!;
    expect(message).not.toContain('\u001b');
    expect(message.length).toBeLessThan(300);
  });
});

describe('field helpers', () => {
  it('canonicalHex lower-cases hex within the bound and empties anything else', () => {
    expect(canonicalHex('00FFaa', 8)).toBe('00ffaa');
    expect(canonicalHex('00ffaa', 8)).toBe('00ffaa');
    expect(canonicalHex('ff'.repeat(16), 32)).toBe('ff'.repeat(16));
    expect(canonicalHex('ff'.repeat(17), 32)).toBe('');
    expect(canonicalHex('0x12', 8)).toBe('');
    expect(canonicalHex(' 12', 8)).toBe('');
    expect(canonicalHex(12, 8)).toBe('');
  });

  it('property: canonicalHex always gives what the schema allows', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.string({ maxLength: 40 }), fc.jsonValue()),
        fc.integer({ min: 0, max: 32 }),
        (v, max) => {
          const hex = canonicalHex(v, max);
          expect(/^[0-9a-f]*$/.test(hex) && hex.length <= max).toBe(true);
        },
      ),
    );
  });

  it('isJobId and isShareName', () => {
    expect(isJobId('1a')).toBe(true);
    expect(isJobId('job-1.2:x_y')).toBe(true);
    expect(isJobId('')).toBe(false);
    expect(isJobId('a b')).toBe(false);
    expect(isShareName('矿工😀')).toBe(true);
    expect(isShareName('')).toBe(false);
    expect(isShareName('', 0)).toBe(true);
    expect(isShareName('a\u0085b')).toBe(false);
    expect(isShareName('a\ufeffb')).toBe(false);
  });
});
