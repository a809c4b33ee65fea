import {
  BITCOIN_MAIN,
  BITCOIN_REGTEST,
  ChainError,
  DIFF1_TARGET,
  LITECOIN_MAIN,
  LITECOIN_REGTEST,
  bitsToTarget,
  bufferToTarget,
  difficultyFromBits,
  difficultyFromHash,
  difficultyFromTarget,
  hashMeetsTarget,
  shareDifficultyOfHash,
  shareTarget,
  targetFromDifficulty,
  targetFromHex,
  targetToBits,
  targetToBuffer,
} from '@hashwire/chain';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadFixture } from './fixtures/load.js';

interface BitsFixture {
  targets: { bits: string; target: string }[];
  negative: string[];
  difficulties: { bits: string; difficulty: number }[];
}
const fixture = loadFixture<BitsFixture>('bits.json');
const hex64 = (n: bigint) => n.toString(16).padStart(64, '0');

describe('bits ↔ target', () => {
  it.each(fixture.targets)('$bits ↔ $target', ({ bits, target }) => {
    expect(hex64(bitsToTarget(bits))).toBe(target);
    expect(
      targetToBits(BigInt(`0x${target}`))
        .toString(16)
        .padStart(8, '0'),
    ).toBe(bits);
  });

  it('1d00ffff is diff1, regtest 207fffff is 0x7fffff << 232', () => {
    expect(bitsToTarget('1d00ffff')).toBe(DIFF1_TARGET);
    expect(bitsToTarget(0x207fffff)).toBe(0x7fffffn << 232n);
    expect(bitsToTarget(BITCOIN_REGTEST.powLimitBits)).toBe(0x7fffffn << 232n);
    expect(bitsToTarget(LITECOIN_MAIN.powLimitBits)).toBe((LITECOIN_MAIN.powLimit >> 216n) << 216n);
  });

  it.each(fixture.negative)('refuses %s (sign bit set: negative target)', (bits) => {
    expect(() => bitsToTarget(bits)).toThrow(/negative/);
  });

  it('refuses overflowing and malformed bits', () => {
    expect(() => bitsToTarget(0x23010000)).toThrow(/overflow/);
    expect(() => bitsToTarget('xyz')).toThrow(ChainError);
    expect(() => bitsToTarget(-1)).toThrow(ChainError);
  });

  it('round-trips targetToBits(bitsToTarget(b)) for normalized bits', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 4, max: 32 }),
        fc.integer({ min: 0x8000, max: 0x7fffff }),
        (size, word) => {
          const bits = ((size << 24) | word) >>> 0;
          expect(targetToBits(bitsToTarget(bits))).toBe(bits);
        },
      ),
    );
  });

  it('parses the GBT target field', () => {
    expect(targetFromHex(hex64(DIFF1_TARGET))).toBe(DIFF1_TARGET);
    expect(() => targetFromHex('00ff')).toThrow(/32 bytes/);
  });
});

describe('network difficulty', () => {
  it.each(fixture.difficulties)('$bits → $difficulty (daemon getblock value)', ({ bits, difficulty }) => {
    expect(difficultyFromBits(bits)).toBeCloseTo(difficulty, 2);
    expect(difficultyFromTarget(bitsToTarget(bits))).toBeCloseTo(difficulty, 2);
  });
});

describe('share difficulty conventions', () => {
  it('sha256d: diff 1 is 0x00000000ffff0000…', () => {
    expect(hex64(shareTarget(BITCOIN_MAIN, 1))).toBe(`00000000ffff${'0'.repeat(52)}`);
  });

  it('scrypt: diff 1 is diff1 × 65536 = 0x0000ffff0000… (cpuminer/cgminer)', () => {
    expect(hex64(shareTarget(LITECOIN_MAIN, 1))).toBe(`0000ffff${'0'.repeat(56)}`);
    expect(shareTarget(LITECOIN_REGTEST, 65536)).toBe(DIFF1_TARGET);
  });

  it('handles fractional and huge difficulties exactly', () => {
    expect(targetFromDifficulty(0.5)).toBe(DIFF1_TARGET * 2n);
    expect(targetFromDifficulty(1024)).toBe(DIFF1_TARGET / 1024n);
    // 0.001 is not exact in binary: the target is diff1 × 1000 less a relative 2e-17.
    const milli = targetFromDifficulty(0.001);
    expect(milli <= DIFF1_TARGET * 1000n).toBe(true);
    expect(DIFF1_TARGET * 1000n - milli < DIFF1_TARGET / 10n ** 12n).toBe(true);
    expect(targetFromDifficulty(1e-300)).toBe((1n << 256n) - 1n);
    expect(difficultyFromTarget(targetFromDifficulty(12345.678))).toBeCloseTo(12345.678, 6);
    expect(difficultyFromTarget(targetFromDifficulty(3.25, 65536), 65536)).toBeCloseTo(3.25, 12);
  });

  it('refuses non-positive or non-finite difficulty', () => {
    for (const d of [0, -1, Number.NaN, Number.POSITIVE_INFINITY])
      expect(() => shareTarget(LITECOIN_MAIN, d)).toThrow(/positive/);
  });

  it('computes the difficulty a hash achieved, per convention', () => {
    const hash = targetToBuffer(DIFF1_TARGET / 1000n);
    expect(difficultyFromHash(hash)).toBeCloseTo(1000, 9);
    expect(shareDifficultyOfHash(LITECOIN_MAIN, hash)).toBeCloseTo(65536000, 3);
    expect(shareDifficultyOfHash(BITCOIN_MAIN, hash)).toBeCloseTo(1000, 9);
    expect(difficultyFromHash(Buffer.alloc(32))).toBe(Number.POSITIVE_INFINITY);
  });
});

describe('hashMeetsTarget (byte compare, no bigint)', () => {
  it('accepts equal and lower hashes, refuses higher ones', () => {
    const target = targetToBuffer(DIFF1_TARGET);
    expect(hashMeetsTarget(targetToBuffer(DIFF1_TARGET), target)).toBe(true);
    expect(hashMeetsTarget(targetToBuffer(DIFF1_TARGET - 1n), target)).toBe(true);
    expect(hashMeetsTarget(targetToBuffer(DIFF1_TARGET + 1n), target)).toBe(false);
  });

  it('agrees with bigint comparison on random hashes and targets', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        (h, t) => {
          expect(hashMeetsTarget(h, t)).toBe(bufferToTarget(h) <= bufferToTarget(t));
        },
      ),
    );
  });

  it('stores targets little-endian, like hashes', () => {
    const buf = targetToBuffer(0x0102n);
    expect(buf[0]).toBe(2);
    expect(buf[1]).toBe(1);
    expect(bufferToTarget(buf)).toBe(0x0102n);
  });
});
