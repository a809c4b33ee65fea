import {
  AddressError,
  BITCOIN_MAIN,
  type BlockTemplate,
  ChainError,
  type CoinbaseTemplate,
  LITECOIN_MAIN,
  LITECOIN_REGTEST,
  assembleTemplateBlock,
  buildCoinbaseForTemplate,
  hashToDisplayHex,
  readVarInt,
  stripTransaction,
} from '@hashwire/chain';
import { describe, expect, it } from 'vitest';
import { type RealBlock, bitcoinBlock, litecoinBlock } from './fixtures/load.js';

/**
 * A getblocktemplate result for a real block: the real txids (non-HogEx data elided, the merkle
 * root only needs txids), the real HogEx, and a stand-in MWEB blob for litecoin.
 */
function templateOf(block: RealBlock): BlockTemplate {
  const hogExTxid = block.hogExHex ? block.tx.at(-1)!.txid : undefined;
  return {
    version: block.version,
    previousblockhash: block.previousblockhash,
    transactions: block.tx.slice(1).map((t) => ({
      data: t.txid === hogExTxid ? block.hogExHex! : `0100000001${t.txid}`,
      txid: t.txid,
      hash: t.hash,
    })),
    coinbasevalue: block.coinbaseOutputs[0]!.valueSat,
    target: `00000000000000000008${'ff'.repeat(22)}`,
    mintime: block.time - 600,
    curtime: block.time,
    bits: block.bits,
    height: block.height,
    default_witness_commitment: block.coinbaseOutputs[1]!.scriptHex,
    ...(block.hogExHex && { mweb: '0a0b0c0d' }),
  };
}

/** The real coinbase split around its extranonce, as a pool would have built it. */
function realCoinbase(block: RealBlock, extranonce1Size: number): CoinbaseTemplate {
  const stripped = stripTransaction(Buffer.from(block.coinbaseHex, 'hex'));
  const extranonce = Buffer.from(block.coinbaseExtranonceHex, 'hex');
  const at = stripped.indexOf(extranonce);
  expect(at).toBeGreaterThan(0);
  const coinb2 = stripped.subarray(at + extranonce.length);
  const outputs = block.coinbaseOutputs.map((o) => ({
    script: Buffer.from(o.scriptHex, 'hex'),
    valueSat: o.valueSat,
  }));
  // The outputs end 4 bytes (the lock time) before coinb2 does; each is value, length, script.
  const outputsSize = outputs.reduce((n, o) => n + 8 + (o.script.length < 0xfd ? 1 : 3) + o.script.length, 0);
  return {
    coinb1: stripped.subarray(0, at),
    coinb2,
    extranonce1Size,
    extranonce2Size: extranonce.length - extranonce1Size,
    hasWitness: true,
    size: stripped.length,
    outputs,
    outputsAt: coinb2.length - 4 - outputsSize,
  };
}

