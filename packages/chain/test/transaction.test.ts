import {
  ChainError,
  hashToDisplayHex,
  isHogExTransaction,
  sha256d,
  stripTransaction,
  transactionId,
  transactionLayout,
} from '@hashwire/chain';
import { describe, expect, it } from 'vitest';
import { bitcoinBlock, litecoinBlock } from './fixtures/load.js';

const btc = bitcoinBlock();
const ltc = litecoinBlock();
const hex = (s: string) => Buffer.from(s, 'hex');

describe('txid and wtxid of real transactions', () => {
  it.each(Object.entries(btc.txHex!))('bitcoin %s', (txid, data) => {
    const entry = btc.tx.find((t) => t.txid === txid)!;
    expect(hashToDisplayHex(transactionId(hex(data)))).toBe(txid);
    expect(hashToDisplayHex(sha256d(hex(data)))).toBe(entry.hash);
  });

  it('segwit coinbases: txid without witness, wtxid over everything', () => {
    for (const block of [btc, ltc]) {
      const coinbase = hex(block.coinbaseHex);
      const layout = transactionLayout(coinbase);
      expect(layout.hasWitness).toBe(true);
      expect(layout.isHogEx).toBe(false);
      expect(hashToDisplayHex(transactionId(coinbase))).toBe(block.tx[0]!.txid);
      expect(hashToDisplayHex(sha256d(coinbase))).toBe(block.tx[0]!.hash);
    }
  });

  it('legacy transactions strip to themselves', () => {
    const legacy = hex(btc.txHex!['7582e83543dfc51b15fc49f847c9a558674a6cd157c4370b3ad22631b721d72d']!);
    expect(transactionLayout(legacy).flags).toBe(0);
    expect(stripTransaction(legacy)).toEqual(legacy);
  });
});

describe('litecoin HogEx', () => {
  const hogEx = hex(ltc.hogExHex!);

  it('is recognised by its MWEB flag with an empty MWEB part', () => {
    const layout = transactionLayout(hogEx);
    expect(layout.flags).toBe(0x08);
    expect(layout.isHogEx).toBe(true);
    expect(isHogExTransaction(hogEx)).toBe(true);
  });

  it('hashes to the block last txid once the MWEB flag is stripped', () => {
    expect(hashToDisplayHex(transactionId(hogEx))).toBe(ltc.tx[ltc.tx.length - 1]!.txid);
  });

  it('is not confused with ordinary transactions', () => {
    for (const data of [...Object.values(btc.txHex!), btc.coinbaseHex, ltc.coinbaseHex]) {
      expect(isHogExTransaction(hex(data))).toBe(false);
    }
  });
});

describe('malformed data', () => {
  it('refuses truncated or padded transactions', () => {
    const legacy = hex(btc.txHex!['7582e83543dfc51b15fc49f847c9a558674a6cd157c4370b3ad22631b721d72d']!);
    expect(() => transactionLayout(legacy.subarray(0, 60))).toThrow(ChainError);
    expect(() => transactionLayout(Buffer.concat([legacy, Buffer.of(0)]))).toThrow(/unexpected bytes/);
    expect(() => transactionLayout(Buffer.alloc(4))).toThrow(/malformed/);
  });
});
