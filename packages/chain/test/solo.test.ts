import {
  BITCOIN_MAIN,
  type BlockTemplate,
  ChainError,
  addressToScript,
  buildCoinbaseForTemplate,
  buildJob,
  buildSoloCoinbaseEnd,
  soloCoinb2,
  soloFeeSat,
  soloPayouts,
} from '@hashwire/chain';
import { describe, expect, it } from 'vitest';
import { bitcoinBlock } from './fixtures/load.js';

const btc = bitcoinBlock();
const template: BlockTemplate = {
  version: btc.version,
  previousblockhash: btc.previousblockhash,
  transactions: [],
  coinbaseaux: {},
  coinbasevalue: btc.coinbaseOutputs[0]!.valueSat,
  target: `00000000000000000008${'ff'.repeat(22)}`,
  mintime: btc.time - 600,
  curtime: btc.time,
  bits: btc.bits,
  height: btc.height,
  default_witness_commitment: btc.coinbaseOutputs[1]!.scriptHex,
};
const finders = [
  '1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa',
  'bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4',
  btc.coinbaseOutputs[0]!.address!,
];
const feeAddress = '3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy';
const sizes = { extranonce1Size: 4, extranonce2Size: 8 };

describe('SOLO coinbase', () => {
  it('takes the fee in integers, rounding down', () => {
    expect(soloFeeSat(625_000_000, 150)).toBe(9_375_000);
    expect(soloFeeSat(99, 150)).toBe(1);
    expect(soloFeeSat(66, 150)).toBe(0);
    expect(soloFeeSat(2_100_000_000_000_000, 1)).toBe(210_000_000_000);
  });

  for (const feeBasisPoints of [0, 150]) {
    it(`writes per finder exactly the coinb2 of a coinbase built for that finder (fee ${feeBasisPoints} bp)`, () => {
      const fee = { feeBasisPoints, feeAddress };
      const end = buildSoloCoinbaseEnd(template, { params: BITCOIN_MAIN, poolTag: '/t/', fee, ...sizes });
      for (const finder of finders) {
        const whole = buildCoinbaseForTemplate(template, {
          params: BITCOIN_MAIN,
          poolTag: '/t/',
          payouts: soloPayouts({ address: finder }, template.coinbasevalue, fee),
          ...sizes,
        });
        expect(soloCoinb2(end, addressToScript(finder, BITCOIN_MAIN)).toString('hex')).toBe(
          whole.coinb2.toString('hex'),
        );
        const finderOut = whole.outputs[0]!;
        expect(finderOut.script.equals(addressToScript(finder, BITCOIN_MAIN))).toBe(true);
        expect(finderOut.valueSat).toBe(
          template.coinbasevalue - soloFeeSat(template.coinbasevalue, feeBasisPoints),
        );
        // finder, the fee output when there is a fee, the witness commitment
        expect(whole.outputs).toHaveLength(feeBasisPoints > 0 ? 3 : 2);
        if (feeBasisPoints > 0) {
          expect(whole.outputs[1]!.script.equals(addressToScript(feeAddress, BITCOIN_MAIN))).toBe(true);
          expect(whole.outputs[1]!.valueSat).toBe(soloFeeSat(template.coinbasevalue, feeBasisPoints));
        }
      }
    });
  }

  it('puts the cut coinbase end in the job, and keeps coinb2 the pool’s', () => {
    const base = {
      params: BITCOIN_MAIN,
      chain: 'btc-main',
      payouts: [{ address: feeAddress }],
      ...sizes,
      epoch: 1,
      jobId: '1',
      jmId: 'jm',
      cleanJobs: true,
      template,
    };
    const plain = buildJob(base).job;
    const solo = buildJob({ ...base, solo: { feeBasisPoints: 100, feeAddress } }).job;
    expect(plain.solo).toBeUndefined();
    expect(solo.coinb2).toBe(plain.coinb2);
    const end = buildSoloCoinbaseEnd(template, {
      params: BITCOIN_MAIN,
      fee: { feeBasisPoints: 100, feeAddress },
      ...sizes,
    });
    expect(solo.solo).toEqual({
      coinb2Head: end.head.toString('hex'),
      finderValueSat: end.finderValueSat,
      coinb2Tail: end.tail.toString('hex'),
    });
  });

  it('refuses a fee without a fee address, naming the setting', () => {
    expect(() => soloPayouts({ address: finders[0]! }, 100, { feeBasisPoints: 100 })).toThrow(
      /payments\.feeAddress/,
    );
    expect(() => soloPayouts({ address: finders[0]! }, 100, { feeBasisPoints: 10_001, feeAddress })).toThrow(
      ChainError,
    );
  });
});
