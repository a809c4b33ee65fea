import {
  BITCOIN_MAIN,
  BITCOIN_REGTEST,
  ChainError,
  LITECOIN_MAIN,
  LITECOIN_REGTEST,
  assembleCoinbase,
  assembleCoinbaseForBlock,
  bip34HeightPush,
  buildCoinbase,
  buildCoinbaseForTemplate,
  stripTransaction,
  transactionLayout,
  witnessCommitmentScript,
} from '@hashwire/chain';
import { describe, expect, it } from 'vitest';
import { bitcoinBlock, litecoinBlock } from './fixtures/load.js';

const btc = bitcoinBlock();
const ltc = litecoinBlock();
const en1 = Buffer.from('01020304', 'hex');
const en2 = Buffer.from('a1a2a3a4a5a6a7a8', 'hex');
const commitment = btc.coinbaseOutputs[1]!.scriptHex;

function base(overrides: Partial<Parameters<typeof buildCoinbase>[0]> = {}) {
  return buildCoinbase({
    params: BITCOIN_MAIN,
    height: btc.height,
    coinbaseValueSat: btc.coinbaseOutputs[0]!.valueSat,
    payouts: [{ address: btc.coinbaseOutputs[0]!.address! }],
    witnessCommitment: commitment,
    extranonce1Size: 4,
    extranonce2Size: 8,
    ...overrides,
  });
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof ChainError) return e.code;
    throw e;
  }
  return 'no error';
}

/** Outputs section (count, outputs) of a non-witness serialization of a one-input coinbase. */
function outputsHex(stripped: Buffer): string {
  const scriptLength = stripped[41]!;
  return stripped.subarray(42 + scriptLength + 4, stripped.length - 4).toString('hex');
}

describe('buildCoinbase', () => {
  const cb = base();
  const tx = assembleCoinbase(cb, en1, en2);

  it('splits around extranonce1 ‖ extranonce2 inside the scriptSig', () => {
    expect(Buffer.concat([cb.coinb1, en1, en2, cb.coinb2])).toEqual(tx);
    expect(cb.size).toBe(tx.length);
    // coinb1 = version, 1 input, null prevout, scriptSig length, BIP34 height, push(12)
    expect(cb.coinb1.subarray(0, 4).toString('hex')).toBe('01000000');
    expect(cb.coinb1.subarray(5, 41).toString('hex')).toBe(`${'00'.repeat(32)}ffffffff`);
    expect(cb.coinb1.subarray(42, 46)).toEqual(bip34HeightPush(btc.height));
    expect(cb.coinb1[cb.coinb1.length - 1]).toBe(12);
    expect(cb.coinb2.includes(Buffer.from('/hashwire/'))).toBe(true);
    expect(transactionLayout(tx).flags).toBe(0);
  });

  it('serializes the same outputs, byte for byte, as the real block 766390 coinbase', () => {
    const real = stripTransaction(Buffer.from(btc.coinbaseHex, 'hex'));
    expect(outputsHex(tx)).toBe(outputsHex(real));
  });

  it('does the same for litecoin block 2383209 (P2PKH payout + commitment)', () => {
    const ours = assembleCoinbase(
      buildCoinbase({
        params: LITECOIN_MAIN,
        height: ltc.height,
        coinbaseValueSat: ltc.coinbaseOutputs[0]!.valueSat,
        payouts: [{ address: ltc.coinbaseOutputs[0]!.address! }],
        witnessCommitment: ltc.coinbaseOutputs[1]!.scriptHex,
        extranonce1Size: 4,
        extranonce2Size: 8,
      }),
      en1,
      en2,
    );
    expect(outputsHex(ours)).toBe(outputsHex(stripTransaction(Buffer.from(ltc.coinbaseHex, 'hex'))));
  });

  it('starts the scriptSig with OP_N for heights 1..16 (regtest)', () => {
    for (const height of [1, 16]) {
      const small = base({ params: BITCOIN_REGTEST, height, payouts: [{ script: Buffer.of(0x51) }] });
      expect(small.coinb1[42]).toBe(0x50 + height);
    }
  });

  it('writes into a caller buffer (one per session) without allocating', () => {
    const out = Buffer.alloc(cb.size);
    expect(assembleCoinbase(cb, en1, en2, out)).toBe(out);
    expect(out).toEqual(tx);
    expect(() => assembleCoinbase(cb, en1, Buffer.alloc(4))).toThrow(/4\/8 bytes/);
    expect(() => assembleCoinbase(cb, en1, en2, Buffer.alloc(cb.size + 1))).toThrow(ChainError);
  });
});

