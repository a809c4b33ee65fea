import {
  ChainError,
  LITECOIN_MAIN,
  assembleCoinbase,
  blockHashHex,
  blockTransactions,
  buildCoinbaseForTemplate,
  buildHeader,
  hashFromDisplayHex,
  hashToDisplayHex,
  merkleRoot,
  merkleRootFromBranch,
  parseBlockTemplate,
  readVarInt,
  serializeTemplateBlock,
  sha256d,
  stripTransaction,
  templateMerkleBranch,
  templateTxids,
  transactionLayout,
} from '@hashwire/chain';
import { describe, expect, it } from 'vitest';
import { litecoinBlock } from './fixtures/load.js';

const ltc = litecoinBlock();
const hogEx = ltc.tx[ltc.tx.length - 1]!;

/** A getblocktemplate result shaped like litecoind's for block 2383209 (data of non-HogEx txs elided). */
function ltcTemplate() {
  return {
    version: ltc.version,
    rules: ['csv', '!segwit', 'taproot', '!mweb'],
    previousblockhash: ltc.previousblockhash,
    transactions: ltc.tx.slice(1).map((t) => ({
      data: t.txid === hogEx.txid ? ltc.hogExHex! : `0100000001${t.txid}`,
      txid: t.txid,
      hash: t.hash,
      depends: [],
      fee: 0,
      sigops: 0,
      weight: 0,
    })),
    coinbaseaux: {},
    coinbasevalue: ltc.coinbaseOutputs[0]!.valueSat,
    target: `0000000000${'ff'.repeat(27)}`,
    mintime: ltc.time - 600,
    curtime: ltc.time,
    bits: ltc.bits,
    height: ltc.height,
    default_witness_commitment: ltc.coinbaseOutputs[1]!.scriptHex,
    mweb: '0a0b0c0d',
  };
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

describe('parseBlockTemplate', () => {
  it('accepts a litecoind template as is', () => {
    const raw = ltcTemplate();
    expect(parseBlockTemplate(raw)).toBe(raw);
  });

  it('names the field that is wrong', () => {
    const { height: _h, ...noHeight } = ltcTemplate();
    expect(() => parseBlockTemplate(noHeight)).toThrow(
      'getblocktemplate result: height must be a positive integer',
    );
    const badTx = { ...ltcTemplate(), transactions: [{ data: 'zz', txid: hogEx.txid, hash: hogEx.hash }] };
    expect(() => parseBlockTemplate(badTx)).toThrow(/transactions\[0\]\.data must be hex/);
    expect(codeOf(() => parseBlockTemplate(null))).toBe('bad-template');
    expect(codeOf(() => parseBlockTemplate({ ...ltcTemplate(), bits: 0x1a00d3d8 }))).toBe('bad-template');
  });
});

describe('HogEx ordering', () => {
  it('keeps template order with the HogEx last', () => {
    const template = ltcTemplate();
    expect(blockTransactions(template).map((t) => t.txid)).toEqual(template.transactions.map((t) => t.txid));
  });

  it('moves a HogEx listed elsewhere to the end, keeping the others in order', () => {
    const template = ltcTemplate();
    const shuffled = [template.transactions[6]!, ...template.transactions.slice(0, 6)];
    const ordered = blockTransactions({ ...template, transactions: shuffled });
    expect(ordered.map((t) => t.txid)).toEqual(template.transactions.map((t) => t.txid));
  });

  it('refuses an MWEB template without a HogEx', () => {
    const template = ltcTemplate();
    expect(
      codeOf(() => blockTransactions({ ...template, transactions: template.transactions.slice(0, 6) })),
    ).toBe('hogex-missing');
  });

  it('leaves templates without mweb alone', () => {
    const { mweb: _m, ...template } = ltcTemplate();
    const shuffled = [template.transactions[6]!, ...template.transactions.slice(0, 6)];
    expect(blockTransactions({ ...template, transactions: shuffled })[0]!.txid).toBe(hogEx.txid);
  });
});

describe('from template to block (litecoin 2383209 shape)', () => {
  const template = ltcTemplate();

  it('gives txids and a branch that rebuild the real merkle root with the real coinbase', () => {
    expect(templateTxids(template).map(hashToDisplayHex)).toEqual(ltc.tx.slice(1).map((t) => t.txid));
    const coinbaseTxid = hashFromDisplayHex(ltc.tx[0]!.txid);
    expect(hashToDisplayHex(merkleRootFromBranch(coinbaseTxid, templateMerkleBranch(template)))).toBe(
      ltc.merkleroot,
    );
  });

  it('serializes header, coinbase (witness form), transactions with HogEx last, then 0x01 and mweb', () => {
    const coinbase = buildCoinbaseForTemplate(template, {
      params: LITECOIN_MAIN,
      payouts: [{ address: ltc.coinbaseOutputs[0]!.address! }],
      extranonce1Size: 4,
      extranonce2Size: 4,
    });
    const en1 = Buffer.from('00000001', 'hex');
    const en2 = Buffer.from('0000002a', 'hex');
    const coinbaseTx = assembleCoinbase(coinbase, en1, en2);
    const root = merkleRootFromBranch(sha256d(coinbaseTx), templateMerkleBranch(template));
    expect(root).toEqual(merkleRoot([sha256d(coinbaseTx), ...templateTxids(template)]));
    const header = buildHeader({
      version: template.version,
      prevHash: hashFromDisplayHex(template.previousblockhash),
      merkleRoot: root,
      time: template.curtime,
      bits: Number.parseInt(template.bits, 16),
      nonce: 7,
    });

    const block = serializeTemplateBlock({ template, header, coinbase, extranonce1: en1, extranonce2: en2 });
    expect(block.subarray(0, 80)).toEqual(header);
    const count = readVarInt(block, 80);
    expect(count.value).toBe(ltc.tx.length);
    const cbEnd = count.next + coinbase.size + 2 + 34;
    const blockCoinbase = block.subarray(count.next, cbEnd);
    expect(transactionLayout(blockCoinbase).hasWitness).toBe(true);
    expect(stripTransaction(blockCoinbase)).toEqual(coinbaseTx);
    const tail = block.subarray(cbEnd).toString('hex');
    expect(tail.endsWith(`${ltc.hogExHex}010a0b0c0d`)).toBe(true);
    expect(tail.startsWith(template.transactions[0]!.data)).toBe(true);
    expect(blockHashHex(header)).toMatch(/^[0-9a-f]{64}$/);
  });
});
