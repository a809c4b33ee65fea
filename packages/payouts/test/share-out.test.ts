import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { coinToSat, decimalToUnits, diffToWeight, satToCoin } from '../src/amounts.js';
import { computeShareOut, feePercentToBasisPoints } from '../src/share-out.js';
import { pplnsWindowWeight } from '../src/window.js';

describe('amounts', () => {
  it('reads difficulties in 10^-8 units, exponent notation and half-up rounding included', () => {
    expect(diffToWeight('1')).toBe(100_000_000n);
    expect(diffToWeight('0.125')).toBe(12_500_000n);
    expect(diffToWeight('1e-7')).toBe(10n);
    expect(diffToWeight('1.0000000000000001e-05')).toBe(1000n);
    expect(diffToWeight('0.30000000000000004')).toBe(30_000_000n);
    expect(decimalToUnits('0.000000005', 8)).toBe(1n);
    expect(decimalToUnits('0.0000000049', 8)).toBe(0n);
    expect(() => diffToWeight('-1')).toThrow(/non-negative decimal/);
    expect(() => diffToWeight('NaN')).toThrow(/non-negative decimal/);
  });

  it('converts daemon amounts to satoshis and back without loss', () => {
    expect(coinToSat(0.1)).toBe(10_000_000n);
    expect(coinToSat(-12.5)).toBe(-1_250_000_000n);
    expect(coinToSat(20_999_999.99999999)).toBe(2_099_999_999_999_999n);
    expect(satToCoin(1n)).toBe('0.00000001');
    expect(satToCoin(625_000_000n)).toBe('6.25000000');
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 2_100_000_000_000_000n }), (sat) => {
        expect(coinToSat(Number(satToCoin(sat)))).toBe(sat);
      }),
    );
  });
});

describe('computeShareOut', () => {
  it('divides by weight, rounds each credit down and names the remainder', () => {
    const out = computeShareOut({
      rewardSat: 625_000_000n,
      feeBasisPoints: 150, // 1.5 %
      weights: new Map([
        ['a', 1n],
        ['b', 1n],
        ['c', 1n],
      ]),
    });
    // fee ⌊625000000 × 150 / 10000⌋ = 9375000; pot 615625000; each ⌊615625000 / 3⌋ = 205208333; remainder 1
    expect(out.feeSat).toBe(9_375_000n);
    expect([...out.credits.values()]).toEqual([205_208_333n, 205_208_333n, 205_208_333n]);
    expect(out.remainderSat).toBe(1n);
  });

  it('accounts for every satoshi, whatever the weights', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: 5_000_000_000n }),
        fc.integer({ min: 0, max: 10_000 }),
        fc.array(fc.bigInt({ min: 0n, max: 10n ** 18n }), { maxLength: 40 }),
        (reward, bp, list) => {
          const weights = new Map(list.map((w, i) => [`acct${i}`, w] as const));
          const out = computeShareOut({ rewardSat: reward, feeBasisPoints: bp, weights });
          let credited = 0n;
          for (const sat of out.credits.values()) credited += sat;
          expect(out.feeSat + out.remainderSat + credited).toBe(reward);
          expect(out.remainderSat >= 0n).toBe(true);
          expect(out.remainderSat < BigInt(Math.max(1, weights.size)) || out.totalWeight === 0n).toBe(true);
        },
      ),
    );
  });

  it('refuses a fee with more than two decimals', () => {
    expect(feePercentToBasisPoints(1.25)).toBe(125);
    expect(() => feePercentToBasisPoints(1.255)).toThrow(/two decimals/);
  });
});

describe('pplnsWindowWeight', () => {
  it('is factor × the network difficulty of the block in share units, exactly', () => {
    // Regtest bits 207fffff: target 0x7fffff << 232, diff1 0xffff << 208, so in scrypt share
    // units (× 65536) the difficulty is 65535 / (8388607 × 256); × 8388607 → 65535 / 256.
    expect(pplnsWindowWeight('207fffff', 8388607, 65536)).toBe((65535n * 100_000_000n) / 256n);
    expect(pplnsWindowWeight('207fffff', 2, 65536)).toBe((2n * 65535n * 100_000_000n) / (8388607n * 256n));
    // Litecoin mainnet-like bits: factor 2.
    const n = pplnsWindowWeight('1a0d2c8e', 2, 65536);
    expect(n > 0n).toBe(true);
  });
});