describe('payouts', () => {
  const scriptA = Buffer.of(0x51);
  const scriptB = Buffer.of(0x52);

  it('gives the one payout without a value what the others leave', () => {
    const cb = base({
      coinbaseValueSat: 1000,
      payouts: [{ script: scriptA, valueSat: 300 }, { script: scriptB }],
    });
    expect(cb.outputs.map((o) => o.valueSat)).toEqual([300, 700, 0]);
    expect(cb.outputs[2]!.script.toString('hex')).toBe(commitment);
  });

  it('refuses outputs paying more than coinbasevalue, naming both sums', () => {
    const overpay = () =>
      base({
        coinbaseValueSat: 1000,
        payouts: [
          { script: scriptA, valueSat: 600 },
          { script: scriptB, valueSat: 401 },
        ],
      });
    expect(codeOf(overpay)).toBe('coinbase-overpays');
    expect(overpay).toThrow(
      'coinbase outputs total 1001 sat but the template allows only 1000 sat (coinbasevalue)',
    );
  });

  it('allows exactly coinbasevalue, and less (the rest is not claimed)', () => {
    expect(
      base({ coinbaseValueSat: 1000, payouts: [{ script: scriptA, valueSat: 1000 }] }).outputs[0]!.valueSat,
    ).toBe(1000);
    expect(
      base({ coinbaseValueSat: 1000, payouts: [{ script: scriptA, valueSat: 10 }] }).outputs[0]!.valueSat,
    ).toBe(10);
  });

  it('refuses unclear payouts', () => {
    expect(codeOf(() => base({ payouts: [] }))).toBe('bad-value');
    expect(codeOf(() => base({ payouts: [{ script: scriptA }, { script: scriptB }] }))).toBe('bad-value');
    expect(codeOf(() => base({ payouts: [{ script: scriptA, valueSat: -1 }] }))).toBe('bad-value');
    expect(codeOf(() => base({ payouts: [{ script: scriptA, valueSat: 1.5 }] }))).toBe('bad-value');
    expect(codeOf(() => base({ payouts: [{ valueSat: 1 }] }))).toBe('bad-value');
  });

  it('decodes addresses for the configured chain and refuses others', () => {
    expect(codeOf(() => base({ params: LITECOIN_REGTEST }))).toBe('wrong-network');
    expect(
      codeOf(() => base({ payouts: [{ address: `ltcmweb1${'q'.repeat(90)}` }], params: LITECOIN_MAIN })),
    ).toBe('mweb-address');
  });
});

describe('witness serialization', () => {
  it('adds marker, flag and the 32-zero-byte reserved value when there is a commitment', () => {
    const cb = base();
    const plain = assembleCoinbase(cb, en1, en2);
    const full = assembleCoinbaseForBlock(cb, en1, en2);
    const layout = transactionLayout(full);
    expect(cb.hasWitness).toBe(true);
    expect(layout.hasWitness).toBe(true);
    expect(full.subarray(4, 6).toString('hex')).toBe('0001');
    expect(full.subarray(full.length - 38).toString('hex')).toBe(`0120${'00'.repeat(32)}00000000`);
    expect(stripTransaction(full)).toEqual(plain);
  });

  it('has the same layout as the real segwit coinbase', () => {
    const real = Buffer.from(btc.coinbaseHex, 'hex');
    expect(real.subarray(real.length - 38).toString('hex')).toBe(`0120${'00'.repeat(32)}00000000`);
  });

  it('is the plain serialization without a commitment', () => {
    const cb = base({ witnessCommitment: undefined });
    expect(cb.hasWitness).toBe(false);
    expect(cb.outputs.length).toBe(1);
    expect(assembleCoinbaseForBlock(cb, en1, en2)).toEqual(assembleCoinbase(cb, en1, en2));
  });

  it('builds commitment scripts', () => {
    expect(witnessCommitmentScript(Buffer.from(commitment.slice(12), 'hex')).toString('hex')).toBe(
      commitment,
    );
  });
});

describe('limits and template shortcut', () => {
  it('refuses a scriptSig over 100 bytes, blaming the pool tag', () => {
    const long = () => base({ poolTag: 'x'.repeat(90) });
    expect(codeOf(long)).toBe('coinbase-script-too-long');
    expect(long).toThrow(/shorten the pool tag \(90 bytes\)/);
    expect(base({ poolTag: 'x'.repeat(70) }).size).toBeGreaterThan(0);
  });

  it('refuses extranonce sizes out of range', () => {
    expect(codeOf(() => base({ extranonce2Size: 0 }))).toBe('bad-value');
    expect(codeOf(() => base({ extranonce1Size: 33 }))).toBe('bad-value');
  });

  it('takes height, value, commitment and aux flags from a template', () => {
    const cb = buildCoinbaseForTemplate(
      {
        height: 500,
        coinbasevalue: 5000,
        default_witness_commitment: commitment,
        coinbaseaux: { flags: 'beef' },
      },
      {
        params: BITCOIN_REGTEST,
        payouts: [{ script: Buffer.of(0x51) }],
        extranonce1Size: 4,
        extranonce2Size: 4,
        poolTag: '',
      },
    );
    expect(cb.coinb1.subarray(42).toString('hex')).toBe('02f401beef08');
    expect(cb.outputs.map((o) => o.valueSat)).toEqual([5000, 0]);
  });
});