function realExtranonces(block: RealBlock, extranonce1Size: number): [Buffer, Buffer] {
  const extranonce = Buffer.from(block.coinbaseExtranonceHex, 'hex');
  return [extranonce.subarray(0, extranonce1Size), extranonce.subarray(extranonce1Size)];
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

describe('assembleTemplateBlock rebuilds real blocks from their templates', () => {
  it.each([
    ['litecoin 2383209 (scrypt, MWEB)', litecoinBlock(), LITECOIN_MAIN],
    ['bitcoin 766390 (sha256d)', bitcoinBlock(), BITCOIN_MAIN],
  ] as const)(
    '%s: same header, hash and coinbase; the real nonce meets the target',
    (_name, real, params) => {
      const template = templateOf(real);
      const [extranonce1, extranonce2] = realExtranonces(real, 4);
      const options = {
        template,
        params,
        coinbase: realCoinbase(real, 4),
        extranonce1,
        extranonce2,
        ntime: real.time,
        nonce: real.nonce,
        version: real.version,
      };
      const assembled = assembleTemplateBlock(options);

      expect(assembled.hashHex).toBe(real.hash);
      expect(hashToDisplayHex(assembled.hash)).toBe(real.hash);
      expect(hashToDisplayHex(assembled.merkleRoot)).toBe(real.merkleroot);
      expect(hashToDisplayHex(assembled.coinbaseTxid)).toBe(real.tx[0]!.txid);
      expect(assembled.header.length).toBe(80);
      expect(assembled.meetsTarget).toBe(true);
      expect(assembleTemplateBlock({ ...options, nonce: real.nonce + 1 }).meetsTarget).toBe(false);

      // The block carries the coinbase exactly as mined (witness form), then the template's transactions.
      const block = assembled.block;
      expect(assembled.blockHex).toBe(block.toString('hex'));
      expect(block.subarray(0, 80)).toEqual(assembled.header);
      const count = readVarInt(block, 80);
      expect(count.value).toBe(real.tx.length);
      const coinbaseHex = block
        .subarray(count.next, count.next + real.coinbaseHex.length / 2)
        .toString('hex');
      expect(coinbaseHex).toBe(real.coinbaseHex);
      if (real.hogExHex) expect(assembled.blockHex.endsWith(`${real.hogExHex}010a0b0c0d`)).toBe(true);
      else expect(assembled.blockHex.endsWith(template.transactions.at(-1)!.data)).toBe(true);
    },
  );
});

describe('assembleTemplateBlock with payouts', () => {
  const real = litecoinBlock();
  const template = templateOf(real);
  const extranonce1 = Buffer.from('0000002a', 'hex');
  const extranonce2 = Buffer.from('00000000000000ff', 'hex');
  const payoutAddress = real.otherAddresses.p2wpkh!.address;

  it('builds the coinbase the coinbase builder builds, with the tag and both extranonces in its scriptSig', () => {
    const assembled = assembleTemplateBlock({
      template,
      params: LITECOIN_MAIN,
      payouts: [{ address: payoutAddress }],
      poolTag: '/hashwire/',
      extranonce1,
      extranonce2,
      nonce: 1,
    });
    const expected = buildCoinbaseForTemplate(template, {
      params: LITECOIN_MAIN,
      payouts: [{ address: payoutAddress }],
      poolTag: '/hashwire/',
      extranonce1Size: 4,
      extranonce2Size: 8,
    });
    expect(assembled.coinbase).toEqual(expected);
    expect(assembled.coinbase.coinb2.subarray(0, 11).toString('latin1')).toBe('\x0a/hashwire/');
    // In the block the coinbase has its witness marker after the version: compare from the input on.
    expect(assembled.blockHex).toContain(
      `${expected.coinb1.subarray(4).toString('hex')}${extranonce1.toString('hex')}${extranonce2.toString('hex')}`,
    );
    // Defaults: the template's version and curtime; the nonce as given.
    expect(assembled.header.readUInt32LE(0)).toBe(template.version);
    expect(assembled.header.readUInt32LE(68)).toBe(template.curtime);
    expect(assembled.header.readUInt32LE(76)).toBe(1);
    expect(assembled.header.readUInt32LE(72)).toBe(Number.parseInt(template.bits, 16));
  });

  it('changes only the nonce bytes of the header when only the nonce changes (what a miner grinds)', () => {
    const base = {
      template,
      params: LITECOIN_MAIN,
      payouts: [{ address: payoutAddress }],
      extranonce1,
      extranonce2,
    };
    const a = assembleTemplateBlock({ ...base, nonce: 1 });
    const b = assembleTemplateBlock({ ...base, nonce: 0xffffffff });
    expect(a.header.subarray(0, 76)).toEqual(b.header.subarray(0, 76));
    expect(b.header.readUInt32LE(76)).toBe(0xffffffff);
    expect(a.hash).not.toEqual(b.hash);
  });

  it('names the address and the expected network for a payout of another chain', () => {
    const bitcoinAddress = bitcoinBlock().coinbaseOutputs[0]!.address!;
    let error: unknown;
    try {
      assembleTemplateBlock({
        template,
        params: LITECOIN_REGTEST,
        payouts: [{ address: bitcoinAddress }],
        extranonce1,
        extranonce2,
        nonce: 0,
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(AddressError);
    expect((error as AddressError).code).toBe('wrong-network');
    expect((error as AddressError).message).toContain(bitcoinAddress);
    expect((error as AddressError).message).toContain('expected litecoin regtest');
  });

  it('refuses unclear or malformed input with a ChainError code', () => {
    const coinbase = realCoinbase(real, 4);
    const base = { template, params: LITECOIN_MAIN, extranonce1, extranonce2, nonce: 0 };
    expect(codeOf(() => assembleTemplateBlock(base))).toBe('bad-value');
    expect(
      codeOf(() => assembleTemplateBlock({ ...base, coinbase, payouts: [{ address: payoutAddress }] })),
    ).toBe('bad-value');
    // The real coinbase has a 4-byte extranonce2 slot, not 8.
    expect(codeOf(() => assembleTemplateBlock({ ...base, coinbase }))).toBe('bad-length');
    expect(
      codeOf(() => assembleTemplateBlock({ ...base, payouts: [{ address: payoutAddress }], nonce: 2 ** 32 })),
    ).toBe('bad-value');
    expect(
      codeOf(() =>
        assembleTemplateBlock({
          ...base,
          payouts: [{ address: payoutAddress }],
          template: { ...template, transactions: template.transactions.slice(0, -1) },
        }),
      ),
    ).toBe('hogex-missing');
  });
});
